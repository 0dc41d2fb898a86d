"""SQLAlchemy table definitions mirroring migrations/ (the migrations are authoritative)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

ladder_versions = Table(
    "ladder_versions",
    metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=True),
    Column("definition", JSONB, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("tier_code", Text, nullable=False),
    Column("reached_at", DateTime(timezone=True), nullable=False),
    Column("enrolled_by", Text, nullable=False),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

qualifying_orders = Table(
    "qualifying_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
)

order_refunds = Table(
    "order_refunds",
    metadata,
    Column("order_id", Text, ForeignKey("qualifying_orders.order_id"), primary_key=True),
    Column("refund_id", Text, primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
)

contributions = Table(
    "contributions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("metric", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("order_id", Text),
    Column("counts_at", DateTime(timezone=True), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

"""SQLAlchemy table definitions mirroring migrations/ (the migrations are authoritative)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, SmallInteger, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("trigger_kind", Text, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("budget_limit", BigInteger),
    Column("budget_spent", BigInteger, nullable=False),
    Column("blast_done_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

member_projections = Table(
    "member_projections",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("birth_month", SmallInteger),
    Column("birth_day", SmallInteger),
    Column("time_zone", Text, nullable=False),
    Column("consents", JSONB, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("tier", Text),
    Column("rfm_segment", Text),
    Column("purchase_count", Integer, nullable=False),
    Column("registered_at", DateTime(timezone=True)),
    Column("erased_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

counted_orders = Table(
    "counted_orders",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", Text, primary_key=True),
)

exposures = Table(
    "exposures",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("grp", Text, nullable=False),
    Column("occasion_key", Text, nullable=False),
    Column("exposed_at", DateTime(timezone=True), nullable=False),
    Column("budget_cost", BigInteger, nullable=False),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("code", Text, nullable=False),
    Column("terms", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("redeemed_at", DateTime(timezone=True)),
    Column("order_id", Text),
    Column("discount_minor", BigInteger),
)

"""SQLAlchemy table definitions mirroring migrations/ (the migrations are authoritative)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("debt", BigInteger, nullable=False),
    Column("earned", BigInteger, nullable=False),
    Column("reversed", BigInteger, nullable=False),
    Column("redeemed", BigInteger, nullable=False),
    Column("expired", BigInteger, nullable=False),
    Column("adjusted", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", UUID(as_uuid=True), primary_key=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("accounts.member_id"), nullable=False),
    Column("source_kind", Text, nullable=False),
    Column("source_ref", Text),
    Column("original", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("forfeited", BigInteger, nullable=False),
    Column("available_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("released", Boolean, nullable=False),
    Column("reminded", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("entry_id", BigInteger, primary_key=True, autoincrement=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("accounts.member_id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("debt_change", BigInteger, nullable=False),
    Column("waived", BigInteger, nullable=False),
    Column("allocation_lots", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("allocation_points", ARRAY(BigInteger), nullable=False),
    Column("order_id", Text),
    Column("reference", Text),
    Column("campaign_id", UUID(as_uuid=True)),
    Column("actor", Text),
    Column("reason", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("accounts.member_id"), nullable=False),
    Column("lot_id", UUID(as_uuid=True)),
    Column("earned_points", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("reversed_points", BigInteger, nullable=False),
    Column("refund_ids", ARRAY(Text), nullable=False),
    Column("multiplier", Numeric, nullable=False),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

tier_multipliers = Table(
    "tier_multipliers",
    metadata,
    Column("member_id", UUID(as_uuid=True), primary_key=True),
    Column("tier", Text, nullable=False),
    Column("multiplier", Numeric, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("redemption_id", UUID(as_uuid=True), primary_key=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("accounts.member_id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("reference", Text),
    Column("redeemed_at", DateTime(timezone=True), nullable=False),
)

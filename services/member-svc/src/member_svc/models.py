"""SQLAlchemy table definitions mirroring migrations/ (the migrations are authoritative)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("external_id", Text, unique=True),
    Column("status", Text, nullable=False),
    Column("email", Text, unique=True),
    Column("phone", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("birthday", Date),
    Column("time_zone", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("referral_code", Text, unique=True),
    Column("referred_by", UUID(as_uuid=True), ForeignKey("members.id")),
    Column("registration_fingerprint", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True)),
)

member_consents = Table(
    "member_consents",
    metadata,
    Column("member_id", UUID(as_uuid=True), ForeignKey("members.id"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

consent_changes = Table(
    "consent_changes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("members.id"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

activities = Table(
    "activities",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("members.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("channel", Text),
    Column("store_id", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("member_id", UUID(as_uuid=True), ForeignKey("members.id"), nullable=False),
    Column("nps_score", SmallInteger, nullable=False),
    Column("comment", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

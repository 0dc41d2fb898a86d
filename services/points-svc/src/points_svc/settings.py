"""points-svc configuration (MF_* environment variables) on top of the shared settings."""

from __future__ import annotations

from decimal import Decimal

from memberflow_platform.settings import ServiceSettings
from pydantic import Field

from points_svc.domain import EarningRules


class PointsSettings(ServiceSettings):
    service_name: str = "points-svc"
    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/memberflow_points"
    # Purchases arrive in bulk: bigger batches spread each transaction's fixed costs
    # (commit, lock and load statements) over more events (see bench/README.md).
    consumer_batch_size: int = Field(default=2000, ge=1)
    relay_batch_size: int = Field(default=2000, ge=1)

    points_rate_per_unit: Decimal = Field(
        default=Decimal(1), ge=0, description="points per currency unit of eligible spend"
    )
    points_minor_units_per_unit: int = Field(
        default=100, gt=0, description="minor units in one currency unit (1 for JPY)"
    )
    points_excluded_categories: frozenset[str] = Field(
        default=frozenset({"gift_card"}), description="order line categories that earn nothing"
    )
    points_pending_days: int = Field(
        default=0, ge=0, description="days before purchase points can be spent"
    )
    points_expiry_days: int = Field(
        default=365, ge=1, description="days a lot lives after it becomes available"
    )
    points_reminder_days: int = Field(
        default=30, ge=0, description="points.expiring is sent this many days ahead"
    )
    points_expiring_soon_days: int = Field(
        default=30, ge=0, description="window of the balance's expiring_soon buckets"
    )
    points_expiry_interval_seconds: float = Field(default=300, gt=0)
    points_release_interval_seconds: float = Field(default=60, gt=0)
    points_reminder_interval_seconds: float = Field(default=3600, gt=0)
    points_job_chunk_size: int = Field(
        default=500, ge=1, description="member ids selected per query by the jobs"
    )

    def earning_rules(self) -> EarningRules:
        return EarningRules(
            rate_per_unit=self.points_rate_per_unit,
            minor_units_per_unit=self.points_minor_units_per_unit,
            excluded_categories=self.points_excluded_categories,
            pending_days=self.points_pending_days,
            expiry_days=self.points_expiry_days,
            expiring_reminder_days=self.points_reminder_days,
        )

"""analytics-svc configuration (MF_* environment variables) on top of the shared settings."""

from __future__ import annotations

from memberflow_platform.settings import ServiceSettings
from pydantic import Field


class AnalyticsSettings(ServiceSettings):
    service_name: str = "analytics-svc"
    http_port: int = 8005
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/memberflow_analytics"

    active_window_days: int = Field(default=30, ge=1, description="window of 'active member'")
    churn_threshold: float = Field(
        default=0.3, ge=0, le=1, description="repeat buyer at risk when P(alive) < this"
    )
    churn_recency_multiple: float = Field(
        default=3.0,
        gt=0,
        description="one-time buyer at risk when recency > this × typical inter-purchase time",
    )
    clv_horizon_days: int = Field(
        default=365, ge=1, description="horizon of expected purchases per member"
    )
    clv_periods: int = Field(default=12, ge=1, description="discounting periods of predicted CLV")
    clv_period_days: float = Field(default=30.4375, gt=0, description="length of one period")
    clv_annual_discount_rate: float = Field(
        default=0.10, gt=-1, description="annual rate; the per-period rate is derived from it"
    )
    cost_per_point_minor: float = Field(
        default=1.0, ge=0, description="what one outstanding point costs, in minor units"
    )
    rfm_window_days: int = Field(default=365, ge=1)
    refit_interval_seconds: float = Field(
        default=86400, gt=0, description="schedule of the RFM + CLV + churn refit"
    )
    churn_interval_seconds: float = Field(
        default=3600, gt=0, description="schedule of churn scoring with the latest CLV fit"
    )
    rebuild_batch_size: int = Field(default=20000, ge=1, description="records per replay batch")

    @property
    def clv_period_discount_rate(self) -> float:
        """The per-period rate equivalent to the annual one."""
        years_per_period = self.clv_period_days / 365.25
        return float((1.0 + self.clv_annual_discount_rate) ** years_per_period - 1.0)

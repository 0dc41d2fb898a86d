"""campaign-svc configuration (MF_* environment variables) on top of the shared settings."""

from __future__ import annotations

from memberflow_platform.settings import ServiceSettings
from pydantic import Field


class CampaignSettings(ServiceSettings):
    service_name: str = "campaign-svc"
    http_port: int = 8004
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/memberflow_campaign"
    birthday_job_interval_seconds: float = Field(
        default=900, gt=0, description="how often birthday campaigns look for today's birthdays"
    )
    blast_job_interval_seconds: float = Field(
        default=60, gt=0, description="how often due one-off blasts are looked for"
    )
    coupon_expiry_job_interval_seconds: float = Field(
        default=3600, gt=0, description="how often issued coupons past validity are marked"
    )
    job_batch_size: int = Field(
        default=200, ge=1, description="members handled per transaction by the schedule jobs"
    )

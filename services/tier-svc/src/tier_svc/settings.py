"""tier-svc configuration (MF_* environment variables) on top of the shared settings."""

from __future__ import annotations

from memberflow_platform.settings import ServiceSettings
from pydantic import Field


class TierSettings(ServiceSettings):
    service_name: str = "tier-svc"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/memberflow_tier"
    evaluation_batch_size: int = Field(
        default=500, ge=1, description="members evaluated per transaction by the daily job"
    )

"""member-svc configuration (MF_* environment variables) on top of the shared settings."""

from __future__ import annotations

from memberflow_platform.settings import ServiceSettings
from pydantic import Field


class MemberSettings(ServiceSettings):
    service_name: str = "member-svc"
    http_port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/memberflow_member"
    activity_kinds: tuple[str, ...] = Field(
        default=("login", "visit", "review", "share", "app_open", "checkin"),
        description="activity kinds accepted by POST /v1/members/{id}/activities",
    )
    activity_clock_skew_seconds: int = Field(
        default=300, ge=0, description="how far in the future an activity's occurred_at may be"
    )

"""Builders shared by the campaign-svc unit tests (imported as a sibling module)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from campaign_svc.domain import CampaignDefinition, MemberProjection

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CAMPAIGN_ID = UUID("0190b4c2-0000-7000-8000-000000000001")
MEMBER_ID = UUID("0190b4c2-0000-7000-8000-0000000000aa")


def campaign(**overrides: Any) -> CampaignDefinition:
    data: dict[str, Any] = {
        "campaign_id": str(CAMPAIGN_ID),
        "name": "test campaign",
        "trigger": {"kind": "member_registered"},
        "actions": [{"kind": "bonus_points", "points": 100}],
    }
    data.update(overrides)
    return CampaignDefinition.model_validate(data)


def member(**overrides: Any) -> MemberProjection:
    data: dict[str, Any] = {"member_id": str(MEMBER_ID)}
    data.update(overrides)
    return MemberProjection.model_validate(data)

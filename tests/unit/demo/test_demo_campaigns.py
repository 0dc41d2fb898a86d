"""The demo's campaigns are valid definitions (the loader would stop on a 422 otherwise)."""

from __future__ import annotations

import pytest
from campaign_svc.domain_definitions import CampaignDefinition

from demo.campaigns import DEMO_CAMPAIGNS


@pytest.mark.parametrize("definition", DEMO_CAMPAIGNS, ids=lambda d: str(d["name"]))
def test_demo_campaign_is_a_valid_definition(definition: dict[str, object]) -> None:
    campaign = CampaignDefinition.model_validate(definition)
    assert campaign.actions


def test_demo_covers_every_triggered_and_scheduled_kind_design_names() -> None:
    kinds = {definition["trigger"]["kind"] for definition in DEMO_CAMPAIGNS}
    named = {"member_registered", "tier_changed", "churn_risk", "birthday", "points_expiring"}
    assert named <= kinds

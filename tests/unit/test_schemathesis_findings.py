"""Inputs tests/integration/test_schemathesis.py found answered with a 500, now refused.

- Free text the services store: a NUL reached PostgreSQL (which cannot store it in text
  or JSONB) and the request failed; control characters are now a validation error.
- points-svc amounts: an adjustment beyond bigint failed the insert; amounts are bounded.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from campaign_svc.domain_definitions import CampaignDefinition
from campaign_svc.schemas import RedeemRequest
from points_svc.schemas import AdjustmentRequest, RedemptionRequest
from pydantic import BaseModel, ValidationError
from tier_svc.domain import TierDefinition
from tier_svc.schemas import TierPatch

NUL = "a\x00b"
CAMPAIGN: dict[str, Any] = {
    "campaign_id": str(uuid.uuid4()),
    "trigger": {"kind": "tier_changed", "to_tier": "gold"},
    "actions": [{"kind": "coupon", "terms": {"kind": "percent", "value": 15}, "valid_days": 30}],
}
CASES: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (RedemptionRequest, {"points": 1, "reference": NUL}, "reference"),
    (AdjustmentRequest, {"points": 1, "reason": NUL}, "reason"),
    (TierDefinition, {"code": "gold", "name": NUL, "rank": 1, "threshold": 1}, "name"),
    (
        TierDefinition,
        {"code": "gold", "name": "Gold", "rank": 1, "threshold": 1, "perks": [NUL]},
        "perks",
    ),
    (TierPatch, {"name": NUL}, "name"),
    (TierPatch, {"perks": [NUL]}, "perks"),
    (CampaignDefinition, {**CAMPAIGN, "name": NUL}, "name"),
    (
        RedeemRequest,
        {"code": "X", "member_id": str(uuid.uuid4()), "basket_total_minor": 1, "order_id": NUL},
        "order_id",
    ),
]


@pytest.mark.parametrize(("model", "data", "field"), CASES)
def test_nul_is_refused_naming_the_field(
    model: type[BaseModel], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    errors = raised.value.errors()
    assert [error["loc"][0] for error in errors] == [field]
    assert "control characters" in errors[0]["msg"]


def test_ordinary_text_still_passes() -> None:
    assert RedemptionRequest.model_validate({"points": 1, "reference": "reward-7 ü"}).reference
    assert AdjustmentRequest.model_validate({"points": 1, "reason": "goodwill\nline 2"}).reason
    assert TierPatch.model_validate({"name": "Gold ★", "perks": ["free shipping"]}).name


@pytest.mark.parametrize("points", [10**12 + 1, -(10**12) - 1, 2**64])
def test_adjustment_beyond_bigint_range_is_refused(points: int) -> None:
    # Found by the schemathesis module too: an adjustment of ~7e23 points failed the
    # insert (out of int64 range) with a 500.
    with pytest.raises(ValidationError) as raised:
        AdjustmentRequest.model_validate({"points": points, "reason": "x"})
    assert [error["loc"][0] for error in raised.value.errors()] == ["points"]
    with pytest.raises(ValidationError):
        RedemptionRequest.model_validate({"points": abs(points)})

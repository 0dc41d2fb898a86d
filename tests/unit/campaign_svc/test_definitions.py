from typing import Any

import pytest
from campaign_svc.domain import (
    BlastTrigger,
    CampaignDefinition,
    ChurnRiskTrigger,
    CouponAction,
    TierChangedTrigger,
)
from pydantic import ValidationError

from tests.unit.campaign_svc.factories import campaign

COUPON = {"kind": "coupon", "terms": {"kind": "percent", "value": 10}, "valid_days": 30}


def rejection(**overrides: Any) -> tuple[tuple[int | str, ...], str]:
    with pytest.raises(ValidationError) as caught:
        campaign(**overrides)
    error = caught.value.errors()[0]
    return tuple(error["loc"]), str(error["msg"])


def test_a_valid_campaign_round_trips_as_data() -> None:
    c = campaign(
        trigger={"kind": "tier_changed", "to_tier": "gold"},
        audience={"tiers": ["gold"], "consents": ["email"]},
        actions=[COUPON, {"kind": "message", "channel": "email", "template": "gold_welcome"}],
        controls={"control_share": "0.2", "frequency_cap": {"max_count": 1, "period_days": 30}},
    )
    assert isinstance(c.trigger, TierChangedTrigger)
    assert isinstance(c.actions[0], CouponAction)
    assert CampaignDefinition.model_validate(c.model_dump(mode="json")) == c


def test_no_actions_is_rejected() -> None:
    loc, msg = rejection(actions=[])
    assert loc == ("actions",)
    assert "at least one action" in msg


def test_ends_before_it_starts_is_rejected() -> None:
    loc, msg = rejection(
        controls={"starts_at": "2026-06-02T00:00:00Z", "ends_at": "2026-06-02T00:00:00Z"}
    )
    assert loc == ("controls",)
    assert msg.endswith("ends_at: the campaign ends before it starts")


@pytest.mark.parametrize("score", [-0.01, 1.01])
def test_churn_threshold_outside_zero_to_one_is_rejected(score: float) -> None:
    loc, _ = rejection(trigger={"kind": "churn_risk", "min_score": score})
    assert loc == ("trigger", "churn_risk", "min_score")


@pytest.mark.parametrize("score", [0.0, 1.0])
def test_churn_threshold_bounds_are_allowed(score: float) -> None:
    c = campaign(trigger={"kind": "churn_risk", "min_score": score})
    assert isinstance(c.trigger, ChurnRiskTrigger)


def test_nth_purchase_below_one_is_rejected() -> None:
    loc, _ = rejection(trigger={"kind": "nth_purchase", "n": 0})
    assert loc == ("trigger", "nth_purchase", "n")


def test_unknown_trigger_kind_is_rejected() -> None:
    loc, _ = rejection(trigger={"kind": "full_moon"})
    assert loc == ("trigger",)


def test_tier_trigger_with_no_direction_is_rejected() -> None:
    loc, msg = rejection(trigger={"kind": "tier_changed", "to_tier": "gold", "directions": []})
    assert loc == ("trigger", "tier_changed", "directions")
    assert "never fires" in msg


def test_tier_trigger_excluded_by_the_audience_is_rejected() -> None:
    _, msg = rejection(
        trigger={"kind": "tier_changed", "to_tier": "gold"}, audience={"tiers": ["silver"]}
    )
    assert "audience.tiers: excludes trigger.to_tier 'gold'" in msg


def test_an_unknown_tier_code_is_accepted_at_definition_time() -> None:
    c = campaign(trigger={"kind": "tier_changed", "to_tier": "platinum"})
    assert isinstance(c.trigger, TierChangedTrigger)


def test_empty_audience_list_is_rejected() -> None:
    loc, msg = rejection(audience={"rfm_segments": []})
    assert loc == ("audience", "rfm_segments")
    assert "matches nobody" in msg


def test_blast_outside_the_active_window_is_rejected() -> None:
    _, msg = rejection(
        trigger={"kind": "blast", "send_at": "2026-07-01T00:00:00Z"},
        controls={"ends_at": "2026-07-01T00:00:00Z"},
    )
    assert msg.endswith(
        "trigger.send_at: outside controls.starts_at..ends_at, so the blast never fires"
    )


def test_blast_inside_the_window_is_fine() -> None:
    c = campaign(
        trigger={"kind": "blast", "send_at": "2026-06-30T23:59:59Z"},
        controls={"ends_at": "2026-07-01T00:00:00Z"},
    )
    assert isinstance(c.trigger, BlastTrigger)


def test_blast_time_must_be_timezone_aware() -> None:
    loc, _ = rejection(trigger={"kind": "blast", "send_at": "2026-06-30T12:00:00"})
    assert loc == ("trigger", "blast", "send_at")


def test_coupon_budget_without_coupons_is_rejected() -> None:
    _, msg = rejection(controls={"budget": {"unit": "coupons", "limit": 10}})
    assert "controls.budget.unit: the campaign issues no coupons" in msg


def test_points_budget_smaller_than_one_award_is_rejected() -> None:
    _, msg = rejection(controls={"budget": {"unit": "points", "limit": 99}})
    assert "controls.budget.limit: 99 is less than one member's cost 100" in msg


def test_points_budget_equal_to_one_award_is_fine() -> None:
    assert campaign(controls={"budget": {"unit": "points", "limit": 100}}).cost_per_member() == 100


def test_zero_budget_is_rejected() -> None:
    loc, _ = rejection(controls={"budget": {"unit": "points", "limit": 0}})
    assert loc == ("controls", "budget", "limit")


def test_frequency_cap_of_zero_is_rejected() -> None:
    loc, _ = rejection(controls={"frequency_cap": {"max_count": 0, "period_days": 7}})
    assert loc == ("controls", "frequency_cap", "max_count")


@pytest.mark.parametrize("share", ["-0.1", "0.91", "1"])
def test_control_share_outside_0_to_0_9_is_rejected(share: str) -> None:
    loc, _ = rejection(controls={"control_share": share})
    assert loc == ("controls", "control_share")


def test_coupon_needs_exactly_one_validity() -> None:
    both = {**COUPON, "valid_until": "2026-12-31T00:00:00Z"}
    neither = {"kind": "coupon", "terms": {"kind": "percent", "value": 10}}
    for action in (both, neither):
        loc, msg = rejection(actions=[action])
        assert loc == ("actions", 0, "coupon")
        assert "valid_days: give exactly one" in msg


def test_coupon_that_expires_before_the_campaign_starts_is_rejected() -> None:
    fixed = {
        "kind": "coupon",
        "terms": {"kind": "free_shipping"},
        "valid_until": "2026-05-01T00:00:00Z",
    }
    _, msg = rejection(actions=[fixed], controls={"starts_at": "2026-05-01T00:00:00Z"})
    assert "actions[0].valid_until: the coupons would expire before they are issued" in msg


@pytest.mark.parametrize(
    ("terms", "field_message"),
    [
        ({"kind": "percent", "value": 0}, "value: a percent coupon needs 1 to 100"),
        ({"kind": "percent", "value": 101}, "value: a percent coupon needs 1 to 100"),
        ({"kind": "amount", "value": 0, "currency": "EUR"}, "value: an amount coupon"),
        ({"kind": "amount", "value": 500}, "currency: required"),
        ({"kind": "free_shipping", "value": 5}, "value: a free-shipping coupon has no value"),
        (
            {"kind": "amount", "value": 5, "currency": "EUR", "max_discount_minor": 3},
            "max_discount_minor",
        ),
        ({"kind": "percent", "value": 5, "min_spend_minor": 1000}, "currency: required"),
    ],
)
def test_coupon_terms_are_validated(terms: dict[str, Any], field_message: str) -> None:
    loc, msg = rejection(actions=[{"kind": "coupon", "terms": terms, "valid_days": 7}])
    assert loc == ("actions", 0, "coupon", "terms")
    assert field_message in msg


def test_message_on_an_unknown_channel_is_rejected() -> None:
    loc, _ = rejection(actions=[{"kind": "message", "channel": "fax", "template": "t"}])
    assert loc == ("actions", 0, "message", "channel")


def test_bonus_of_zero_points_is_rejected() -> None:
    loc, _ = rejection(actions=[{"kind": "bonus_points", "points": 0}])
    assert loc == ("actions", 0, "bonus_points", "points")

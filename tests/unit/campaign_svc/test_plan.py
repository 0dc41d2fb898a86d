from datetime import timedelta
from typing import Any

from campaign_svc.domain import (
    BonusPointsAction,
    CouponAction,
    MessageAction,
    PlanCounters,
    SkipReason,
    plan_actions,
)

from tests.unit.campaign_svc.factories import NOW, campaign, member

BONUS = {"kind": "bonus_points", "points": 100}
EMAIL = {"kind": "message", "channel": "email", "template": "welcome"}
COUPON = {"kind": "coupon", "terms": {"kind": "percent", "value": 10}, "valid_days": 14}
NO_COUNTERS = PlanCounters()


def welcome(**overrides: Any) -> Any:
    return campaign(actions=[BONUS, EMAIL, COUPON], **overrides)


def test_treatment_gets_every_action_and_an_exposure() -> None:
    d = plan_actions(welcome(), member(consents={"email": True}), "treatment", NOW, NO_COUNTERS)
    assert d.exposed
    assert d.skip_reason is None
    assert [type(a) for a in d.actions] == [BonusPointsAction, MessageAction, CouponAction]
    assert d.skipped_actions == ()


def test_control_gets_an_exposure_and_no_action() -> None:
    d = plan_actions(welcome(), member(consents={"email": True}), "control", NOW, NO_COUNTERS)
    assert d.group == "control"
    assert d.exposed
    assert d.actions == ()
    assert d.budget_cost == 0


def test_message_without_consent_is_skipped_alone() -> None:
    d = plan_actions(welcome(), member(consents={"email": False}), "treatment", NOW, NO_COUNTERS)
    assert d.exposed
    assert [type(a) for a in d.actions] == [BonusPointsAction, CouponAction]
    assert [(type(s.action), s.reason) for s in d.skipped_actions] == [
        (MessageAction, SkipReason.NO_CONSENT)
    ]


def test_member_who_could_receive_nothing_is_not_exposed_in_either_group() -> None:
    only_email = campaign(actions=[EMAIL])
    for group in ("treatment", "control"):
        d = plan_actions(only_email, member(), group, NOW, NO_COUNTERS)
        assert not d.exposed
        assert d.skip_reason is SkipReason.NO_CONSENT


def test_outside_the_window_nothing_happens() -> None:
    c = welcome(controls={"ends_at": NOW.isoformat()})
    d = plan_actions(c, member(), "treatment", NOW, NO_COUNTERS)
    assert (d.exposed, d.skip_reason, d.actions) == (False, SkipReason.OUTSIDE_WINDOW, ())


def test_not_in_audience() -> None:
    c = welcome(audience={"tiers": ["gold"]})
    d = plan_actions(c, member(tier="basic"), "treatment", NOW, NO_COUNTERS)
    assert d.skip_reason is SkipReason.NOT_IN_AUDIENCE


def test_occasion_already_done() -> None:
    d = plan_actions(welcome(), member(), "control", NOW, PlanCounters(occasion_done=True))
    assert (d.exposed, d.skip_reason) == (False, SkipReason.ALREADY_DONE)


def test_frequency_cap_applies_to_both_groups_at_the_limit() -> None:
    c = welcome(controls={"frequency_cap": {"max_count": 1, "period_days": 30}})
    counters = PlanCounters(previous_exposures=(NOW - timedelta(days=29),))
    for group in ("treatment", "control"):
        d = plan_actions(c, member(), group, NOW, counters)
        assert (d.exposed, d.skip_reason) == (False, SkipReason.FREQUENCY_CAP)
    later = PlanCounters(previous_exposures=(NOW - timedelta(days=30),))
    assert plan_actions(c, member(), "treatment", NOW, later).exposed


def test_budget_exactly_at_the_limit_then_exhausted() -> None:
    c = welcome(controls={"budget": {"unit": "points", "limit": 1_000}})
    fits = plan_actions(c, member(), "treatment", NOW, PlanCounters(budget_spent=900))
    assert fits.exposed
    assert fits.budget_cost == 100
    over = plan_actions(c, member(), "treatment", NOW, PlanCounters(budget_spent=901))
    assert (over.exposed, over.skip_reason, over.actions) == (
        False,
        SkipReason.BUDGET_EXHAUSTED,
        (),
    )


def test_control_members_stop_being_exposed_when_the_budget_is_gone() -> None:
    c = welcome(controls={"budget": {"unit": "coupons", "limit": 10}})
    d = plan_actions(c, member(), "control", NOW, PlanCounters(budget_spent=10))
    assert d.skip_reason is SkipReason.BUDGET_EXHAUSTED


def test_coupon_budget_counts_coupons() -> None:
    c = welcome(controls={"budget": {"unit": "coupons", "limit": 10}})
    d = plan_actions(c, member(), "treatment", NOW, PlanCounters(budget_spent=9))
    assert d.budget_cost == 1


def test_coupon_past_its_fixed_validity_is_skipped() -> None:
    fixed = {"kind": "coupon", "terms": {"kind": "free_shipping"}, "valid_until": NOW.isoformat()}
    c = campaign(actions=[fixed, BONUS])
    d = plan_actions(c, member(), "treatment", NOW, NO_COUNTERS)
    assert [type(a) for a in d.actions] == [BonusPointsAction]
    assert d.skipped_actions[0].reason is SkipReason.COUPON_VALIDITY_ENDED


def test_coupon_expiry_from_valid_days() -> None:
    action = CouponAction.model_validate(COUPON)
    assert action.expiry_for(NOW) == NOW + timedelta(days=14)

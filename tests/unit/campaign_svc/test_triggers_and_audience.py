from datetime import timedelta

import pytest
from campaign_svc.domain import blast_due, in_audience, matches_trigger, occasion_key

from tests.unit.campaign_svc.factories import NOW, campaign, member


def test_welcome_fires_on_member_registered_only() -> None:
    c = campaign(trigger={"kind": "member_registered"})
    assert matches_trigger(c, "member.registered", {}, member())
    assert not matches_trigger(c, "member.updated", {}, member())


@pytest.mark.parametrize(
    ("payload", "fires"),
    [
        ({"to_tier": "gold", "direction": "upgrade"}, True),
        ({"to_tier": "gold", "direction": "downgrade"}, False),
        ({"to_tier": "silver", "direction": "upgrade"}, False),
        ({}, False),
    ],
)
def test_tier_changed_to_a_tier_fires_on_upgrades_by_default(
    payload: dict[str, object], fires: bool
) -> None:
    c = campaign(trigger={"kind": "tier_changed", "to_tier": "gold"})
    assert matches_trigger(c, "tier.changed", payload, member()) is fires


def test_tier_changed_directions_are_configurable() -> None:
    c = campaign(trigger={"kind": "tier_changed", "to_tier": "silver", "directions": ["downgrade"]})
    down = {"to_tier": "silver", "direction": "downgrade"}
    assert matches_trigger(c, "tier.changed", down, member())
    assert not matches_trigger(c, "tier.changed", {**down, "direction": "upgrade"}, member())


@pytest.mark.parametrize(("score", "fires"), [(0.69, False), (0.7, True), (0.95, True)])
def test_churn_risk_fires_at_or_above_the_threshold(score: float, fires: bool) -> None:
    c = campaign(trigger={"kind": "churn_risk", "min_score": 0.7})
    assert matches_trigger(c, "member.churn_risk", {"score": score}, member()) is fires


@pytest.mark.parametrize("bad", [None, "high", True, [0.9]])
def test_churn_risk_ignores_a_malformed_score(bad: object) -> None:
    c = campaign(trigger={"kind": "churn_risk", "min_score": 0.0})
    assert not matches_trigger(c, "member.churn_risk", {"score": bad}, member())


def test_points_expiring_fires_from_the_minimum() -> None:
    c = campaign(trigger={"kind": "points_expiring", "min_points": 500})
    assert matches_trigger(c, "points.expiring", {"points": 500}, member())
    assert not matches_trigger(c, "points.expiring", {"points": 499}, member())
    assert not matches_trigger(c, "points.earned", {"points": 900}, member())


def test_nth_purchase_fires_on_exactly_the_nth() -> None:
    c = campaign(trigger={"kind": "nth_purchase", "n": 3})
    assert not matches_trigger(c, "order.purchased", {}, member(purchase_count=2))
    assert matches_trigger(c, "order.purchased", {}, member(purchase_count=3))
    assert not matches_trigger(c, "order.purchased", {}, member(purchase_count=4))
    assert not matches_trigger(c, "order.refunded", {}, member(purchase_count=3))


@pytest.mark.parametrize(
    "trigger",
    [{"kind": "birthday"}, {"kind": "blast", "send_at": "2026-06-01T00:00:00Z"}],
)
def test_schedules_never_match_events(trigger: dict[str, object]) -> None:
    c = campaign(trigger=trigger)
    assert not matches_trigger(c, "member.registered", {}, member())


def test_blast_is_due_from_its_send_time() -> None:
    c = campaign(trigger={"kind": "blast", "send_at": NOW.isoformat()})
    assert blast_due(c, NOW)
    assert not blast_due(c, NOW - timedelta(microseconds=1))
    assert not blast_due(campaign(), NOW)


def test_occasion_keys() -> None:
    m = member(time_zone="Pacific/Auckland")
    assert occasion_key(campaign(trigger={"kind": "birthday"}), m, NOW) == "birthday:2026"
    assert occasion_key(campaign(), m, NOW) == "welcome"
    assert occasion_key(campaign(trigger={"kind": "nth_purchase", "n": 2}), m, NOW) == "purchase:2"
    blast = campaign(trigger={"kind": "blast", "send_at": NOW.isoformat()})
    assert occasion_key(blast, m, NOW) == "blast"
    churn = campaign(trigger={"kind": "churn_risk", "min_score": 0.5})
    assert occasion_key(churn, m, NOW) == "event"


def test_empty_audience_matches_everyone() -> None:
    assert in_audience(campaign(), member())


def test_audience_by_tier() -> None:
    c = campaign(audience={"tiers": ["gold", "diamond"]})
    assert in_audience(c, member(tier="gold"))
    assert not in_audience(c, member(tier="silver"))
    assert not in_audience(c, member())


def test_audience_by_rfm_segment() -> None:
    c = campaign(audience={"rfm_segments": ["at_risk", "hibernating"]})
    assert in_audience(c, member(rfm_segment="at_risk"))
    assert not in_audience(c, member(rfm_segment="champions"))
    assert not in_audience(c, member())


def test_audience_by_attributes_needs_every_one() -> None:
    c = campaign(audience={"attributes": {"country": "NZ", "store": "42"}})
    assert in_audience(c, member(attributes={"country": "NZ", "store": "42", "x": "y"}))
    assert not in_audience(c, member(attributes={"country": "NZ"}))
    assert not in_audience(c, member(attributes={"country": "AU", "store": "42"}))


def test_audience_by_consent_is_opt_in() -> None:
    c = campaign(audience={"consents": ["sms"]})
    assert in_audience(c, member(consents={"sms": True}))
    assert not in_audience(c, member(consents={"sms": False}))
    assert not in_audience(c, member(consents={"email": True}))


def test_all_filters_combine() -> None:
    c = campaign(audience={"tiers": ["gold"], "rfm_segments": ["champions"]})
    assert in_audience(c, member(tier="gold", rfm_segment="champions"))
    assert not in_audience(c, member(tier="gold", rfm_segment="at_risk"))

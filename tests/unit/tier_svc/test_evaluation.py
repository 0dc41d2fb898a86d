from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tier_svc.domain import (
    ChangeReason,
    Ladder,
    TierState,
    UnknownTierError,
    default_ladder,
    enroll,
    evaluate,
    evaluate_downgrade,
    evaluate_refund,
    evaluate_upgrade,
    is_protected,
    protected_until,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LADDER = default_ladder()


def state(code: str, reached_days_ago: float) -> TierState:
    return TierState(tier_code=code, reached_at=NOW - timedelta(days=reached_days_ago))


def test_enroll_places_a_new_member_on_the_lowest_tier() -> None:
    change = enroll(0, LADDER, NOW)
    assert (change.from_tier, change.to_tier, change.direction) == (None, "basic", "initial")
    assert change.reason is ChangeReason.ENROLLED
    assert change.protected_until == NOW + timedelta(days=365)


def test_upgrade_when_threshold_is_exactly_met() -> None:
    change = evaluate_upgrade(state("basic", 10), 100_000, LADDER, NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier, change.direction) == ("basic", "silver", "upgrade")
    assert change.reason is ChangeReason.THRESHOLD_REACHED
    assert change.qualifying_value == 100_000
    assert change.multiplier == Decimal("1.25")


def test_no_upgrade_one_minor_unit_short() -> None:
    assert evaluate_upgrade(state("basic", 10), 99_999, LADDER, NOW) is None


def test_upgrade_skips_levels() -> None:
    change = evaluate_upgrade(state("basic", 10), 2_000_000, LADDER, NOW)
    assert change is not None
    assert change.to_tier == "diamond"


def test_upgrade_ignores_protection_and_restarts_it() -> None:
    change = evaluate_upgrade(state("silver", 1), 500_000, LADDER, NOW)
    assert change is not None
    assert change.reached_at == NOW
    assert change.protected_until == NOW + timedelta(days=365)
    assert change.new_state() == TierState(tier_code="gold", reached_at=NOW)


def test_upgrade_never_lowers() -> None:
    assert evaluate_upgrade(state("gold", 500), 0, LADDER, NOW) is None


def test_protection_ends_exactly_protection_days_after_reaching() -> None:
    s = state("gold", 365)
    assert protected_until(s, LADDER) == NOW
    assert not is_protected(s, LADDER, NOW)
    assert is_protected(s, LADDER, NOW - timedelta(microseconds=1))


def test_no_downgrade_one_instant_before_protection_ends() -> None:
    s = state("gold", 365)
    assert evaluate_downgrade(s, 0, LADDER, NOW - timedelta(microseconds=1)) is None


def test_downgrade_on_the_protection_boundary_to_highest_tier_still_met() -> None:
    change = evaluate_downgrade(state("diamond", 365), 150_000, LADDER, NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier, change.direction) == (
        "diamond",
        "silver",
        "downgrade",
    )
    assert change.reason is ChangeReason.PROTECTION_ENDED
    assert change.multiplier == Decimal("1.25")


def test_downgrade_restarts_protection() -> None:
    change = evaluate_downgrade(state("gold", 400), 0, LADDER, NOW)
    assert change is not None
    assert change.protected_until == NOW + timedelta(days=365)
    after = change.new_state()
    assert evaluate_downgrade(after, 0, LADDER, NOW + timedelta(days=364)) is None


def test_no_downgrade_when_the_value_still_meets_the_tier() -> None:
    assert evaluate_downgrade(state("gold", 800), 500_000, LADDER, NOW) is None


def test_no_downgrade_below_the_lowest_tier() -> None:
    assert evaluate_downgrade(state("basic", 800), 0, LADDER, NOW) is None


def test_zero_protection_days_downgrades_at_once() -> None:
    ladder = Ladder(tiers=LADDER.tiers, protection_days=0)
    change = evaluate_downgrade(TierState(tier_code="gold", reached_at=NOW), 0, ladder, NOW)
    assert change is not None
    assert change.to_tier == "basic"


def test_evaluate_prefers_upgrade_then_downgrade() -> None:
    up = evaluate(state("silver", 800), 600_000, LADDER, NOW)
    down = evaluate(state("silver", 800), 0, LADDER, NOW)
    same = evaluate(state("silver", 800), 100_000, LADDER, NOW)
    assert up is not None
    assert up.to_tier == "gold"
    assert down is not None
    assert down.to_tier == "basic"
    assert same is None


def test_refund_revokes_a_tier_the_refunded_purchase_bought() -> None:
    reached = NOW - timedelta(days=2)
    s = TierState(tier_code="gold", reached_at=reached)
    change = evaluate_refund(s, 120_000, LADDER, purchased_at=reached, now=NOW)
    assert change is not None
    assert (change.to_tier, change.direction) == ("silver", "downgrade")
    assert change.reason is ChangeReason.REFUND_REVOKED


def test_refund_of_a_later_purchase_does_not_touch_a_protected_tier() -> None:
    s = state("gold", 30)
    assert evaluate_refund(s, 0, LADDER, purchased_at=NOW - timedelta(days=1), now=NOW) is None


def test_refund_that_still_meets_the_tier_changes_nothing() -> None:
    s = state("gold", 2)
    assert evaluate_refund(s, 500_000, LADDER, purchased_at=s.reached_at, now=NOW) is None


def test_refund_revocation_can_be_switched_off() -> None:
    ladder = Ladder(tiers=LADDER.tiers, revoke_on_refund=False)
    s = state("gold", 2)
    assert evaluate_refund(s, 0, ladder, purchased_at=s.reached_at, now=NOW) is None


def test_a_tier_removed_from_the_ladder_is_an_error() -> None:
    with pytest.raises(UnknownTierError):
        evaluate(state("platinum", 1), 0, LADDER, NOW)

"""Rules added for the service: decision instants, points reversals, ladder error fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from tier_svc.api import validation_problem
from tier_svc.domain import (
    Contribution,
    Ladder,
    decision_instant,
    default_ladder,
    points_reversal_contribution,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EARNED_AT = NOW - timedelta(days=20)


def test_decision_is_taken_at_the_event_time() -> None:
    assert decision_instant(NOW - timedelta(days=3), NOW) == NOW - timedelta(days=3)


def test_decision_is_never_in_the_future() -> None:
    assert decision_instant(NOW + timedelta(minutes=5), NOW) == NOW


def test_decision_never_goes_back_before_the_last_tier_change() -> None:
    last_change = NOW - timedelta(days=1)
    assert decision_instant(NOW - timedelta(days=3), NOW, last_change) == last_change
    assert decision_instant(NOW - timedelta(hours=1), NOW, last_change) == NOW - timedelta(hours=1)


def test_points_reversal_is_dated_at_the_earning() -> None:
    assert points_reversal_contribution(EARNED_AT, 40, 100, 0) == Contribution(EARNED_AT, -40)


@pytest.mark.parametrize(
    ("points", "reversed_before", "taken"),
    [(80, 50, -50), (10, 100, 0), (100, 0, -100), (150, 0, -100)],
)
def test_points_reversals_are_capped_at_what_the_order_earned(
    points: int, reversed_before: int, taken: int
) -> None:
    assert points_reversal_contribution(EARNED_AT, points, 100, reversed_before).value == taken


def _ladder_error(**changes: object) -> ValidationError:
    fields = default_ladder().model_dump()
    fields.update(changes)
    with pytest.raises(ValidationError) as caught:
        Ladder.model_validate(fields)
    return caught.value


def test_ladder_rule_errors_name_the_tier_field() -> None:
    tiers = default_ladder().model_dump()["tiers"]
    tiers[2]["threshold"] = 1
    problem = validation_problem(_ladder_error(tiers=tiers))
    assert problem.status == 422
    assert problem.errors is not None
    assert problem.errors[0]["field"] == "tiers[gold].threshold"
    assert problem.errors[0]["message"].startswith("must be greater than silver's")


def test_field_errors_keep_their_location() -> None:
    problem = validation_problem(_ladder_error(window_days=0))
    assert problem.errors is not None
    assert problem.errors[0]["field"] == "window_days"
    assert problem.detail.startswith("window_days: ")

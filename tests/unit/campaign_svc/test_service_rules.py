"""Pure helpers of the service layer: field names in 422s, cursors, schedule candidates,
occasion keys and how coupon refusals are answered."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from campaign_svc.api_coupons import refusal_problem
from campaign_svc.domain import CouponRefusal, is_birthday_today
from campaign_svc.firing import occasion_for
from campaign_svc.jobs import birthday_days_around
from campaign_svc.pagination import decode_cursor, encode_cursor
from campaign_svc.validation import parse_definition
from memberflow_platform.problems import Problem

from tests.unit.campaign_svc.factories import CAMPAIGN_ID, NOW, campaign, member


def _fields(**overrides: Any) -> list[str]:
    document: dict[str, Any] = {
        "campaign_id": str(CAMPAIGN_ID),
        "name": "c",
        "trigger": {"kind": "member_registered"},
        "actions": [{"kind": "bonus_points", "points": 10}],
        **overrides,
    }
    with pytest.raises(Problem) as refused:
        parse_definition(document)
    assert refused.value.status == 422
    return [error["field"] for error in refused.value.errors or []]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"actions": []}, "actions"),
        ({"trigger": {"kind": "nth_purchase", "n": 0}}, "trigger.nth_purchase.n"),
        (
            {"trigger": {"kind": "tier_changed", "to_tier": "gold"}, "audience": {"tiers": []}},
            "audience.tiers",
        ),
        (
            {
                "trigger": {"kind": "tier_changed", "to_tier": "gold"},
                "audience": {"tiers": ["silver"]},
            },
            "audience.tiers",
        ),
        (
            {"controls": {"budget": {"unit": "points", "limit": 5}}},
            "controls.budget.limit",
        ),
        (
            {"controls": {"frequency_cap": {"max_count": 0, "period_days": 1}}},
            "controls.frequency_cap.max_count",
        ),
        (
            {
                "controls": {
                    "starts_at": "2026-01-02T00:00:00Z",
                    "ends_at": "2026-01-01T00:00:00Z",
                }
            },
            "controls.ends_at",
        ),
        (
            {"actions": [{"kind": "coupon", "terms": {"kind": "percent", "value": 5}}]},
            "actions.0.coupon.valid_days",
        ),
        (
            {
                "actions": [
                    {"kind": "coupon", "terms": {"kind": "amount", "value": 5}, "valid_days": 1}
                ]
            },
            "actions.0.coupon.terms.currency",
        ),
        (
            {"actions": [{"kind": "message", "channel": "fax", "template": "t"}]},
            "actions.0.message.channel",
        ),
        ({"name": ""}, "name"),
    ],
)
def test_every_refusal_names_its_field(overrides: dict[str, Any], field: str) -> None:
    assert _fields(**overrides) == [field]


def test_a_valid_definition_passes() -> None:
    parsed = parse_definition(
        {
            "campaign_id": str(CAMPAIGN_ID),
            "name": "ok",
            "trigger": {"kind": "birthday"},
            "actions": [{"kind": "bonus_points", "points": 10}],
        }
    )
    assert parsed.trigger.kind == "birthday"


def test_cursors_round_trip_and_nonsense_is_a_422_on_cursor() -> None:
    position = (NOW, uuid4())
    assert decode_cursor(encode_cursor(position)) == position
    assert decode_cursor(None) is None
    for nonsense in ("", "abc", encode_cursor((NOW, uuid4()))[:-3] + "!!!"):
        with pytest.raises(Problem) as refused:
            decode_cursor(nonsense)
        assert refused.value.errors == [
            {"field": "cursor", "message": "not a cursor returned by this API"}
        ]


def test_birthday_candidates_include_every_zone_that_can_be_on_its_birthday() -> None:
    zones = [
        "Pacific/Kiritimati",
        "Pacific/Auckland",
        "UTC",
        "America/Los_Angeles",
        "Pacific/Pago_Pago",
        "Etc/GMT+12",
    ]
    start = datetime(2027, 1, 1, tzinfo=UTC)
    for hour in range(0, 24 * 60, 7):
        now = start + timedelta(hours=hour)
        days = birthday_days_around(now)
        for tz in zones:
            local = now.astimezone(ZoneInfo(tz)).date()
            assert (local.month, local.day) in days
            assert is_birthday_today(local.month, local.day, tz, now)


def test_month_end_birthdays_are_candidates_on_the_last_day() -> None:
    days = birthday_days_around(datetime(2027, 2, 28, 12, tzinfo=UTC))
    assert {(2, 28), (2, 29), (2, 30), (2, 31), (3, 1), (2, 27)} <= days
    assert (3, 2) not in days
    assert (4, 31) in birthday_days_around(datetime(2027, 4, 30, 12, tzinfo=UTC))


def test_repeatable_triggers_key_on_the_event_and_once_only_ones_on_the_occasion() -> None:
    event_id = UUID("0190b4c2-0000-7000-8000-0000000000ee")
    churn = campaign(trigger={"kind": "churn_risk", "min_score": 0.5})
    assert occasion_for(churn, member(), NOW, event_id) == f"event:{event_id}"
    assert occasion_for(campaign(), member(), NOW, event_id) == "welcome"
    birthday = campaign(trigger={"kind": "birthday"})
    assert occasion_for(birthday, member(time_zone="Pacific/Auckland"), NOW, None) == (
        "birthday:2026"
    )


@pytest.mark.parametrize(
    ("reason", "status", "field"),
    [
        (CouponRefusal.NOT_OWNER, 403, "code"),
        (CouponRefusal.VOIDED, 409, "code"),
        (CouponRefusal.ALREADY_REDEEMED, 409, "code"),
        (CouponRefusal.EXPIRED, 409, "code"),
        (CouponRefusal.NOT_YET_VALID, 409, "code"),
        (CouponRefusal.CURRENCY_MISMATCH, 422, "currency"),
        (CouponRefusal.BELOW_MINIMUM_SPEND, 422, "basket_total_minor"),
    ],
)
def test_coupon_refusals_are_answered_with_their_reason(
    reason: CouponRefusal, status: int, field: str
) -> None:
    problem = refusal_problem(reason)
    assert problem.status == status
    assert problem.code == reason.value
    assert problem.errors == [{"field": field, "message": reason.value}]

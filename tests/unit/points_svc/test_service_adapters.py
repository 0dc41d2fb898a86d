"""The service's pure adapters: events from postings, API views, cursors, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from points_svc import points_events, views
from points_svc.domain import (
    Account,
    EarningRules,
    EntryKind,
    LedgerEntry,
    OrderEarning,
    Purchase,
    PurchaseLine,
    Source,
    credit,
    earn,
    expire,
    expiring_reminders,
    redeem,
    release,
    reverse_for_refund,
)
from points_svc.repository import _array
from points_svc.settings import PointsSettings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = EarningRules()
LOT_A, LOT_B = UUID(int=1), UUID(int=2)


def bought(account: Account = Account(), spend_minor: int = 10_000) -> tuple[Account, OrderEarning]:
    posting = earn(
        account, Purchase("o-1", spend_minor, (PurchaseLine("books", 1, spend_minor),)),
        RULES, Decimal("1.5"), LOT_A, T0,
    )  # fmt: skip
    assert posting.order is not None
    return posting.account, posting.order


def test_points_earned_describes_the_new_lot() -> None:
    posting = earn(
        Account(debt=20), Purchase("o-1", 10_000, (PurchaseLine("books", 1, 10_000),)),
        RULES, Decimal("1.5"), LOT_A, T0,
    )  # fmt: skip
    payload = points_events.earned(posting, T0, multiplier=Decimal("1.5"))
    assert payload is not None
    assert (payload.lot_id, payload.points, payload.source) == (LOT_A, 150, "order")
    assert payload.order_id == "o-1"
    assert payload.debt_repaid == 20
    assert payload.balance_after == 130
    assert payload.expires_at == T0 + timedelta(days=365)


def test_an_order_earning_nothing_announces_nothing() -> None:
    posting = earn(
        Account(), Purchase("o-0", 50, (PurchaseLine("books", 1, 50),)), RULES, Decimal(1),
        LOT_A, T0,
    )  # fmt: skip
    assert points_events.earned(posting, T0) is None


def test_points_reversed_counts_the_debt_and_skips_nothing_reversed() -> None:
    account, order = bought()
    spent = redeem(account, 150, T0).account
    posting = reverse_for_refund(spent, order, "r-1", 10_000, T0)
    payload = points_events.reversed_for_refund(posting, "r-1", T0)
    assert payload is not None
    assert (payload.points, payload.debt_points, payload.balance_after) == (150, 150, -150)
    repeat = reverse_for_refund(posting.account, posting.order or order, "r-1", 10_000, T0)
    assert points_events.reversed_for_refund(repeat, "r-1", T0) is None


def test_points_reversed_includes_waived_points() -> None:
    account, order = bought()
    expired = expire(account, T0 + timedelta(days=400)).account
    posting = reverse_for_refund(expired, order, "r-1", 10_000, T0 + timedelta(days=401))
    payload = points_events.reversed_for_refund(posting, "r-1", T0 + timedelta(days=401))
    assert payload is not None
    assert payload.points == 150  # all waived: the member never had their use
    assert payload.debt_points == 0


def test_job_events() -> None:
    account, _ = bought()
    bonus = credit(account, 10, Source("bonus", "a"), LOT_B, T0 + timedelta(days=1), RULES)
    later = T0 + timedelta(days=365, hours=1)
    expired = points_events.expired(expire(bonus.account, later), later)
    assert [(p.lot_id, p.points, p.balance_after) for p in expired] == [(LOT_A, 150, 10)]

    _, reminders = expiring_reminders(bonus.account, T0 + timedelta(days=340), 30)
    assert [(p.points, p.expires_on) for p in points_events.expiring(reminders)] == [
        (150, (T0 + timedelta(days=365)).date()),
        (10, (T0 + timedelta(days=366)).date()),
    ]
    pending = earn(
        Account(), Purchase("o-2", 1_000, (PurchaseLine("x", 1, 1_000),)),
        EarningRules(pending_days=14), Decimal(1), LOT_B, T0,
    ).account  # fmt: skip
    _, releases = release(pending, T0 + timedelta(days=14))
    assert [(p.lot_id, p.points) for p in points_events.released(releases)] == [(LOT_B, 10)]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (LedgerEntry(EntryKind.EARN, 5, T0, order_id="o"), {"type": "order", "order_id": "o"}),
        (
            LedgerEntry(EntryKind.REVERSE, -5, T0, order_id="o", reference="r"),
            {"type": "refund", "order_id": "o", "refund_id": "r"},
        ),
        (
            LedgerEntry(EntryKind.REDEEM, -5, T0, reference="red"),
            {"type": "redemption", "redemption_id": "red"},
        ),
        (
            LedgerEntry(EntryKind.ADJUST, 5, T0, actor="alice", reason="goodwill"),
            {"type": "adjustment", "actor": "alice", "reason": "goodwill"},
        ),
        (
            LedgerEntry(EntryKind.EXPIRE, -5, T0, reference=str(LOT_A)),
            {"type": "expiry", "lot_id": str(LOT_A)},
        ),
        (
            LedgerEntry(EntryKind.BONUS, 5, T0, reference="award"),
            {"type": "bonus", "award_id": "award"},
        ),
    ],
)
def test_every_entry_names_its_cause(entry: LedgerEntry, expected: dict[str, str]) -> None:
    cause = views.cause_of(entry, None).model_dump(exclude_none=True)
    assert cause == expected


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    assert views.decode_cursor(views.encode_cursor(12345)) == 12345
    for junk in ("", "nope", "ZXg", "%%%", views.encode_cursor(1)[:-1] + "!"):
        with pytest.raises(views.InvalidCursor):
            views.decode_cursor(junk)


def test_array_literals_quote_text() -> None:
    assert _array([LOT_A, LOT_B]) == f"{{{LOT_A},{LOT_B}}}"
    assert _array([-5, 10]) == "{-5,10}"
    assert _array(['r "1"', "a,b", "back\\slash"]) == '{"r \\"1\\"","a,b","back\\\\slash"}'
    assert _array([]) == "{}"


def test_settings_turn_into_earning_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MF_POINTS_RATE_PER_UNIT", "2.5")
    monkeypatch.setenv("MF_POINTS_EXCLUDED_CATEGORIES", '["gift_card", "tobacco"]')
    monkeypatch.setenv("MF_POINTS_PENDING_DAYS", "14")
    monkeypatch.setenv("MF_POINTS_REMINDER_DAYS", "7")
    settings = PointsSettings()
    assert settings.service_name == "points-svc"
    assert settings.http_port == 8002
    assert settings.earning_rules() == EarningRules(
        rate_per_unit=Decimal("2.5"),
        excluded_categories=frozenset({"gift_card", "tobacco"}),
        pending_days=14,
        expiring_reminder_days=7,
    )

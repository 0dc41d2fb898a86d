"""The service glue around the math: event → fact rows, batching, COPY encodings, reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from analytics_svc import clv, pgbinary, repository
from analytics_svc.facts import (
    ERASURES,
    POINTS,
    PURCHASES,
    REFUNDS,
    FactBatch,
    RawEvent,
    facts_of,
)
from analytics_svc.kpis import Bucket
from analytics_svc.rebuild import raw_event
from analytics_svc.reports import bucket_report, clean
from analytics_svc.settings import AnalyticsSettings
from memberflow_events.codec import InvalidEvent, encode
from memberflow_events.envelope import EventPayload, new_event
from memberflow_events.payloads import (
    CampaignExposed,
    MemberActivity,
    MemberErased,
    MemberFeedback,
    MemberRegistered,
    OrderLine,
    OrderPurchased,
    OrderRefunded,
    PointsAdjusted,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    PointsReleased,
    PointsReversed,
    TierChanged,
)

MEMBER = uuid.uuid4()
AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
LOT = uuid.uuid4()

PAYLOADS: list[EventPayload] = [
    OrderPurchased(
        order_id="o-1",
        member_id=MEMBER,
        currency="EUR",
        total_minor=1234,
        lines=[OrderLine(sku="s", category="c", quantity=1, unit_price_minor=1234)],
        channel="web\tshop",
    ),
    OrderRefunded(order_id="o-1", refund_id="r-1", amount_minor=200),
    MemberRegistered(),
    MemberErased(),
    MemberActivity(kind="login"),
    MemberFeedback(nps_score=9),
    PointsEarned(
        lot_id=LOT,
        points=12,
        source="order",
        debt_repaid=2,
        available_at=AT + timedelta(days=14),
        expires_at=AT + timedelta(days=400),
    ),
    PointsReleased(lot_id=LOT, points=10),
    PointsRedeemed(redemption_id=uuid.uuid4(), points=5),
    PointsReversed(order_id="o-1", refund_id="r-1", points=3),
    PointsExpired(lot_id=LOT, points=1),
    PointsAdjusted(points=-4, actor="ops", reason="fix"),
    TierChanged(
        from_tier="basic", to_tier="gold", direction="upgrade", reason="spend", qualifying_value=1
    ),
    CampaignExposed(campaign_id=uuid.uuid4(), group="control", trigger="blast"),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.event_type)
def test_replay_reads_the_same_rows_as_the_live_handler(payload: EventPayload) -> None:
    event = new_event(payload, producer="test", member_id=MEMBER, occurred_at=AT)
    live = facts_of(RawEvent.of(event))
    replayed = raw_event(encode(event))
    assert replayed is not None
    assert facts_of(replayed) == live
    assert len(live) == 1


def test_fact_rows_carry_the_event_identity_and_signed_points() -> None:
    def rows(payload: EventPayload) -> tuple[object, ...]:
        event = new_event(payload, producer="t", member_id=MEMBER, occurred_at=AT)
        ((_, row),) = facts_of(RawEvent.of(event))
        return row

    purchase = rows(PAYLOADS[0])
    assert purchase[0] == "o-1"
    assert purchase[4] == 1234
    assert rows(PAYLOADS[1])[0] == "r-1"
    deltas = {p.event_type: rows(p)[5] for p in PAYLOADS if p.event_type.startswith("points.")}
    assert deltas == {
        "points.earned": 12,
        "points.released": 0,
        "points.redeemed": -5,
        "points.reversed": -3,
        "points.expired": -1,
        "points.adjusted": -4,
    }
    assert rows(PAYLOADS[6])[6] == 10  # the lot holds what did not repay debt


def test_a_record_that_is_not_an_event_is_invalid_and_an_unprojected_type_is_ignored() -> None:
    with pytest.raises(InvalidEvent):
        raw_event(b"not json")
    with pytest.raises(InvalidEvent):
        raw_event(b'{"type": "order.purchased", "version": 9}')
    expiring = new_event(
        PointsReleased(lot_id=LOT, points=1), producer="t", member_id=MEMBER, occurred_at=AT
    )
    assert raw_event(encode(expiring)) is not None
    assert facts_of(RawEvent("e", "coupon.issued", AT.isoformat(), None, {})) == []


def test_batch_keeps_the_earliest_first_seen_row_and_every_copy_of_the_others() -> None:
    batch = FactBatch()
    later = ("m", "e1", "2025-01-02T00:00:00Z")
    earlier = ("m", "e2", "2025-01-02T01:00:00+02:00")  # 23:00Z on the 1st: earlier
    batch.add(ERASURES, later)
    batch.add(ERASURES, earlier)
    batch.add(PURCHASES, ("o", "e3"))
    batch.add(PURCHASES, ("o", "e3"))
    tables = dict(batch.tables())
    assert tables[ERASURES] == [earlier]
    assert tables[PURCHASES] == [("o", "e3"), ("o", "e3")]  # ON CONFLICT DO NOTHING drops one
    assert REFUNDS not in tables
    assert POINTS not in tables


def test_copy_text_escapes_separators_and_marks_nulls() -> None:
    assert repository._copy_text([("a", None, 5), ("b", "c", 6)]) == b"a\t\\N\t5\nb\tc\t6\n"
    tricky = [("a\tb", None, "x\\y"), ("c\nd", "\x1f", "\r")]
    assert repository._copy_text(tricky) == (b"a\\tb\t\\N\tx\\\\y\nc\\nd\t\x1f\t\\r\n")


def test_binary_copy_round_trip() -> None:
    ids = np.array([uuid.uuid4().bytes for _ in range(5)], dtype="V16")
    columns = [
        (ids, "uuid"),
        (np.arange(5, dtype=np.int64), "int4"),
        (np.array([1.5, -2.0, np.nan, 0.0, 1e300]), "float8"),
        (np.array([True, False, True, True, False]), "bool"),
        (np.full(5, pgbinary.timestamp_value(AT), dtype=np.int64), "timestamptz"),
        (np.array([1, 2, 3, 4, 5], dtype=np.int16), "int2"),
    ]
    decoded = pgbinary.decode(pgbinary.encode(columns), [kind for _, kind in columns])
    assert decoded[0].tobytes() == ids.tobytes()
    assert decoded[1].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(decoded[2], columns[2][0])
    assert decoded[3].tolist() == [True, False, True, True, False]
    assert decoded[4][0] == (AT - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    with pytest.raises(ValueError, match="binary COPY"):
        pgbinary.decode(b"nope", ["int4"])


def test_uuid_index_follows_postgresql_order() -> None:
    ids = [uuid.uuid4() for _ in range(300)]
    rows = [ids[i % 300] for i in range(1200)]
    raw = np.array([u.bytes for u in rows], dtype="V16")
    members, index = repository._index_uuids(raw)
    distinct = [uuid.UUID(bytes=m.tobytes()) for m in members]
    assert distinct == sorted(set(ids), key=lambda u: u.bytes)  # uuid order is byte order
    assert [distinct[i] for i in index] == rows


def test_survival_term_once_per_distinct_pair_equals_the_direct_evaluation() -> None:
    rng = np.random.default_rng(3)
    params = clv.BgNbdParams(r=0.6, alpha=40.0, a=0.8, b=2.5)
    x = rng.integers(0, 9, 5000).astype(float)
    T = rng.integers(0, 400, 5000).astype(float)
    t_x = np.minimum(T, np.where(x > 0, rng.integers(0, 400, 5000), 0)).astype(float)
    direct = clv._survival_term(params, x, T, 90.0)
    np.testing.assert_array_equal(clv._Pairs(x, T).survival(params, 90.0), direct)
    expected = (params.a + params.b + x - 1) / (params.a - 1) * (1 - direct)
    expected *= clv.p_alive(params, x, t_x, T)
    np.testing.assert_allclose(
        clv.conditional_expected_purchases(params, 90.0, x, t_x, T), expected, rtol=1e-12
    )


def test_bucket_report_ratios_are_none_without_a_denominator() -> None:
    counts = repository.BucketCounts(
        members_at_start=0,
        members_at_end=4,
        new_members=4,
        erased_members=0,
        active_members=2,
        orders=0,
        revenue_minor=0,
        member_orders=0,
        member_revenue_minor=0,
        gross_minor=0,
        refunded_minor=0,
        buyers=0,
        repeat_buyers=0,
        points_earned=0,
        points_redeemed=0,
        outstanding_points=100,
        pending_points=130,
        promoters=2,
        passives=1,
        detractors=1,
        tiers={"gold": 1, "basic": 3},
    )
    report = bucket_report(Bucket(AT, AT + timedelta(days=1)), counts, cost_per_point_minor=2.0)
    assert report["member_growth_rate"] is None
    assert report["activity_rate"] == 0.5
    assert report["average_order_value"] is None
    assert report["redemption_rate"] is None
    assert report["pending_points"] == 100  # never more than what is outstanding
    assert report["points_liability_minor"] == 200.0
    assert report["nps"] == 25.0
    assert report["tier_distribution"] == {"basic": 0.75, "gold": 0.25}
    assert clean({"a": float("nan"), "b": [float("inf"), 1.0]}) == {"a": None, "b": [None, 1.0]}


def test_period_discount_rate_compounds_to_the_annual_rate() -> None:
    settings = AnalyticsSettings(clv_annual_discount_rate=0.1)
    periods_per_year = 365.25 / settings.clv_period_days
    assert (1 + settings.clv_period_discount_rate) ** periods_per_year == pytest.approx(1.1)


def test_copy_text_keeps_a_value_that_spells_none() -> None:
    assert repository._copy_text([("None", None), ("xNone", "y")]) == (b"None\t\\N\nxNone\ty\n")

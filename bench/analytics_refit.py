"""Analytics refit: RFM scoring + CLV (BG/NBD + Gamma-Gamma) fit + churn scoring of every
member, as the service's nightly job runs it (`analytics_svc.jobs.refit_all`).

Input: `MEMBERS` members (quick: 50,000) with a buy-till-you-die purchase history over
two years, drawn with numpy (each member buys at a Gamma-distributed Poisson rate and
drops out after a purchase with a Beta-distributed probability; order values are
Gamma-distributed around a member's own mean) plus partial refunds of 3 % of the orders.
The rows are bulk-loaded into a scratch analytics database: binary COPY of fixed-width
columns into a staging table, then one INSERT … SELECT into `fact_purchases` and
`fact_refunds` (the text columns are built there), then ANALYZE.

Measured, in this order on the same data:
1. the first refit: every scored member gets a `member.segment_changed` (from none) and
   every member at risk a `member.churn_risk`: the outbox write is at its largest;
2. a second refit a day later (the steady state: few segment changes);
3. the baseline: one plain SQL aggregate giving each member's recency, frequency and
   monetary value over the same facts (netting refunds, as the job's read does). It is
   what the database alone needs to look at every order once; the refit must also fit two
   models by maximum likelihood and write four million-row outputs.

Target: each refit ≤ 30 s at 1,000,000 members.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
from analytics_svc import pgbinary
from analytics_svc.jobs import RefitRun, refit_all
from analytics_svc.rebuild import MIGRATIONS
from analytics_svc.settings import AnalyticsSettings
from memberflow_platform.database import (
    load_migrations,
    make_engine,
    make_sessions,
    migrate,
    shared_migrations,
)
from numpy.typing import NDArray

from bench.harness import BenchContext, Measurement

SCENARIO = "analytics_refit"
SERVICE = "analytics-svc"
HISTORY_DAYS = 730
MAX_ORDERS = 60  # per member, a cap that only the heaviest buyers reach
REFUND_SHARE = 0.03
TARGET_SECONDS = 30.0

# Measured with the code before this scenario's fixes (commit 0b753e7: segment_changed and
# churn_risk events built one by one with new_event and written with add_to_outbox), full
# size, bench/results/2026-11-23-081740.json (3,424,853 orders, 1,000,000 segment changes
# and 436,534 churn events in the first refit; baseline 11.1 s in that run).
BEFORE_OPTIMISATION: dict[str, Any] = {
    "before_optimisation": {"first_refit_s": 220.6, "next_day_refit_s": 38.2, "commit": "0b753e7"}
}


async def run(context: BenchContext) -> list[Measurement]:
    members = 50_000 if context.quick else 1_000_000
    name = context.scratch_name("refit")
    now = datetime.now(UTC).replace(microsecond=0)
    await context.create_database(name)
    try:
        engine = make_engine(context.database_url(name), 4)
        try:
            await migrate(engine, [*shared_migrations(), *load_migrations(SERVICE, MIGRATIONS)])
            loaded = await _load(context, name, members, now)
            sessions = make_sessions(engine)
            settings = AnalyticsSettings()
            first = await refit_all(sessions, settings, now)
            second = await refit_all(sessions, settings, now + timedelta(days=1))
            outbox = await _outbox_rows(context, name)
        finally:
            await engine.dispose()
        baseline = await _baseline(context, name, now)
    finally:
        await context.drop_databases([name])
    common = {"members": members, **loaded, "baseline": baseline}
    return [
        Measurement(
            scenario=SCENARIO,
            name=f"first refit, {members:,} members",
            value=round(first.seconds, 2),
            unit="s",
            higher_is_better=False,
            target=TARGET_SECONDS,
            baseline=baseline["seconds"],
            baseline_name="plain SQL RFM aggregate",
            details={**common, **_describe(first), "outbox_rows": outbox, **BEFORE_OPTIMISATION},
        ),
        Measurement(
            scenario=SCENARIO,
            name=f"next-day refit, {members:,} members",
            value=round(second.seconds, 2),
            unit="s",
            higher_is_better=False,
            target=TARGET_SECONDS,
            baseline=baseline["seconds"],
            baseline_name="plain SQL RFM aggregate",
            details=_describe(second),
        ),
    ]


def _describe(run: RefitRun) -> dict[str, Any]:
    return {
        "scored": run.rfm.scored,
        "segment_changes": run.rfm.changed,
        "clv_members": run.clv.members,
        "repeat_buyers": run.clv.repeat_buyers,
        "churn_evaluated": run.churn.evaluated,
        "churn_at_risk": run.churn.at_risk,
        "churn_events": run.churn.emitted,
        "seconds": round(run.seconds, 2),
    }


# ---------- input ----------


def _history(
    rng: np.random.Generator, members: int, as_of_day: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(member index, day, total minor) of every order: a BG/NBD-like process."""
    rate = rng.gamma(0.7, 1 / 45, members)  # purchases per day while active
    dropout = rng.beta(0.8, 3.0, members)  # chance of dropping out after a purchase
    first = as_of_day - rng.integers(1, HISTORY_DAYS, members)
    repeats = np.minimum(rng.geometric(dropout) - 1, MAX_ORDERS - 1)
    owner = np.repeat(np.arange(members), repeats + 1)
    # Gaps between occasions (0 for the first): exponential with the member's rate.
    gaps = rng.exponential(1.0, owner.size) / rate[owner]
    starts = np.cumsum(repeats + 1) - (repeats + 1)
    gaps[starts] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], repeats + 1)
    day = first[owner] + np.floor(elapsed).astype(np.int64)
    keep = day < as_of_day
    owner, day = owner[keep], day[keep]
    mean_value = rng.gamma(4.0, 1_500.0, members)  # a member's typical order, minor units
    total = np.maximum(100, rng.gamma(6.0, mean_value[owner] / 6.0)).astype(np.int64)
    return owner.astype(np.int64), day, total


async def _load(
    context: BenchContext, database: str, members: int, now: datetime
) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    as_of_day = (now.date() - datetime(1970, 1, 1).date()).days
    started = time.perf_counter()
    owner, day, total = _history(rng, members, as_of_day)
    ids = rng.bytes(16 * members)
    member_ids = np.frombuffer(ids, dtype="V16")
    event_ids = np.frombuffer(rng.bytes(16 * owner.size), dtype="V16")
    # Random time of day, as microseconds since 2000-01-01 (PostgreSQL's binary timestamptz).
    pg_epoch_day = (datetime(2000, 1, 1).date() - datetime(1970, 1, 1).date()).days
    micros = (day - pg_epoch_day) * 86_400_000_000 + rng.integers(0, 86_400_000_000, owner.size)
    refunded = np.flatnonzero(rng.random(owner.size) < REFUND_SHARE)
    amounts = np.maximum(1, (total[refunded] * rng.uniform(0.1, 1.0, refunded.size))).astype(
        np.int64
    )
    refund_events = np.frombuffer(rng.bytes(16 * refunded.size), dtype="V16")
    refund_micros = np.minimum(
        micros[refunded] + rng.integers(0, 20 * 86_400_000_000, refunded.size),
        pgbinary.timestamp_value(now) - 1,
    )
    purchases = pgbinary.encode(
        [
            (np.arange(owner.size, dtype=np.int64), "int8"),
            (event_ids, "uuid"),
            (member_ids[owner], "uuid"),
            (micros, "timestamptz"),
            (total, "int8"),
        ]
    )
    refunds = pgbinary.encode(
        [
            (refunded.astype(np.int64), "int8"),
            (refund_events, "uuid"),
            (member_ids[owner[refunded]], "uuid"),
            (refund_micros, "timestamptz"),
            (amounts, "int8"),
        ]
    )
    generated = time.perf_counter() - started
    connection = await asyncpg.connect(context.dsn(database))
    try:
        started = time.perf_counter()
        async with connection.transaction():
            await _copy_staged(connection, "stage_purchases", purchases)
            await connection.execute(
                "INSERT INTO fact_purchases (order_id, event_id, member_id, occurred_at,"
                " total_minor, currency, channel) SELECT 'bench-' || k, event_id, member_id,"
                " occurred_at, amount, 'EUR', (ARRAY['web','app','store'])[1 + k % 3]"
                " FROM stage_purchases"
            )
            await _copy_staged(connection, "stage_refunds", refunds)
            await connection.execute(
                "INSERT INTO fact_refunds (refund_id, event_id, order_id, member_id,"
                " occurred_at, amount_minor) SELECT 'bench-refund-' || k, event_id,"
                " 'bench-' || k, member_id, occurred_at, amount FROM stage_refunds"
            )
        await connection.execute("ANALYZE fact_purchases")
        await connection.execute("ANALYZE fact_refunds")
        loading = time.perf_counter() - started
    finally:
        await connection.close()
    return {
        "orders": int(owner.size),
        "refunds": int(refunded.size),
        "buyers": int(np.unique(owner).size),
        "generate_seconds": round(generated, 2),
        "load_seconds": round(loading, 2),
    }


async def _copy_staged(connection: asyncpg.Connection, table: str, payload: bytes) -> None:
    await connection.execute(
        f"CREATE TEMP TABLE {table} (k int8, event_id uuid, member_id uuid,"
        " occurred_at timestamptz, amount int8) ON COMMIT DROP"
    )

    async def source() -> Any:
        for offset in range(0, len(payload), 1 << 22):
            yield payload[offset : offset + (1 << 22)]

    await connection.copy_to_table(table, source=source(), format="binary")


async def _outbox_rows(context: BenchContext, database: str) -> dict[str, int]:
    connection = await asyncpg.connect(context.dsn(database))
    try:
        rows = await connection.fetch("SELECT event_type, count(*) FROM outbox GROUP BY 1")
    finally:
        await connection.close()
    return {row["event_type"]: int(row["count"]) for row in rows}


# ---------- baseline ----------


async def _baseline(context: BenchContext, database: str, now: datetime) -> dict[str, Any]:
    """Each member's recency, frequency and monetary value in one SQL aggregate."""
    connection = await asyncpg.connect(context.dsn(database))
    try:
        started = time.perf_counter()
        rows = await connection.fetch(
            "WITH net AS ("
            " SELECT p.member_id, (p.occurred_at AT TIME ZONE 'UTC')::date AS day,"
            " p.total_minor - coalesce(r.refunded, 0) AS net"
            " FROM fact_purchases p LEFT JOIN (SELECT order_id, sum(amount_minor) AS refunded"
            " FROM fact_refunds GROUP BY order_id) r ON r.order_id = p.order_id"
            " WHERE p.member_id IS NOT NULL AND p.occurred_at < $1)"
            " SELECT member_id, $2::date - max(day) AS recency,"
            " count(DISTINCT day) FILTER (WHERE day > $2::date - 365) AS frequency,"
            " coalesce(sum(net) FILTER (WHERE day > $2::date - 365), 0) AS monetary"
            " FROM net WHERE net > 0 GROUP BY member_id",
            now,
            now.date(),
        )
        seconds = time.perf_counter() - started
    finally:
        await connection.close()
    return {"seconds": round(seconds, 2), "members": len(rows)}


# ---------- scratch database ----------

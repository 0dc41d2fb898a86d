"""Persistence of analytics-svc: the only module of the service that writes SQL.

Every function runs inside the caller's transaction and never commits. Fact rows are
written with one multi-row `INSERT … SELECT FROM unnest(arrays) ON CONFLICT` per table and
batch; the jobs move their million-row inputs and outputs with binary COPY.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from analytics_svc import pgbinary
from analytics_svc.bulk_events import OutboxRows
from analytics_svc.facts import FACT_TABLES, FactBatch, FactTable

# ---------------------------------------------------------------- facts


def _insert_sql(table: FactTable) -> str:
    columns = ", ".join(table.columns)
    arrays = ", ".join(
        f"CAST(:c{i} AS {'bigint' if kind in ('bigint', 'smallint') else 'text'}[])"
        for i, kind in enumerate(table.types)
    )
    aliases = ", ".join(f"u{i}" for i in range(len(table.columns)))
    casts = ", ".join(f"u{i}::{kind}" for i, kind in enumerate(table.types))
    return (
        f"INSERT INTO {table.name} ({columns}) SELECT {casts}"
        f" FROM unnest({arrays}) AS u({aliases}) {_conflict(table)}"
    )


def _conflict(table: FactTable) -> str:
    """Duplicates change nothing; for first-seen tables (LEAST) the earliest time wins."""
    if table.least:
        updates = ", ".join(
            f"{column} = LEAST({table.name}.{column}, EXCLUDED.{column})" for column in table.least
        )
        return f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
    return f"ON CONFLICT ({', '.join(table.key)}) DO NOTHING"


_INSERTS = {table: text(_insert_sql(table)) for table in FACT_TABLES}


def _fact_statements(batch: FactBatch) -> list[tuple[Any, dict[str, Any]]]:
    statements = []
    for table, rows in batch.tables():
        params: dict[str, Any] = {}
        for i, kind in enumerate(table.types):
            numeric = kind in ("bigint", "smallint")
            params[f"c{i}"] = [row[i] if numeric or row[i] is None else str(row[i]) for row in rows]
        statements.append((_INSERTS[table], params))
    return statements


async def append_facts(session: AsyncSession, batch: FactBatch) -> None:
    """Write a batch of fact rows: one statement per table, duplicates ignored."""
    for statement, params in _fact_statements(batch):
        await session.execute(statement, params)


_PENDING_FACTS = "analytics_svc.pending_facts"


def buffer_facts(session: AsyncSession) -> FactBatch:
    """The fact rows of the session's transaction, written together just before it commits.

    The inbox consumer applies a whole Kafka batch in one transaction but calls handlers one
    event at a time; buffering turns a batch of events into one INSERT per fact table.
    A failing INSERT fails the commit, so the consumer's one-by-one retry and dead-lettering
    work as with per-event writes.
    """
    sync_session = session.sync_session
    batch = sync_session.info.get(_PENDING_FACTS)
    if batch is None:
        batch = sync_session.info[_PENDING_FACTS] = FactBatch()
        event.listen(sync_session, "before_commit", _write_buffered, once=True)
    return cast(FactBatch, batch)


def _write_buffered(sync_session: Session) -> None:
    # Runs inside AsyncSession.commit()'s greenlet, where synchronous execute is allowed.
    batch = sync_session.info.pop(_PENDING_FACTS, None)
    if batch is None:
        return
    for statement, params in _fact_statements(batch):
        sync_session.execute(statement, params)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Separators used while building a batch, swapped for COPY's own afterwards.
_FIELD, _ROW = "\x1f", "\x1e"
# In this order: escapes first, so the backslashes of \\N are not escaped again. Chained
# str.replace (a fast scan per pair) instead of one str.translate with a dict, which looks
# every character up in Python and cost three times as much on replay batches.
_COPY_REPLACEMENTS = (
    ("\\", "\\\\"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("None", "\\N"),
    (_FIELD, "\t"),
    (_ROW, "\n"),
)


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, int):
        return str(value)
    return str(value).translate(_COPY_ESCAPES)


def _copy_text(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """Rows in COPY's text format (tab-separated, \\N for NULL, backslash escapes).

    Fast path: join with control characters and escape the whole batch at once; the counts
    of those characters prove no value contained one (otherwise the rows are escaped field
    by field).
    """
    if not rows:
        return b""
    width = len(rows[0])
    nulls = sum(row.count(None) for row in rows)
    # str(None) is "None": when "None" occurs exactly once per None, no value contains it.
    body = _ROW.join([_FIELD.join(map(str, row)) for row in rows])
    if (
        body.count(_FIELD) == len(rows) * (width - 1)
        and body.count(_ROW) == len(rows) - 1
        and body.count("None") == nulls
    ):
        for old, new in _COPY_REPLACEMENTS:
            body = body.replace(old, new)
        return (body + "\n").encode()
    lines = ["\t".join(map(_copy_field, row)) for row in rows]
    lines.append("")
    return "\n".join(lines).encode()


async def append_facts_bulk(session: AsyncSession, batch: FactBatch) -> None:
    """Like append_facts, for replay-sized batches: COPY into a temporary staging table,
    then one INSERT … SELECT … ON CONFLICT per fact table (the same conflict rules)."""
    driver = await _driver(session)
    for table, rows in batch.tables():
        stage = f"stage_{table.name}"
        await session.execute(
            text(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS"
            )
        )
        payload = _copy_text(rows)

        async def source(data: bytes = payload) -> AsyncIterator[bytes]:
            yield data

        await driver.copy_to_table(stage, source=source(), columns=list(table.columns))
        columns = ", ".join(table.columns)
        await session.execute(
            text(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {stage}"
                f" {_conflict(table)}"
            )
        )


async def record_inbox(session: AsyncSession, consumer: str, event_ids: Sequence[str]) -> None:
    """Mark replayed events as applied, so the live consumer skips them if redelivered."""
    if not event_ids:
        return
    await session.execute(
        text(
            "INSERT INTO inbox (consumer, event_id)"
            " SELECT :consumer, u::uuid FROM unnest(CAST(:ids AS text[])) AS u"
            " ON CONFLICT DO NOTHING"
        ),
        {"consumer": consumer, "ids": list(event_ids)},
    )


async def truncate_projections(session: AsyncSession, consumer: str) -> None:
    """Empty every fact table and forget what this consumer applied (rebuild)."""
    names = ", ".join(table.name for table in FACT_TABLES)
    await session.execute(text(f"TRUNCATE {names}"))
    await session.execute(text("DELETE FROM inbox WHERE consumer = :c"), {"c": consumer})
    await session.execute(text("DELETE FROM parked_events WHERE consumer = :c"), {"c": consumer})


# ---------------------------------------------------------------- KPIs


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """Raw sums and counts of one bucket [start, end); the KPIs are ratios of these."""

    members_at_start: int
    members_at_end: int
    new_members: int
    erased_members: int
    active_members: int
    orders: int
    revenue_minor: int
    member_orders: int
    member_revenue_minor: int
    gross_minor: int
    refunded_minor: int
    buyers: int
    repeat_buyers: int
    points_earned: int
    points_redeemed: int
    outstanding_points: int
    pending_points: int
    promoters: int
    passives: int
    detractors: int
    tiers: dict[str, int]


_BUCKETS = (
    "WITH b AS (SELECT i, s, e FROM unnest(CAST(:starts AS timestamptz[]),"
    " CAST(:ends AS timestamptz[])) WITH ORDINALITY AS b(s, e, i))"
)

_ORDERS = text(
    _BUCKETS
    + """
SELECT b.i,
  count(*) FILTER (WHERE o.net_minor > 0) AS orders,
  coalesce(sum(o.net_minor) FILTER (WHERE o.net_minor > 0), 0) AS revenue,
  count(*) FILTER (WHERE o.net_minor > 0 AND o.member_id IS NOT NULL) AS member_orders,
  coalesce(sum(o.net_minor) FILTER (WHERE o.net_minor > 0 AND o.member_id IS NOT NULL), 0)
    AS member_revenue,
  coalesce(sum(o.total_minor), 0) AS gross,
  coalesce(sum(o.refunded_minor), 0) AS refunded
FROM b JOIN net_orders o ON o.occurred_at >= b.s AND o.occurred_at < b.e
GROUP BY b.i"""
)

_BUYERS = text(
    _BUCKETS
    + """
SELECT i, count(*) AS buyers, count(*) FILTER (WHERE n >= 2) AS repeaters FROM (
  SELECT b.i, o.member_id, count(*) AS n
  FROM b JOIN net_orders o ON o.occurred_at >= b.s AND o.occurred_at < b.e
  WHERE o.member_id IS NOT NULL AND o.net_minor > 0
  GROUP BY b.i, o.member_id) t
GROUP BY i"""
)

_POINTS_FLOW = text(
    _BUCKETS
    + """
SELECT b.i,
  coalesce(sum(p.points) FILTER (WHERE p.kind = 'earned'), 0) AS earned,
  coalesce(sum(p.points) FILTER (WHERE p.kind = 'redeemed'), 0) AS redeemed
FROM b JOIN fact_points p ON p.occurred_at >= b.s AND p.occurred_at < b.e
GROUP BY b.i"""
)

_NPS = text(
    _BUCKETS
    + """
SELECT i,
  count(*) FILTER (WHERE nps_score >= 9) AS promoters,
  count(*) FILTER (WHERE nps_score BETWEEN 7 AND 8) AS passives,
  count(*) FILTER (WHERE nps_score <= 6) AS detractors
FROM (
  SELECT DISTINCT ON (b.i, f.member_id) b.i, f.nps_score
  FROM b JOIN fact_feedback f ON f.occurred_at >= b.s AND f.occurred_at < b.e
  ORDER BY b.i, f.member_id, f.occurred_at DESC, f.event_id DESC) t
GROUP BY i"""
)

# State at instants (members, activity, points outstanding, tiers) is computed for all bucket
# boundaries B_0 < … < B_n in one pass: width_bucket(ts, B) = #{B_j ≤ ts}, so "ts < B_k" is
# "width_bucket(ts, B) ≤ k". Each fact contributes +v at the first boundary index it counts
# for and −v at the first it no longer does; a running sum over k gives every boundary.
_MEMBER_MARKS = text(
    """
SELECT k, sum(delta) AS delta, sum(registered) AS registered, sum(erased) AS erased FROM (
  SELECT width_bucket(r.registered_at, CAST(:bounds AS timestamptz[])) AS k,
         1 AS delta, 1 AS registered, 0 AS erased
  FROM fact_registrations r
  UNION ALL
  SELECT width_bucket(GREATEST(r.registered_at, x.erased_at), CAST(:bounds AS timestamptz[])),
         -1, 0, 0
  FROM fact_erasures x JOIN fact_registrations r USING (member_id)
  UNION ALL
  SELECT width_bucket(x.erased_at, CAST(:bounds AS timestamptz[])), 0, 0, 1
  FROM fact_erasures x
) m GROUP BY k"""
)

# A member is active at B_k when some purchase/activity at τ has τ < B_k ≤ τ + days and
# they are a member at B_k (registered before, not erased before): an interval of k per
# event; overlapping intervals of one member are merged (islands) before counting.
_ACTIVE_MARKS = text(
    """
WITH ev AS (
  SELECT member_id, occurred_at FROM fact_purchases
  WHERE member_id IS NOT NULL
    AND occurred_at >= CAST(:first AS timestamptz) - make_interval(days => CAST(:days AS int))
    AND occurred_at < CAST(:last AS timestamptz)
  UNION ALL
  SELECT member_id, occurred_at FROM fact_activities
  WHERE occurred_at >= CAST(:first AS timestamptz) - make_interval(days => CAST(:days AS int))
    AND occurred_at < CAST(:last AS timestamptz)),
iv AS (
  SELECT ev.member_id,
    GREATEST(width_bucket(ev.occurred_at, CAST(:bounds AS timestamptz[])),
             width_bucket(r.registered_at, CAST(:bounds AS timestamptz[]))) AS lo,
    LEAST(width_bucket(ev.occurred_at + make_interval(days => CAST(:days AS int)),
                       CAST(:bounds AS timestamptz[])),
          coalesce(width_bucket(x.erased_at, CAST(:bounds AS timestamptz[])),
                   CAST(:beyond AS int))) AS hi
  FROM ev JOIN fact_registrations r USING (member_id)
  LEFT JOIN fact_erasures x USING (member_id)),
ordered AS (
  SELECT member_id, lo, hi,
    max(hi) OVER (PARTITION BY member_id ORDER BY lo, hi
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
  FROM iv WHERE lo < hi),
islands AS (
  SELECT member_id, lo, hi,
    count(*) FILTER (WHERE reach IS NULL OR lo > reach)
      OVER (PARTITION BY member_id ORDER BY lo, hi) AS island
  FROM ordered),
merged AS (SELECT min(lo) AS lo, max(hi) AS hi FROM islands GROUP BY member_id, island)
SELECT k, sum(delta) AS delta FROM (
  SELECT lo AS k, 1 AS delta FROM merged UNION ALL SELECT hi, -1 FROM merged) m
GROUP BY k"""
)

# Outstanding points at B_k = Σ over members of max(balance before B_k, 0): the change of
# each member's positive part where their balance changes.
_OUTSTANDING_MARKS = text(
    """
WITH p AS (
  SELECT member_id, width_bucket(occurred_at, CAST(:bounds AS timestamptz[])) AS k,
         sum(delta) AS delta
  FROM fact_points WHERE occurred_at < CAST(:last AS timestamptz) GROUP BY member_id, k),
c AS (
  SELECT member_id, k, sum(delta) OVER (PARTITION BY member_id ORDER BY k) AS balance FROM p)
SELECT k, sum(change) AS delta FROM (
  SELECT k, GREATEST(balance, 0) - coalesce(GREATEST(
      lag(balance) OVER (PARTITION BY member_id ORDER BY k), 0), 0) AS change
  FROM c) d
GROUP BY k"""
)

# A lot is pending at B_k when earned before B_k, available after it, and not released
# before it.
_PENDING_MARKS = text(
    """
WITH lots AS (
  SELECT e.lot_points AS v,
    width_bucket(e.occurred_at, CAST(:bounds AS timestamptz[])) AS lo,
    LEAST(width_bucket(e.available_at - interval '1 microsecond',
                       CAST(:bounds AS timestamptz[])),
          coalesce(width_bucket(
            (SELECT min(q.occurred_at) FROM fact_points q
             WHERE q.kind = 'released' AND q.lot_id = e.lot_id),
            CAST(:bounds AS timestamptz[])), CAST(:beyond AS int))) AS hi
  FROM fact_points e
  WHERE e.kind = 'earned' AND e.available_at > e.occurred_at  -- lots ever pending
    AND e.occurred_at < CAST(:last AS timestamptz)
    AND e.available_at > CAST(:first AS timestamptz))
SELECT k, sum(delta) AS delta FROM (
  SELECT lo AS k, v AS delta FROM lots WHERE lo < hi
  UNION ALL SELECT hi, -v FROM lots WHERE lo < hi) m
GROUP BY k"""
)

# Each tier change holds from its boundary until the member's next change or erasure.
_TIER_MARKS = text(
    """
WITH c AS (
  SELECT member_id, to_tier, width_bucket(occurred_at, CAST(:bounds AS timestamptz[])) AS k,
    lead(width_bucket(occurred_at, CAST(:bounds AS timestamptz[])))
      OVER (PARTITION BY member_id ORDER BY occurred_at, event_id) AS next_k
  FROM fact_tier_changes WHERE occurred_at < CAST(:last AS timestamptz)),
iv AS (
  SELECT c.to_tier, c.k AS lo,
    LEAST(coalesce(c.next_k, CAST(:beyond AS int)),
          coalesce(width_bucket(x.erased_at, CAST(:bounds AS timestamptz[])),
                   CAST(:beyond AS int))) AS hi
  FROM c LEFT JOIN fact_erasures x USING (member_id))
SELECT to_tier, k, sum(delta) AS delta FROM (
  SELECT to_tier, lo AS k, 1 AS delta FROM iv WHERE lo < hi
  UNION ALL SELECT to_tier, hi, -1 FROM iv WHERE lo < hi) m
GROUP BY to_tier, k"""
)


def _running(rows: Any, n: int, column: str = "delta") -> list[int]:
    """Running sums over boundary indices 0..n of per-index deltas."""
    deltas = [0] * (n + 2)
    for row in rows:
        deltas[min(int(row.k), n + 1)] += int(row._mapping[column] or 0)
    total, out = 0, []
    for k in range(n + 1):
        total += deltas[k]
        out.append(total)
    return out


async def _marks(
    session: AsyncSession, statement: Any, bounds: Sequence[datetime], **extra: Any
) -> list[Any]:
    params = {
        "bounds": list(bounds),
        "first": bounds[0],
        "last": bounds[-1],
        "beyond": len(bounds) + 1,
        **extra,
    }
    return list(await session.execute(statement, params))


async def bucket_counts(
    session: AsyncSession,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    active_days: int,
) -> list[BucketCounts]:
    """Everything the KPIs of each bucket need, from a handful of aggregate queries.

    Buckets must be contiguous: ends[i] == starts[i + 1].
    """
    n = len(starts)
    bounds = [starts[0], *ends]
    params = {"starts": list(starts), "ends": list(ends)}
    by: dict[str, dict[int, Any]] = {}
    for name, statement in (
        ("orders", _ORDERS),
        ("buyers", _BUYERS),
        ("flow", _POINTS_FLOW),
        ("nps", _NPS),
    ):
        rows = (await session.execute(statement, params)).mappings().all()
        by[name] = {int(row["i"]): row for row in rows}
    member_rows = await _marks(session, _MEMBER_MARKS, bounds)
    members = _running(member_rows, n)
    registered = {int(r.k): int(r.registered) for r in member_rows}
    erased = {int(r.k): int(r.erased) for r in member_rows}
    active = _running(await _marks(session, _ACTIVE_MARKS, bounds, days=active_days), n)
    outstanding = _running(await _marks(session, _OUTSTANDING_MARKS, bounds), n)
    pending = _running(await _marks(session, _PENDING_MARKS, bounds), n)
    tiers = await _tier_running(session, bounds)

    def get(name: str, i: int, column: str) -> int:
        row = by[name].get(i)
        return 0 if row is None or row[column] is None else int(row[column])

    return [
        BucketCounts(
            members_at_start=members[i - 1],
            members_at_end=members[i],
            new_members=registered.get(i, 0),
            erased_members=erased.get(i, 0),
            active_members=active[i],
            orders=get("orders", i, "orders"),
            revenue_minor=get("orders", i, "revenue"),
            member_orders=get("orders", i, "member_orders"),
            member_revenue_minor=get("orders", i, "member_revenue"),
            gross_minor=get("orders", i, "gross"),
            refunded_minor=get("orders", i, "refunded"),
            buyers=get("buyers", i, "buyers"),
            repeat_buyers=get("buyers", i, "repeaters"),
            points_earned=get("flow", i, "earned"),
            points_redeemed=get("flow", i, "redeemed"),
            outstanding_points=outstanding[i],
            pending_points=pending[i],
            promoters=get("nps", i, "promoters"),
            passives=get("nps", i, "passives"),
            detractors=get("nps", i, "detractors"),
            tiers={tier: counts[i] for tier, counts in tiers.items() if counts[i]},
        )
        for i in range(1, n + 1)
    ]


async def _tier_running(session: AsyncSession, bounds: Sequence[datetime]) -> dict[str, list[int]]:
    n = len(bounds) - 1
    per_tier: dict[str, list[Any]] = {}
    for row in await _marks(session, _TIER_MARKS, bounds):
        per_tier.setdefault(str(row.to_tier), []).append(row)
    return {tier: _running(rows, n) for tier, rows in sorted(per_tier.items())}


async def tier_counts(session: AsyncSession, at: datetime) -> dict[str, int]:
    """Members per current tier at `at` (latest tier.changed before it; erased excluded)."""
    return {
        tier: counts[0]
        for tier, counts in (await _tier_running(session, [at])).items()
        if counts[0]
    }


# ---------------------------------------------------------------- RFM / CLV reads


async def rfm_segment_counts(session: AsyncSession) -> tuple[dict[int, int], list[list[int]], Any]:
    """Members per segment code, the 5×5 R × FM grid of counts, and when they were scored."""
    codes = {
        int(row.segment_code): int(row.n)
        for row in await session.execute(
            text("SELECT segment_code, count(*) AS n FROM rfm_scores GROUP BY segment_code")
        )
    }
    grid = [[0] * 5 for _ in range(5)]
    for row in await session.execute(
        text("SELECT r, fm, count(*) AS n FROM rfm_scores GROUP BY r, fm")
    ):
        grid[int(row.r) - 1][int(row.fm) - 1] = int(row.n)
    scored_at = await session.scalar(text("SELECT max(scored_at) FROM rfm_scores"))
    return codes, grid, scored_at


async def member_rfm(session: AsyncSession, member_id: UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text("SELECT * FROM rfm_scores WHERE member_id = :m"), {"m": member_id}
            )
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else dict(row)


async def latest_clv_model(session: AsyncSession) -> dict[str, Any] | None:
    row = (
        (await session.execute(text("SELECT * FROM clv_models ORDER BY id DESC LIMIT 1")))
        .mappings()
        .one_or_none()
    )
    return None if row is None else dict(row)


async def member_clv(session: AsyncSession, member_id: UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text("SELECT * FROM clv_predictions WHERE member_id = :m"), {"m": member_id}
            )
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else dict(row)


async def clv_distribution(session: AsyncSession, bins: int) -> dict[str, Any]:
    """Histogram of predicted CLV (bins up to the 99th percentile, the rest in the last)
    and summary statistics of predicted and historical CLV."""
    stats = (
        (
            await session.execute(
                text(
                    "SELECT count(*) AS members,"
                    " avg(predicted_clv) AS mean_predicted,"
                    " percentile_cont(0.5) WITHIN GROUP (ORDER BY predicted_clv) AS median,"
                    " percentile_cont(0.9) WITHIN GROUP (ORDER BY predicted_clv) AS p90,"
                    " percentile_cont(0.99) WITHIN GROUP (ORDER BY predicted_clv) AS p99,"
                    " max(predicted_clv) AS max_predicted,"
                    " sum(predicted_clv) AS total_predicted,"
                    " sum(historical_clv) AS total_historical,"
                    " avg(p_alive) AS mean_p_alive"
                    " FROM clv_predictions WHERE predicted_clv <> 'NaN'"
                )
            )
        )
        .mappings()
        .one()
    )
    result = dict(stats)
    top = float(stats["p99"] or 0.0)
    counts = [0] * bins
    if stats["members"] and top > 0:
        for row in await session.execute(
            text(
                "SELECT LEAST(width_bucket(predicted_clv, 0, :top, :bins), :bins) AS k,"
                " count(*) AS n FROM clv_predictions WHERE predicted_clv <> 'NaN'"
                " GROUP BY 1 ORDER BY 1"
            ),
            {"top": top, "bins": bins},
        ):
            counts[max(int(row.k), 1) - 1] += int(row.n)
    elif stats["members"]:
        counts[0] = int(stats["members"])
    width = top / bins if top > 0 else 0.0
    result["bins"] = [
        {"low": k * width, "high": (k + 1) * width, "members": counts[k]} for k in range(bins)
    ]
    return result


# ---------------------------------------------------------------- uplift, tiers


async def uplift_counts(
    session: AsyncSession, campaign_id: UUID, window_days: int
) -> dict[str, tuple[int, int]]:
    """{group: (exposed members, converted members)}; a member's first exposure counts, and
    a conversion is a purchase (not fully refunded) in [exposed_at, exposed_at + N days)."""
    rows = await session.execute(
        text(
            """
WITH first AS (
  SELECT DISTINCT ON (member_id) member_id, exposure_group, occurred_at
  FROM fact_exposures WHERE campaign_id = :c
  ORDER BY member_id, occurred_at, event_id)
SELECT f.exposure_group AS grp, count(*) AS exposed,
  count(*) FILTER (WHERE EXISTS (
    SELECT 1 FROM net_orders o WHERE o.member_id = f.member_id AND o.net_minor > 0
      AND o.occurred_at >= f.occurred_at
      AND o.occurred_at < f.occurred_at + make_interval(days => :days))) AS converted
FROM first f GROUP BY f.exposure_group"""
        ),
        {"c": campaign_id, "days": window_days},
    )
    return {str(row.grp): (int(row.exposed), int(row.converted)) for row in rows}


async def campaigns(session: AsyncSession) -> list[dict[str, Any]]:
    """Campaigns seen in exposures, with members exposed per group, newest first."""
    rows = await session.execute(
        text(
            "SELECT campaign_id, min(occurred_at) AS first_exposed_at,"
            " count(DISTINCT member_id) FILTER (WHERE exposure_group = 'treatment') AS treatment,"
            " count(DISTINCT member_id) FILTER (WHERE exposure_group = 'control') AS control"
            " FROM fact_exposures GROUP BY campaign_id ORDER BY min(occurred_at) DESC"
        )
    )
    return [dict(row) for row in rows.mappings()]


# ---------------------------------------------------------------- job inputs and outputs


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _copy_out(session: AsyncSession, query: str, kinds: Sequence[str]) -> list[Any]:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    driver = await _driver(session)
    await driver.copy_from_query(query, output=sink, format="binary")
    return pgbinary.decode(b"".join(chunks), kinds)


async def _copy_in(
    session: AsyncSession,
    table: str,
    names: Sequence[str],
    columns: Sequence[tuple[NDArray[Any], str]],
) -> None:
    payload = pgbinary.encode(columns)

    async def source() -> AsyncIterator[bytes]:
        for offset in range(0, len(payload), 1 << 22):
            yield payload[offset : offset + (1 << 22)]

    driver = await _driver(session)
    await driver.copy_to_table(table, source=source(), columns=list(names), format="binary")


@dataclass(frozen=True, slots=True)
class OrderRows:
    """Net orders of non-erased members up to a moment, as arrays.

    `members[k]` is the uuid (16 raw bytes) of member index k; rows refer to it by `member`.
    """

    members: NDArray[np.void]
    member: NDArray[np.int64]
    day: NDArray[np.int64]
    net_minor: NDArray[np.int64]


def _index_uuids(raw: NDArray[np.void]) -> tuple[NDArray[np.void], NDArray[np.int64]]:
    """Distinct uuids in PostgreSQL's order, and each row's index into them."""
    if raw.size == 0:
        return raw[:0].copy(), np.zeros(0, dtype=np.int64)
    halves = np.ascontiguousarray(raw).view(">u8").reshape(-1, 2).astype(np.uint64)
    hi, lo = halves[:, 0], halves[:, 1]
    order = np.lexsort((lo, hi))
    sorted_hi, sorted_lo = hi[order], lo[order]
    first = np.r_[True, (sorted_hi[1:] != sorted_hi[:-1]) | (sorted_lo[1:] != sorted_lo[:-1])]
    index = np.empty(raw.size, dtype=np.int64)
    index[order] = np.cumsum(first) - 1
    return raw[order[first]].copy(), index


async def load_order_rows(session: AsyncSession, until: datetime) -> OrderRows:
    """Member orders before `until` with refunds netted, plus the member index; leaves the
    temporary table job_members(idx, member_id) for the aligned reads below.

    One binary COPY streams (member, day, net) rows; the member index is built in numpy
    (uuids sort as two big-endian 64-bit halves, the order PostgreSQL gives them). The rows
    come back sorted by member index, then day."""
    # The refunds per order are joined by hash: 100,000 refunded orders overflow the 4 MB
    # default and split the join into batches spilled to disk with the 3.4 M order rows.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    raw_member, day, net = await _copy_out(
        session,
        "SELECT p.member_id,"
        " ((p.occurred_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')::int4,"
        " (p.total_minor - coalesce(r.refunded, 0))::int8"
        " FROM fact_purchases p"
        " LEFT JOIN (SELECT order_id, sum(amount_minor) AS refunded FROM fact_refunds"
        "            GROUP BY order_id) r ON r.order_id = p.order_id"
        " WHERE p.member_id IS NOT NULL"
        f" AND p.occurred_at < '{until.isoformat()}'::timestamptz"
        " AND NOT EXISTS (SELECT 1 FROM fact_erasures x WHERE x.member_id = p.member_id)",
        ["uuid", "int4", "int8"],
    )
    members, member = _index_uuids(raw_member)
    member, day, net = _by_member_and_day(member, day.astype(np.int64), net.astype(np.int64))
    await _stage(
        session,
        "job_members",
        "idx int4, member_id uuid",
        ["idx", "member_id"],
        [(np.arange(members.size, dtype=np.int64), "int4"), (members, "uuid")],
    )
    await session.execute(text("CREATE UNIQUE INDEX ON job_members (member_id)"))
    await session.execute(text("ANALYZE job_members"))
    return OrderRows(members=members, member=member, day=day, net_minor=net)


def _by_member_and_day(
    member: NDArray[np.int64], day: NDArray[np.int64], net: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The rows sorted by member index, then day (stable). RFM and CLV group rows into
    purchase occasions with a stable sort by (member, day), which is several times faster
    on rows already in that order; one argsort of a combined key is cheaper than their
    lexsort (member < 2^31 and a span of int4 days < 2^32: the key fits in int64)."""
    if member.size == 0:
        return member, day, net
    first = int(day.min())
    key = member * (int(day.max()) - first + 1) + (day - first)
    order = np.argsort(key, kind="stable")
    return member[order], day[order], net[order]


async def _stage(
    session: AsyncSession,
    name: str,
    definition: str,
    names: Sequence[str],
    columns: Sequence[tuple[NDArray[Any], str]],
) -> None:
    await session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{name}"))
    await session.execute(text(f"CREATE TEMP TABLE {name} ({definition}) ON COMMIT DROP"))
    await _copy_in(session, name, names, columns)


async def previous_segments(session: AsyncSession, idx: NDArray[np.int64]) -> NDArray[np.int16]:
    """The stored segment code of each member index in `idx` (−1 when not scored before)."""
    member_idx, codes = await _copy_out(
        session,
        "SELECT m.idx, s.segment_code FROM rfm_scores s"
        " JOIN job_members m ON m.member_id = s.member_id",
        ["int4", "int2"],
    )
    by_member = np.full(_index_size(idx, member_idx), -1, dtype=np.int16)
    by_member[member_idx] = codes
    return by_member[idx]


def _index_size(*indexes: NDArray[Any]) -> int:
    """Length of an array indexed by every value of `indexes` (member indexes)."""
    return max((int(index.max()) + 1 for index in indexes if index.size), default=0)


async def _replace_all(
    session: AsyncSession,
    table: str,
    names: Sequence[str],
    columns: Sequence[tuple[NDArray[Any], str]],
) -> None:
    """Replace every row of a job output table: TRUNCATE, then COPY with its indexes
    (primary key included) dropped and built again afterwards.

    Building an index over a million rows in one sort is several times cheaper than
    maintaining it row by row during the COPY (measured 2.3 s instead of 7.6 s for
    clv_predictions). TRUNCATE already holds the table exclusively until commit, so no
    reader ever sees it without its indexes. The definitions are read from the catalog:
    the migrations stay their only source.
    """
    constraints = (
        await session.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u')"
            ),
            {"t": table},
        )
    ).all()
    indexes = (
        await session.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = CAST(:t AS regclass) AND NOT EXISTS"
                " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"
            ),
            {"t": table},
        )
    ).all()
    await session.execute(text(f"TRUNCATE {table}"))
    for name, _ in indexes:
        await session.execute(text(f'DROP INDEX "{name}"'))
    for name, _ in constraints:
        await session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    await _copy_in(session, table, names, columns)
    await session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for name, definition in constraints:
        await session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for _, definition in indexes:
        await session.execute(text(definition))


_OUTBOX_COLUMNS = ("event_id", "topic", "record_key", "event_type", "event_version", "value")


async def append_outbox(session: AsyncSession, rows: OutboxRows | None) -> None:
    """Queue a job's events for the relay with one binary COPY (see bulk_events)."""
    if rows is None or not len(rows):
        return
    driver = await _driver(session)
    await driver.copy_records_to_table(
        "outbox",
        columns=list(_OUTBOX_COLUMNS),
        records=(
            (event_id, rows.topic, key, rows.event_type, rows.event_version, value)
            for event_id, key, value in zip(rows.event_ids, rows.keys, rows.values, strict=True)
        ),
    )


RFM_COLUMNS = (
    "member_id",
    "recency_days",
    "frequency",
    "monetary_minor",
    "r",
    "f",
    "m",
    "fm",
    "segment_code",
    "scored_at",
)


async def replace_rfm_scores(
    session: AsyncSession, columns: Sequence[tuple[NDArray[Any], str]]
) -> None:
    """Replace all scores by the new run (columns in RFM_COLUMNS order)."""
    await _replace_all(session, "rfm_scores", RFM_COLUMNS, columns)


async def insert_clv_model(session: AsyncSession, model: dict[str, Any]) -> int:
    row_id = await session.scalar(
        text(
            "INSERT INTO clv_models (fitted_at, as_of_day, members, repeat_buyers, bgnbd,"
            " gamma_gamma, settings, seconds) VALUES (:fitted_at, :as_of_day, :members,"
            " :repeat_buyers, CAST(:bgnbd AS jsonb), CAST(:gamma_gamma AS jsonb),"
            " CAST(:settings AS jsonb), :seconds) RETURNING id"
        ),
        {
            **model,
            "bgnbd": json.dumps(model["bgnbd"]),
            "gamma_gamma": None
            if model["gamma_gamma"] is None
            else json.dumps(model["gamma_gamma"]),
            "settings": json.dumps(model["settings"]),
        },
    )
    return int(cast(int, row_id))


CLV_COLUMNS = (
    "member_id",
    "model_id",
    "x",
    "t_x",
    "t_cal",
    "mean_repeat_minor",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "predicted_clv",
    "historical_clv",
)


async def replace_clv_predictions(
    session: AsyncSession, columns: Sequence[tuple[NDArray[Any], str]]
) -> None:
    await _replace_all(session, "clv_predictions", CLV_COLUMNS, columns)


async def previous_churn_state(
    session: AsyncSession, idx: NDArray[np.int64]
) -> tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.bool_]]:
    """(in_episode, last purchase day or −1, known) of each member index in `idx`.

    One read of the stored states of the job's members, scattered by member index in
    numpy (no staging of `idx`, no sort in PostgreSQL).
    """
    member_idx, in_episode, last_day = await _copy_out(
        session,
        "SELECT m.idx, c.in_episode, c.last_purchase_day FROM churn_state c"
        " JOIN job_members m ON m.member_id = c.member_id",
        ["int4", "bool", "int4"],
    )
    size = _index_size(idx, member_idx)
    episode_of = np.zeros(size, dtype=np.bool_)
    last_of = np.full(size, -1, dtype=np.int64)
    known_of = np.zeros(size, dtype=np.bool_)
    episode_of[member_idx] = in_episode
    last_of[member_idx] = last_day
    known_of[member_idx] = True
    return episode_of[idx], last_of[idx], known_of[idx]


CHURN_COLUMNS = (
    "member_id",
    "in_episode",
    "last_purchase_day",
    "at_risk",
    "score",
    "reason",
    "evaluated_at",
)


async def replace_churn_state(
    session: AsyncSession, columns: Sequence[tuple[NDArray[Any], str]]
) -> None:
    """Replace the episode state of every evaluated member; members no longer evaluated
    (erased, or every order refunded) lose theirs."""
    await _replace_all(session, "churn_state", CHURN_COLUMNS, columns)


async def churn_state_of(session: AsyncSession, member_id: UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text("SELECT * FROM churn_state WHERE member_id = :m"), {"m": member_id}
            )
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else dict(row)


async def at_risk_count(session: AsyncSession) -> tuple[int, int]:
    """(members at risk now, members in an open episode)."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE at_risk) AS r,"
                " count(*) FILTER (WHERE in_episode) AS e FROM churn_state"
            )
        )
    ).one()
    return int(row.r), int(row.e)

"""Scheduled work: RFM scoring, CLV refit and churn-risk episodes.

Each job is a plain async function taking the session factory, the settings and `now`
(tests call them directly with an injected clock); `JOBS` wraps them as PeriodicJobs.
The math runs vectorised in a worker thread (numpy/scipy release the GIL for most of it),
so the consumer and the API keep serving while a million members are scored.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import numpy as np
from memberflow_events.payloads import MemberChurnRisk, MemberSegmentChanged
from memberflow_platform.jobs import PeriodicJob
from memberflow_platform.runtime import Runtime
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics_svc import bulk_events, churn, clv, pgbinary, repository, rfm
from analytics_svc.settings import AnalyticsSettings

log = logging.getLogger(__name__)

SERVICE = "analytics-svc"
_EPOCH = date(1970, 1, 1)

Sessions = async_sessionmaker[AsyncSession]


def day_number(moment: datetime) -> int:
    """UTC calendar day as days since 1970-01-01 (the unit of RFM, CLV and churn)."""
    return (moment.astimezone(UTC).date() - _EPOCH).days


# ---------------------------------------------------------------- RFM


@dataclass(frozen=True, slots=True)
class RfmRun:
    scored: int
    changed: int
    segments: dict[str, int]


async def score_rfm(sessions: Sessions, settings: AnalyticsSettings, now: datetime) -> RfmRun:
    """Score every member with a purchase, store the scores, and emit
    member.segment_changed for each member whose segment differs from the stored one
    (a first scoring counts as a change from none)."""
    async with sessions() as session, session.begin():
        rows = await repository.load_order_rows(session, until=now)
        scored = await asyncio.to_thread(_rfm_math, rows, day_number(now), settings.rfm_window_days)
        run, events = await _score_rfm(session, rows, scored, now)
        await repository.append_outbox(session, events)
        return run


async def _score_rfm(
    session: AsyncSession,
    rows: repository.OrderRows,
    scored: tuple[rfm.RfmInputs, rfm.RfmScores],
    now: datetime,
    built: asyncio.Event | None = None,
) -> tuple[RfmRun, bulk_events.OutboxRows | None]:
    """Store the new scores; returns the segment_changed events for the caller to append
    (the refit appends them while the churn events are being built). `built` is set as
    soon as the events are built."""
    inputs, scores = scored
    previous = await repository.previous_segments(session, inputs.member)
    changed = np.flatnonzero(previous.astype(np.int64) != scores.segment.astype(np.int64))
    # The events are pure Python work: built in a thread while PostgreSQL takes the scores.
    building = asyncio.ensure_future(
        asyncio.to_thread(_segment_events, rows, inputs, scores, previous, changed, now)
    )
    if built is not None:
        building.add_done_callback(lambda _: built.set())
    n = inputs.member.size
    try:
        await repository.replace_rfm_scores(
            session,
            [
                (rows.members[inputs.member], "uuid"),
                (inputs.recency_days, "int4"),
                (inputs.frequency, "int4"),
                (inputs.monetary, "int8"),
                (scores.r, "int2"),
                (scores.f, "int2"),
                (scores.m, "int2"),
                (scores.fm, "int2"),
                (scores.segment, "int2"),
                pgbinary.timestamp_column(now, n),
            ],
        )
    except BaseException:
        building.cancel()
        raise
    events = await building
    run = RfmRun(scored=n, changed=changed.size, segments=rfm.segment_counts(scores.segment))
    return run, events


def _segment_events(
    rows: repository.OrderRows,
    inputs: rfm.RfmInputs,
    scores: rfm.RfmScores,
    previous: NDArray[np.int16],
    changed: NDArray[np.intp],
    now: datetime,
) -> bulk_events.OutboxRows | None:
    segments, scores_r, scores_f, scores_m = (
        scores.segment.tolist(),
        scores.r.tolist(),
        scores.f.tolist(),
        scores.m.tolist(),
    )
    was = previous.tolist()

    def segment_changed(fields: Hashable) -> MemberSegmentChanged:
        segment, before, r, f, m = cast(tuple[int, int, int, int, int], fields)
        return MemberSegmentChanged(
            rfm_segment=rfm.SEGMENTS[segment],
            previous_segment=None if before < 0 else rfm.SEGMENTS[before],
            recency_score=r,
            frequency_score=f,
            monetary_score=m,
            scored_at=now,
        )

    member_ids = bulk_events.member_strings(rows.members[inputs.member[changed]])
    return bulk_events.outbox_rows(
        (
            (member_ids[j], (segments[k], was[k], scores_r[k], scores_f[k], scores_m[k]))
            for j, k in enumerate(changed.tolist())
        ),
        segment_changed,
        producer=SERVICE,
        occurred_at=now,
    )


def _rfm_math(
    rows: repository.OrderRows, as_of: int, window_days: int
) -> tuple[rfm.RfmInputs, rfm.RfmScores]:
    inputs = rfm.rfm_inputs(rows.member, rows.day, rows.net_minor, as_of, window_days)
    return inputs, rfm.score_rfm(inputs.recency_days, inputs.frequency, inputs.monetary)


# ---------------------------------------------------------------- CLV


@dataclass(frozen=True, slots=True)
class ClvRun:
    model_id: int | None
    members: int
    repeat_buyers: int
    reason: str | None = None  # why nothing was fitted


@dataclass(frozen=True, slots=True)
class _ClvResult:
    summary: clv.ClvInputs
    bgnbd: clv.BgNbdFit
    gamma_gamma: clv.GammaGammaFit | None
    p_alive: NDArray[np.float64]
    expected: NDArray[np.float64]
    spend: NDArray[np.float64]
    value: NDArray[np.float64]
    historical: NDArray[np.int64]


def _finite_or_nan(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(np.isfinite(values), values, np.nan)


def _clv_math(rows: repository.OrderRows, as_of: int, settings: AnalyticsSettings) -> _ClvResult:
    s = clv.summarise_transactions(rows.member, rows.day, rows.net_minor, as_of)
    bg = clv.fit_bgnbd(s.x, s.t_x, s.T)
    repeat = (s.x > 0) & (s.m > 0)
    gg = clv.fit_gamma_gamma(s.x[repeat], s.m[repeat]) if np.any(repeat) else None
    alive = clv.p_alive(bg.params, s.x, s.t_x, s.T)
    expected = clv.conditional_expected_purchases(
        bg.params, float(settings.clv_horizon_days), s.x, s.t_x, s.T
    )
    if gg is None:
        spend = np.full(s.x.shape, np.nan)
        value = np.full(s.x.shape, np.nan)
    else:
        spend = _finite_or_nan(clv.conditional_expected_spend(gg.params, s.x, s.m))
        value = _finite_or_nan(
            clv.predicted_clv(
                bg.params,
                gg.params,
                s.x,
                s.t_x,
                s.T,
                s.m,
                periods=settings.clv_periods,
                period_length=settings.clv_period_days,
                discount_rate=settings.clv_period_discount_rate,
            )
        )
    net_per_member = np.bincount(rows.member, weights=rows.net_minor, minlength=rows.members.size)
    historical = np.rint(net_per_member[s.member]).astype(np.int64)
    return _ClvResult(s, bg, gg, alive, _finite_or_nan(expected), spend, value, historical)


def _start_clv_math(
    rows: repository.OrderRows, as_of: int, settings: AnalyticsSettings
) -> asyncio.Future[_ClvResult]:
    return asyncio.ensure_future(asyncio.to_thread(_clv_math, rows, as_of, settings))


def _fit_json(fit: clv.BgNbdFit | clv.GammaGammaFit, names: Sequence[str]) -> dict[str, Any]:
    d = fit.diagnostics
    params = {name: getattr(fit.params, name) for name in names}
    errors = (
        None
        if d.standard_errors is None
        else {name: _number(e) for name, e in zip(names, d.standard_errors, strict=True)}
    )
    return {
        "params": params,
        "log_likelihood": d.log_likelihood,
        "diagnostics": {
            "n_observations": d.n_observations,
            "converged": d.converged,
            "iterations": d.iterations,
            "function_evaluations": d.function_evaluations,
            "message": d.message,
            "aic": d.aic,
            "bic": d.bic,
            "gradient_norm": d.gradient_norm,
            "standard_errors": errors,
        },
    }


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


async def refit_clv(sessions: Sessions, settings: AnalyticsSettings, now: datetime) -> ClvRun:
    """Fit BG/NBD and Gamma-Gamma by maximum likelihood on every member's purchase history
    up to `now`, store the parameters and diagnostics, and replace the per-member
    predictions (P(alive), expected purchases over the horizon, predicted and historical
    CLV)."""
    async with sessions() as session, session.begin():
        rows = await repository.load_order_rows(session, until=now)
        run, _ = await _refit_clv(session, rows, settings, now)
        return run


async def _refit_clv(
    session: AsyncSession,
    rows: repository.OrderRows,
    settings: AnalyticsSettings,
    now: datetime,
    fitting: asyncio.Future[_ClvResult] | None = None,
) -> tuple[ClvRun, _ClvResult | None]:
    """Store a fit: the one `fitting` computes (started earlier by the caller), or a new one."""
    as_of = day_number(now)
    started = time.perf_counter()
    if fitting is None:
        fitting = _start_clv_math(rows, as_of, settings)
    try:
        result = await fitting
    except ValueError as error:  # no purchases, or nobody has repurchased yet
        return ClvRun(model_id=None, members=0, repeat_buyers=0, reason=str(error)), None
    s = result.summary
    repeat_buyers = int(np.count_nonzero(s.x > 0))
    model_id = await repository.insert_clv_model(
        session,
        {
            "fitted_at": now,
            "as_of_day": as_of,
            "members": int(s.member.size),
            "repeat_buyers": repeat_buyers,
            "bgnbd": _fit_json(result.bgnbd, ("r", "alpha", "a", "b")),
            "gamma_gamma": None
            if result.gamma_gamma is None
            else _fit_json(result.gamma_gamma, ("p", "q", "gamma")),
            "settings": {
                "time_unit": "day",
                "horizon_days": settings.clv_horizon_days,
                "periods": settings.clv_periods,
                "period_days": settings.clv_period_days,
                "annual_discount_rate": settings.clv_annual_discount_rate,
                "period_discount_rate": settings.clv_period_discount_rate,
            },
            "seconds": time.perf_counter() - started,
        },
    )
    await repository.replace_clv_predictions(
        session,
        [
            (rows.members[s.member], "uuid"),
            (np.full(s.member.size, model_id, dtype=np.int64), "int8"),
            (s.x, "int4"),
            (s.t_x, "int4"),
            (s.T, "int4"),
            (s.m, "float8"),
            (result.p_alive, "float8"),
            (result.expected, "float8"),
            (result.spend, "float8"),
            (result.value, "float8"),
            (result.historical, "int8"),
        ],
    )
    run = ClvRun(model_id=model_id, members=int(s.member.size), repeat_buyers=repeat_buyers)
    return run, result


# ---------------------------------------------------------------- churn


@dataclass(frozen=True, slots=True)
class ChurnRun:
    evaluated: int
    at_risk: int
    emitted: int
    typical_gap_days: float | None


def _churn_math(
    rows: repository.OrderRows,
    as_of: int,
    params: clv.BgNbdParams | None,
    settings: AnalyticsSettings,
    summary: clv.ClvInputs | None = None,
) -> tuple[clv.ClvInputs, NDArray[np.float64], churn.ChurnAssessment, float | None]:
    s = summary or clv.summarise_transactions(rows.member, rows.day, rows.net_minor, as_of)
    # Without a fitted model nobody's P(alive) is known: repeat buyers are not flagged.
    alive = np.ones(s.x.shape) if params is None else clv.p_alive(params, s.x, s.t_x, s.T)
    gap = churn.typical_interpurchase_time(s.x, s.t_x)
    assessment = churn.assess_churn_risk(
        s.x,
        s.T - s.t_x,
        alive,
        gap,
        threshold=settings.churn_threshold,
        multiple=settings.churn_recency_multiple,
    )
    return s, alive, assessment, gap


async def score_churn(sessions: Sessions, settings: AnalyticsSettings, now: datetime) -> ChurnRun:
    """Assess churn risk for every buyer and step the episode rule: emit
    member.churn_risk once when a member enters risk with no open episode; a purchase
    since the last evaluation closes (re-arms) the episode. P(alive) comes from the
    latest CLV fit."""
    async with sessions() as session, session.begin():
        model = await repository.latest_clv_model(session)
        params = None if model is None else clv.BgNbdParams(**model["bgnbd"]["params"])
        rows = await repository.load_order_rows(session, until=now)
        previous = await _previous_churn_states(session, rows)
        work = await asyncio.to_thread(
            _churn_work, rows, day_number(now), params, settings, now, previous
        )
        return await _store_churn(session, rows, work, now)


_ChurnStates = tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.bool_]]


async def _previous_churn_states(session: AsyncSession, rows: repository.OrderRows) -> _ChurnStates:
    """(in_episode, last purchase day, known) by member index, for every member of `rows`."""
    return await repository.previous_churn_state(
        session, np.arange(rows.members.size, dtype=np.int64)
    )


@dataclass(frozen=True, slots=True)
class _ChurnWork:
    """Everything of a churn pass that needs no database: computed in a worker thread."""

    summary: clv.ClvInputs
    risk: churn.ChurnAssessment
    gap: float | None
    last_day: NDArray[np.int64]
    in_episode: NDArray[np.bool_]
    emitted: int
    events: bulk_events.OutboxRows | None


def _churn_work(
    rows: repository.OrderRows,
    as_of: int,
    params: clv.BgNbdParams | None,
    settings: AnalyticsSettings,
    now: datetime,
    previous: _ChurnStates,
    summary: clv.ClvInputs | None = None,
) -> _ChurnWork:
    s, alive, risk, gap = _churn_math(rows, as_of, params, settings, summary)
    last_day = (as_of - (s.T - s.t_x)).astype(np.int64)
    in_episode, previous_last, known = (state[s.member] for state in previous)
    purchased = known & (last_day != previous_last)
    step = churn.step_episodes(in_episode, risk.at_risk, purchased)
    emit = np.flatnonzero(step.emit)
    member_ids = bulk_events.member_strings(rows.members[s.member[emit]])
    score, reason, alive_k, repeat = (
        risk.score[emit].tolist(),
        risk.reason[emit].tolist(),
        alive[emit].tolist(),
        (s.x[emit] > 0).tolist(),
    )

    def churn_risk(fields: Hashable) -> MemberChurnRisk:
        j = cast(int, fields)
        return MemberChurnRisk(
            score=min(max(float(score[j]), 0.0), 1.0),
            reason=churn.ChurnReason(int(reason[j])).label,
            p_alive=float(alive_k[j]) if repeat[j] else None,
        )

    events = bulk_events.outbox_rows(
        ((member_ids[j], j) for j in range(emit.size)),
        churn_risk,
        producer=SERVICE,
        occurred_at=now,
    )
    return _ChurnWork(s, risk, gap, last_day, step.in_episode, int(emit.size), events)


async def _store_churn(
    session: AsyncSession, rows: repository.OrderRows, work: _ChurnWork, now: datetime
) -> ChurnRun:
    s, risk = work.summary, work.risk
    await repository.replace_churn_state(
        session,
        [
            (rows.members[s.member], "uuid"),
            (work.in_episode, "bool"),
            (work.last_day, "int4"),
            (risk.at_risk, "bool"),
            (risk.score, "float8"),
            (risk.reason, "int2"),
            pgbinary.timestamp_column(now, s.member.size),
        ],
    )
    await repository.append_outbox(session, work.events)
    return ChurnRun(
        evaluated=int(s.member.size),
        at_risk=int(np.count_nonzero(risk.at_risk)),
        emitted=work.emitted,
        typical_gap_days=work.gap,
    )


# ---------------------------------------------------------------- all three


@dataclass(frozen=True, slots=True)
class RefitRun:
    rfm: RfmRun
    clv: ClvRun
    churn: ChurnRun
    seconds: float


async def refit_all(sessions: Sessions, settings: AnalyticsSettings, now: datetime) -> RefitRun:
    """RFM scoring, CLV refit and churn scoring from one read of the order history, in one
    transaction (the scheduled job; the three can also run alone). Churn uses the
    parameters just fitted.

    The database statements run one after another (one connection), in the order of the
    three jobs run alone; the Python work overlaps them in worker threads, one thread of
    Python at a time (two would only take turns holding the GIL): the segment-change
    events are built while the RFM scores are written, then the CLV fit and the churn
    pass (its events included) run while the segment changes go into the outbox.
    """
    started = time.perf_counter()
    as_of = day_number(now)
    async with sessions() as session, session.begin():
        rows = await repository.load_order_rows(session, until=now)
        scoring_rfm = asyncio.ensure_future(
            asyncio.to_thread(_rfm_math, rows, as_of, settings.rfm_window_days)
        )
        events_built = asyncio.Event()

        async def fit() -> _ClvResult:
            await events_built.wait()
            return await asyncio.to_thread(_clv_math, rows, as_of, settings)

        fitting = asyncio.ensure_future(fit())
        try:
            previous = await _previous_churn_states(session, rows)
            scored = await scoring_rfm
            rfm_run, segment_events = await _score_rfm(session, rows, scored, now, events_built)
        except BaseException:
            scoring_rfm.cancel()
            fitting.cancel()
            raise

        async def churn_after_fit() -> _ChurnWork | None:
            try:
                fitted = await fitting
            except ValueError:
                return None  # no fit: the previous model's P(alive) is read below
            return await asyncio.to_thread(
                _churn_work,
                rows,
                as_of,
                fitted.bgnbd.params,
                settings,
                now,
                previous,
                fitted.summary,
            )

        scoring = asyncio.ensure_future(churn_after_fit())
        try:
            await repository.append_outbox(session, segment_events)
            clv_run, _ = await _refit_clv(session, rows, settings, now, fitting)
            work = await scoring
        except BaseException:
            fitting.cancel()
            scoring.cancel()
            raise
        if work is None:  # keep the previous model's P(alive), if there is one
            model = await repository.latest_clv_model(session)
            params = None if model is None else clv.BgNbdParams(**model["bgnbd"]["params"])
            work = await asyncio.to_thread(
                _churn_work, rows, as_of, params, settings, now, previous
            )
        churn_run = await _store_churn(session, rows, work, now)
    return RefitRun(rfm_run, clv_run, churn_run, time.perf_counter() - started)


# ---------------------------------------------------------------- schedule


def _settings(runtime: Runtime) -> AnalyticsSettings:
    return cast(AnalyticsSettings, runtime.settings)


async def _run_refit(runtime: Runtime) -> None:
    result = await refit_all(runtime.sessions, _settings(runtime), runtime.clock())
    log.info(
        "refit: %d scored (%d segment changes), CLV model %s, %d churn events in %.1fs",
        result.rfm.scored,
        result.rfm.changed,
        result.clv.model_id,
        result.churn.emitted,
        result.seconds,
    )


async def _run_churn(runtime: Runtime) -> None:
    await score_churn(runtime.sessions, _settings(runtime), runtime.clock())


def jobs_for(settings: AnalyticsSettings) -> list[PeriodicJob]:
    """The nightly refit (RFM + CLV + churn, one read) and a more frequent churn pass."""
    return [
        PeriodicJob("rfm-clv-churn-refit", settings.refit_interval_seconds, _run_refit),
        PeriodicJob("churn-risk", settings.churn_interval_seconds, _run_churn),
    ]

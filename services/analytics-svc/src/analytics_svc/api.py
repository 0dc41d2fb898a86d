"""REST API of analytics-svc under /v1, and the ops dashboard page (docs/api/analytics-svc.md).

Everything needs the `ops` scope, except a member's own RFM and CLV rows, which a
storefront (server-to-server) token may read too; a member token may not (CLV is an
internal valuation of the member, not something shown to them).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from memberflow_platform.app import get_runtime, get_session
from memberflow_platform.auth import OPS, STOREFRONT, Principal, require
from memberflow_platform.problems import Problem, invalid, not_found
from memberflow_platform.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from analytics_svc import jobs, kpis, repository, rfm, uplift
from analytics_svc.rebuild import RebuildRunning, rebuild
from analytics_svc.reports import clean_object, kpi_series, kpi_summary
from analytics_svc.settings import AnalyticsSettings

router = APIRouter(prefix="/v1", tags=["analytics"])
pages = APIRouter(include_in_schema=False)

DASHBOARD = Path(__file__).resolve().parent / "static" / "dashboard.html"
MAX_BUCKETS = 1000

ops_only = require(OPS)
ops_or_storefront = require(OPS, STOREFRONT)


def _settings(runtime: Runtime) -> AnalyticsSettings:
    return cast(AnalyticsSettings, runtime.settings)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise invalid(field, "must carry a time zone, e.g. 2025-01-01T00:00:00Z")
    return value.astimezone(UTC)


def _now(runtime: Runtime, at: datetime | None) -> datetime:
    return runtime.clock() if at is None else _aware(at, "query.at")


# ---------------------------------------------------------------- KPIs


@router.get("/kpis", summary="KPI series over [from, to) by day, week or month")
async def get_kpis(
    from_: datetime = Query(alias="from", description="start, inclusive (RFC 3339)"),
    to: datetime = Query(description="end, exclusive (RFC 3339)"),
    granularity: Literal["day", "week", "month"] = "day",
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    start, end = _aware(from_, "query.from"), _aware(to, "query.to")
    if start >= end:
        raise invalid("query.to", "must be after from")
    if (end - start).days > 36_600:
        raise invalid("query.to", "range longer than 100 years")
    if len(kpis.split_buckets(start, end, granularity)) > MAX_BUCKETS:
        raise invalid("query.granularity", f"more than {MAX_BUCKETS} buckets; use a coarser one")
    settings = _settings(runtime)
    async with session.begin():
        buckets = await kpi_series(
            session,
            start,
            end,
            kpis.Granularity(granularity),
            active_days=settings.active_window_days,
            cost_per_point_minor=settings.cost_per_point_minor,
        )
    return clean_object(
        {
            "from": start,
            "to": end,
            "granularity": granularity,
            "active_window_days": settings.active_window_days,
            "cost_per_point_minor": settings.cost_per_point_minor,
            "buckets": buckets,
        }
    )


@router.get("/kpis/summary", summary="KPIs of the last window_days before `at` (default now)")
async def get_kpi_summary(
    at: datetime | None = None,
    window_days: int = Query(default=30, ge=1, le=3660),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    moment = _now(runtime, at)
    settings = _settings(runtime)
    async with session.begin():
        summary = await kpi_summary(
            session,
            moment,
            window_days,
            active_days=settings.active_window_days,
            cost_per_point_minor=settings.cost_per_point_minor,
        )
        at_risk, in_episode = await repository.at_risk_count(session)
    return clean_object(
        {"at": moment, **summary, "churn_at_risk": at_risk, "churn_episodes": in_episode}
    )


@router.get("/tiers/distribution", summary="Members per tier and their shares at `at`")
async def get_tier_distribution(
    at: datetime | None = None,
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    moment = _now(runtime, at)
    async with session.begin():
        counts = dict(sorted((await repository.tier_counts(session, moment)).items()))
    return clean_object(
        {
            "at": moment,
            "members": sum(counts.values()),
            "tiers": [
                {"tier": tier, "members": n, "share": share}
                for (tier, n), share in zip(
                    counts.items(), kpis.tier_distribution(counts).values(), strict=True
                )
            ],
        }
    )


# ---------------------------------------------------------------- RFM


@router.get("/rfm/segments", summary="Members per RFM segment and the R × FM grid")
async def get_rfm_segments(
    session: AsyncSession = Depends(get_session), _: Principal = Depends(ops_only)
) -> dict[str, Any]:
    async with session.begin():
        codes, grid, scored_at = await repository.rfm_segment_counts(session)
    return clean_object(
        {
            "scored_at": scored_at,
            "members": sum(codes.values()),
            "segments": [
                {"segment": name, "members": codes.get(i, 0)} for i, name in enumerate(rfm.SEGMENTS)
            ],
            "grid": {
                "rows": "r (1..5)",
                "columns": "fm (1..5)",
                "members": grid,
                "segments": [[rfm.SEGMENTS[int(c)] for c in row] for row in rfm.SEGMENT_GRID],
            },
        }
    )


@router.get("/members/{member_id}/rfm", summary="A member's RFM scores and segment")
async def get_member_rfm(
    member_id: UUID,
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(ops_or_storefront),
) -> dict[str, Any]:
    async with session.begin():
        row = await repository.member_rfm(session, member_id)
    if row is None:
        raise not_found("RFM scores of this member (no purchase, or not scored yet)")
    code = int(row.pop("segment_code"))
    return clean_object({**row, "segment": rfm.SEGMENTS[code]})


# ---------------------------------------------------------------- CLV


def _model_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_id": row["id"],
        "fitted_at": row["fitted_at"],
        "as_of": (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=row["as_of_day"]))
        .date()
        .isoformat(),
        "members": row["members"],
        "repeat_buyers": row["repeat_buyers"],
        "bgnbd": row["bgnbd"],
        "gamma_gamma": row["gamma_gamma"],
        "settings": row["settings"],
        "fit_seconds": row["seconds"],
    }


@router.get("/clv/model", summary="Latest BG/NBD + Gamma-Gamma fit: parameters and diagnostics")
async def get_clv_model(
    session: AsyncSession = Depends(get_session), _: Principal = Depends(ops_only)
) -> dict[str, Any]:
    async with session.begin():
        row = await repository.latest_clv_model(session)
    if row is None:
        raise not_found("CLV model (not fitted yet: it needs at least one repeat buyer)")
    return clean_object(_model_view(row))


@router.get("/members/{member_id}/clv", summary="A member's P(alive), expected purchases, CLV")
async def get_member_clv(
    member_id: UUID,
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
    _: Principal = Depends(ops_or_storefront),
) -> dict[str, Any]:
    async with session.begin():
        row = await repository.member_clv(session, member_id)
    if row is None:
        raise not_found("CLV of this member (no purchase, or no model fitted yet)")
    settings = _settings(runtime)
    return clean_object(
        {
            "member_id": row["member_id"],
            "model_id": row["model_id"],
            "x": row["x"],
            "t_x_days": row["t_x"],
            "T_days": row["t_cal"],
            "mean_repeat_value_minor": row["mean_repeat_minor"],
            "p_alive": row["p_alive"],
            "horizon_days": settings.clv_horizon_days,
            "expected_purchases": row["expected_purchases"],
            "expected_spend_minor": row["expected_spend"],
            "predicted_clv_minor": row["predicted_clv"],
            "historical_clv_minor": row["historical_clv"],
        }
    )


@router.get("/clv/distribution", summary="Histogram and summary of predicted CLV")
async def get_clv_distribution(
    bins: int = Query(default=20, ge=1, le=200),
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    async with session.begin():
        distribution = await repository.clv_distribution(session, bins)
    return clean_object(distribution)


# ---------------------------------------------------------------- campaigns


@router.get("/campaigns", summary="Campaigns with exposures (treatment and control members)")
async def get_campaigns(
    session: AsyncSession = Depends(get_session), _: Principal = Depends(ops_only)
) -> dict[str, Any]:
    async with session.begin():
        rows = await repository.campaigns(session)
    return clean_object({"campaigns": rows})


@router.get("/campaigns/{campaign_id}/uplift", summary="Treatment vs control conversion")
async def get_uplift(
    campaign_id: UUID,
    window_days: int = Query(default=14, ge=1, le=365),
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    async with session.begin():
        counts = await repository.uplift_counts(session, campaign_id, window_days)
    if not counts:
        raise not_found("exposures of this campaign")
    t_exposed, t_converted = counts.get("treatment", (0, 0))
    c_exposed, c_converted = counts.get("control", (0, 0))
    result = uplift.uplift(t_converted, t_exposed, c_converted, c_exposed)
    return clean_object(
        {
            "campaign_id": str(campaign_id),
            "window_days": window_days,
            "treatment": {
                "exposed": t_exposed,
                "converted": t_converted,
                "rate": result.treatment_rate,
            },
            "control": {
                "exposed": c_exposed,
                "converted": c_converted,
                "rate": result.control_rate,
            },
            "difference": result.difference,
            "confidence": result.confidence,
            "interval": None if result.interval is None else asdict(result.interval),
            "method": "Newcombe hybrid score interval (Wilson), 95 %",
        }
    )


# ---------------------------------------------------------------- ops


@router.post("/ops/rebuild", summary="Truncate the projections and replay every topic")
async def post_rebuild(
    runtime: Runtime = Depends(get_runtime), _: Principal = Depends(ops_only)
) -> dict[str, Any]:
    settings = _settings(runtime)
    try:
        result = await rebuild(
            runtime.sessions,
            bootstrap=settings.kafka_bootstrap,
            topic_prefix=settings.topic_prefix,
            consumer_name=settings.service_name,
            batch_size=settings.rebuild_batch_size,
        )
    except RebuildRunning as error:
        raise Problem(409, str(error), code="rebuild-running") from None
    return clean_object(asdict(result))


JobName = Literal["rfm", "clv", "churn", "refit"]


@router.post("/ops/jobs/{job}/run", summary="Run a job now: rfm, clv, churn or refit (all three)")
async def post_run_job(
    job: JobName,
    at: datetime | None = Query(
        default=None, description="evaluate as of this moment (default now), e.g. for demo data"
    ),
    runtime: Runtime = Depends(get_runtime),
    _: Principal = Depends(ops_only),
) -> dict[str, Any]:
    settings, now = _settings(runtime), _now(runtime, at)
    result: Any
    if job == "rfm":
        result = await jobs.score_rfm(runtime.sessions, settings, now)
    elif job == "clv":
        result = await jobs.refit_clv(runtime.sessions, settings, now)
    elif job == "refit":
        result = await jobs.refit_all(runtime.sessions, settings, now)
    else:
        result = await jobs.score_churn(runtime.sessions, settings, now)
    return clean_object({"job": job, "ran_at": now, **asdict(result)})


# ---------------------------------------------------------------- dashboard


@pages.get("/dashboard", response_class=HTMLResponse)
async def get_dashboard() -> HTMLResponse:
    """The ops dashboard; its script reads the API with the token from ?token= or the page."""
    return HTMLResponse(DASHBOARD.read_text(encoding="utf-8"))

"""Every KPI against an independent computation from the same generated events; duplicates,
out-of-order arrival and a rebuild change nothing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.inbox import EVENTS_CONSUMED
from memberflow_events.payloads import OrderPurchased, OrderRefunded

from tests.integration.analytics_svc.expected import Facts
from tests.integration.analytics_svc.generate import T0, History, generate, publish
from tests.integration.analytics_svc.helpers import applied, table_contents
from tests.support import bearer, eventually

RANGE = {"from": (T0 - timedelta(days=3)).isoformat(), "to": (T0 + timedelta(days=125)).isoformat()}


def assert_matches(bucket: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for name, value in expected.items():
        got = bucket[name]
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-9, abs=1e-9), f"{name} in {where}"
        else:
            assert got == value, f"{name} in {where}: {got} != {value}"


async def kpis(client: httpx.AsyncClient, app: FastAPI, granularity: str) -> dict[str, Any]:
    response = await client.get(
        "/v1/kpis", params={**RANGE, "granularity": granularity}, headers=bearer(app, "ops", "ops")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def check_all_kpis(client: httpx.AsyncClient, app: FastAPI, facts: Facts) -> None:
    for granularity in ("day", "week", "month"):
        body = await kpis(client, app, granularity)
        assert body["buckets"], granularity
        for bucket in body["buckets"]:
            start = datetime.fromisoformat(bucket["start"])
            end = datetime.fromisoformat(bucket["end"])
            expected = facts.bucket(start, end)
            assert_matches(bucket, expected, f"{granularity} {bucket['start']}")


def held_back(history: History) -> tuple[list[Any], list[Any]]:
    """Split the history: refunded purchases are held back, so their refunds come first."""
    refunded = {e.payload_as(OrderRefunded).order_id for e in history.of_type("order.refunded")}
    late = [
        e
        for e in history.events
        if e.type == "order.purchased" and e.payload_as(OrderPurchased).order_id in refunded
    ]
    late_ids = {e.event_id for e in late}
    return [e for e in history.events if e.event_id not in late_ids], late


async def test_every_kpi_matches_an_independent_computation(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    history = generate(seed=11)
    early, late = held_back(history)
    assert late, "the history should refund some orders"
    rng = random.Random(3)
    # Refunds before their purchases, a shuffled order, and a fifth of the events twice.
    first = early + rng.sample(early, len(early) // 5)
    rng.shuffle(first)
    await publish(first, topic_prefix)
    await applied(app, early)
    await publish(late + rng.sample(history.events, 40), topic_prefix)
    await applied(app, history.events)

    facts = Facts(history.events)
    await check_all_kpis(client, app, facts)
    # The bucketed numbers are not trivially zero.
    week = await kpis(client, app, "week")
    assert sum(b["orders"] for b in week["buckets"]) == len(
        [o for o in facts.orders.values() if facts.net(o) > 0]
    )
    assert any(b["refunded_minor"] for b in week["buckets"])
    assert any(b["nps"] is not None for b in week["buckets"])
    assert any(b["pending_points"] for b in week["buckets"])

    # The whole history again: every copy is a duplicate, and no KPI moves.
    before = {g: await kpis(client, app, g) for g in ("day", "week", "month")}
    duplicates = EVENTS_CONSUMED.labels("analytics-svc", "duplicate")
    seen = duplicates._value.get()
    await publish(history.events, topic_prefix)

    async def all_skipped() -> bool:
        return bool(duplicates._value.get() >= seen + len(history.events))

    await eventually(all_skipped, what="every copy skipped")
    for granularity, earlier in before.items():
        assert await kpis(client, app, granularity) == earlier

    summary = await client.get(
        "/v1/kpis/summary",
        params={"at": (T0 + timedelta(days=100)).isoformat()},
        headers=bearer(app, "ops", "ops"),
    )
    assert summary.status_code == 200, summary.text
    assert_matches(
        summary.json(),
        facts.bucket(T0 + timedelta(days=70), T0 + timedelta(days=100)),
        "summary",
    )
    tiers = await client.get(
        "/v1/tiers/distribution",
        params={"at": (T0 + timedelta(days=200)).isoformat()},
        headers=bearer(app, "ops", "ops"),
    )
    expected_tiers = facts.bucket(T0 + timedelta(days=199), T0 + timedelta(days=200))[
        "tier_members"
    ]
    body = tiers.json()
    assert {t["tier"]: t["members"] for t in body["tiers"]} == expected_tiers
    assert sum(t["share"] for t in body["tiers"]) == pytest.approx(1.0)


async def test_rebuild_replays_into_identical_projections(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    history = generate(seed=5)
    early, late = held_back(history)
    await publish(early + late + early[:30], topic_prefix)
    await applied(app, history.events)
    tables_before = await table_contents(app)
    kpis_before = {g: await kpis(client, app, g) for g in ("week", "month")}
    assert sum(len(rows) for rows in tables_before.values()) > 500

    response = await client.post("/v1/ops/rebuild", headers=bearer(app, "ops", "ops"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["records"] == len(early) + len(late) + 30
    assert result["applied"] == len(early) + len(late) + 30  # copies included...
    assert result["invalid"] == 0

    assert await table_contents(app) == tables_before  # ...and they changed nothing
    for granularity, before in kpis_before.items():
        assert await kpis(client, app, granularity) == before
    forbidden = await client.post("/v1/ops/rebuild", headers=bearer(app, "shop", "storefront"))
    assert forbidden.status_code == 403

    # The live consumer keeps going after the rebuild.
    more = generate(seed=6, members=3)
    await publish(more.events, topic_prefix)
    await applied(app, more.events)  # the rebuild emptied the inbox: only these are in it
    await check_all_kpis(client, app, Facts([*history.events, *more.events]))

"""RFM scoring and member.segment_changed, CLV refit, churn-risk episodes and uplift,
against the real database and Kafka, with the jobs run on an injected clock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from analytics_svc import jobs
from analytics_svc.settings import AnalyticsSettings
from fastapi import FastAPI
from memberflow_events.codec import decode
from memberflow_events.envelope import Envelope
from memberflow_events.payloads import MemberChurnRisk, MemberRegistered, MemberSegmentChanged
from sqlalchemy import text

from tests.integration.analytics_svc.expected import Facts, newcombe
from tests.integration.analytics_svc.generate import T0, event, generate, publish, purchase
from tests.integration.analytics_svc.helpers import applied
from tests.support import bearer, eventually, published_by, read_topic

OPS = ("ops", "ops")
EPOCH = date(1970, 1, 1)


async def analytics_events(app: FastAPI, prefix: str, wanted: int) -> list[Envelope]:
    """The service's own events on `analytics`, once the relay has published `wanted`."""
    found: list[Envelope] = []

    async def published() -> bool:
        found[:] = [decode(r.value) for r in await read_topic(f"{prefix}analytics")]
        return len(found) >= wanted

    await eventually(published, within=30, what=f"{wanted} analytics events")
    return found


async def segments(app: FastAPI) -> dict[uuid.UUID, int]:
    async with app.state.runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT member_id, segment_code FROM rfm_scores"))
        return {row.member_id: int(row.segment_code) for row in rows}


def occasions(facts: Facts, member: uuid.UUID, before_day: int) -> dict[int, int]:
    """Net amount per UTC purchase day (days since 1970-01-01) of one member."""
    per_day: dict[int, int] = defaultdict(int)
    for order in facts.orders.values():
        day = (order.occurred_at.date() - EPOCH).days
        if order.member_id == member and day <= before_day:
            per_day[day] += facts.net(order)
    return per_day


async def test_segment_changed_only_on_change(
    app: FastAPI, client: httpx.AsyncClient, settings: AnalyticsSettings, topic_prefix: str
) -> None:
    history = generate(seed=21, members=40)
    await publish(history.events, topic_prefix)
    await applied(app, history.events)
    sessions = app.state.runtime.sessions
    now = T0 + timedelta(days=130)
    facts = Facts(history.events)
    buyers = {
        o.member_id
        for o in facts.orders.values()
        if o.member_id is not None and facts.net(o) > 0 and o.member_id not in facts.erased
    }

    first = await jobs.score_rfm(sessions, settings, now)
    assert first.scored == len(buyers)
    assert first.changed == len(buyers)  # a first scoring is a change from no segment
    again = await jobs.score_rfm(sessions, settings, now)
    assert again.changed == 0

    # One member's recency, frequency and monetary, computed here from the events.
    member = sorted(buyers)[0]
    as_of = (now.date() - EPOCH).days
    per_day = occasions(facts, member, as_of)
    bought = [d for d, amount in per_day.items() if amount > 0]
    response = await client.get(
        f"/v1/members/{member}/rfm", headers=bearer(app, "shop", "storefront")
    )
    assert response.status_code == 200, response.text
    rfm = response.json()
    assert rfm["recency_days"] == as_of - max(bought)
    assert rfm["frequency"] == len([d for d in bought if d > as_of - 365])
    assert rfm["monetary_minor"] == sum(per_day.values())
    segment_counts = (await client.get("/v1/rfm/segments", headers=bearer(app, *OPS))).json()
    assert segment_counts["members"] == len(buyers)
    assert sum(s["members"] for s in segment_counts["segments"]) == len(buyers)
    assert sum(map(sum, segment_counts["grid"]["members"])) == len(buyers)
    member_token = bearer(app, str(member), "member:self")
    assert (await client.get(f"/v1/members/{member}/rfm", headers=member_token)).status_code == 403

    # A lapsed low spender comes back with big orders: only changed segments are announced.
    before = await segments(app)
    lapsed = max(buyers, key=lambda m: (before[m], str(m)))  # codes: 0 Champions .. 10 Lost
    comeback = [purchase(lapsed, now + timedelta(hours=h), 90_000 + h) for h in (1, 30, 60)]
    await publish(comeback, topic_prefix)
    await applied(app, [*history.events, *comeback])
    later = now + timedelta(days=3)
    third = await jobs.score_rfm(sessions, settings, later)
    after = await segments(app)
    moved = {m for m in after if after[m] != before.get(m)}
    assert lapsed in moved
    assert third.changed == len(moved)

    published = await analytics_events(app, topic_prefix, first.changed + third.changed)
    changes = [e for e in published if e.type == "member.segment_changed"]
    assert len(changes) == first.changed + third.changed
    last_round = [e for e in changes if e.occurred_at == later]
    assert {e.member_id for e in last_round} == moved
    mine = next(e for e in last_round if e.member_id == lapsed).payload_as(MemberSegmentChanged)
    assert mine.previous_segment is not None
    assert mine.rfm_segment != mine.previous_segment
    assert mine.scored_at == later


async def test_clv_refit_predictions_and_uplift(
    app: FastAPI, client: httpx.AsyncClient, settings: AnalyticsSettings, topic_prefix: str
) -> None:
    history = generate(seed=31, members=80)
    await publish(history.events, topic_prefix)
    await applied(app, history.events)
    assert (await client.get("/v1/clv/model", headers=bearer(app, *OPS))).status_code == 404
    now = T0 + timedelta(days=125)
    refit = await jobs.refit_all(app.state.runtime.sessions, settings, now)
    run = refit.clv
    assert run.model_id is not None, run.reason
    assert refit.rfm.scored == refit.churn.evaluated == run.members  # one population

    model = (await client.get("/v1/clv/model", headers=bearer(app, *OPS))).json()
    assert set(model["bgnbd"]["params"]) == {"r", "alpha", "a", "b"}
    assert set(model["gamma_gamma"]["params"]) == {"p", "q", "gamma"}
    assert model["bgnbd"]["log_likelihood"] < 0
    assert model["bgnbd"]["diagnostics"]["n_observations"] == run.members
    assert "aic" in model["bgnbd"]["diagnostics"]
    assert model["repeat_buyers"] == run.repeat_buyers > 0

    facts = Facts(history.events)
    as_of = (now.date() - EPOCH).days
    repeat = next(
        m
        for m in sorted(history.members, key=str)
        if m not in facts.erased
        and len([d for d, a in occasions(facts, m, as_of).items() if a > 0]) >= 3
    )
    per_day = occasions(facts, repeat, as_of)
    bought = sorted(d for d, amount in per_day.items() if amount > 0)
    clv = (await client.get(f"/v1/members/{repeat}/clv", headers=bearer(app, *OPS))).json()
    assert clv["x"] == len(bought) - 1
    assert clv["t_x_days"] == bought[-1] - bought[0]
    assert clv["T_days"] == as_of - bought[0]
    assert clv["historical_clv_minor"] == sum(per_day.values())
    assert 0 <= clv["p_alive"] <= 1
    assert clv["expected_purchases"] > 0
    assert clv["predicted_clv_minor"] > 0

    distribution = (await client.get("/v1/clv/distribution", headers=bearer(app, *OPS))).json()
    assert distribution["members"] == run.members
    assert sum(b["members"] for b in distribution["bins"]) == run.members

    # Uplift: conversion within N days of the first exposure, per group.
    for window in (7, 14):
        response = await client.get(
            f"/v1/campaigns/{history.campaign_id}/uplift",
            params={"window_days": window},
            headers=bearer(app, *OPS),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        expected = facts.uplift(history.campaign_id, window)
        (nt, kt), (nc, kc) = expected["treatment"], expected["control"]
        assert (body["treatment"]["exposed"], body["treatment"]["converted"]) == (nt, kt)
        assert (body["control"]["exposed"], body["control"]["converted"]) == (nc, kc)
        assert body["difference"] == pytest.approx(kt / nt - kc / nc)
        low, high = newcombe(kt, nt, kc, nc)
        assert body["interval"]["low"] == pytest.approx(low)
        assert body["interval"]["high"] == pytest.approx(high)
    listed = (await client.get("/v1/campaigns", headers=bearer(app, *OPS))).json()
    assert [c["campaign_id"] for c in listed["campaigns"]] == [str(history.campaign_id)]
    unknown = await client.get(f"/v1/campaigns/{uuid.uuid4()}/uplift", headers=bearer(app, *OPS))
    assert unknown.status_code == 404


async def test_churn_risk_once_per_episode_rearmed_by_a_purchase(
    app: FastAPI, client: httpx.AsyncClient, settings: AnalyticsSettings, topic_prefix: str
) -> None:
    """Regular buyers every 10 days set the typical gap G = 10 days; a one-time buyer is
    at risk once silent for more than 3 G."""
    regulars = [uuid.uuid4() for _ in range(20)]
    once = uuid.uuid4()
    day = timedelta(days=1)
    events = [event(MemberRegistered(), m, T0 - day, "member-svc") for m in [*regulars, once]]
    for i, member in enumerate(regulars):
        events += [
            purchase(member, T0 + (10 * k) * day + i * timedelta(minutes=7), 2000 + 10 * k)
            for k in range(40)
        ]
    events.append(purchase(once, T0 + timedelta(hours=12), 5000))
    await publish(events, topic_prefix)
    await applied(app, events)
    sessions = app.state.runtime.sessions

    async def evaluate(on_day: int) -> list[uuid.UUID]:
        now = T0 + on_day * day + timedelta(hours=20)
        await jobs.refit_clv(sessions, settings, now)
        run = await jobs.score_churn(sessions, settings, now)
        assert run.typical_gap_days == pytest.approx(10, abs=0.5)
        published = await published_by(app)
        return [e.member_id for e in published if e.type == "member.churn_risk" and e.member_id]

    assert await evaluate(20) == []  # silent 20 days: not past 3 G
    first = await evaluate(40)  # silent 40 days > 30: an episode starts
    assert first.count(once) == 1
    assert (await evaluate(45)).count(once) == 1  # still at risk: no second event
    # The member buys again: the purchase closes the episode...
    comeback = purchase(once, T0 + 46 * day, 3000)
    await publish([comeback], topic_prefix)
    await applied(app, [*events, comeback])
    assert (await evaluate(47)).count(once) == 1
    # ...and once at risk again (a repeat buyer now: P(alive) under the threshold, since
    # the regulars keep buying every 10 days), a new episode emits again.
    emitted = await evaluate(300)
    assert emitted.count(once) == 2
    assert sum(1 for m in emitted if m in regulars) == 0

    published = await analytics_events(app, topic_prefix, len(emitted))
    risks = [e for e in published if e.type == "member.churn_risk" and e.member_id == once]
    assert len(risks) == 2
    first_risk, second_risk = (e.payload_as(MemberChurnRisk) for e in risks)
    assert first_risk.reason == "recency"
    assert first_risk.p_alive is None
    assert first_risk.score == pytest.approx(1 - 2 ** (-40 / 10), abs=0.05)
    assert second_risk.reason == "p_alive"
    assert second_risk.p_alive is not None
    assert second_risk.p_alive < settings.churn_threshold
    assert second_risk.score == pytest.approx(1 - second_risk.p_alive)

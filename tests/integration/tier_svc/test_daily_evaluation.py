"""The daily evaluation: downgrades once protection has ended, exactly once, injectable clock."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from tier_svc.domain import default_ladder
from tier_svc.jobs import evaluate_tiers, run_daily_evaluation

from tests.integration.tier_svc.helpers import (
    ShiftableClock,
    days_ago,
    member_tier,
    publish,
    purchased,
    registered,
    scalar,
    tier_events,
    wait_for_tier_events,
    wait_for_value,
)


async def test_downgrade_after_protection_happens_exactly_once(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    drops_to_basic, drops_to_silver = uuid.uuid4(), uuid.uuid4()
    reached = days_ago(10)
    await publish(
        producer,
        topic_prefix,
        registered(drops_to_basic, days_ago(400)),
        purchased(drops_to_basic, 6_000_00, reached),
        registered(drops_to_silver, days_ago(400)),
        purchased(drops_to_silver, 6_000_00, days_ago(300)),
        purchased(drops_to_silver, 1_500_00, days_ago(2)),
    )
    await wait_for_value(client, app, drops_to_basic, 6_000_00)
    await wait_for_value(client, app, drops_to_silver, 7_500_00)
    sessions = app.state.runtime.sessions
    ladder = default_ladder()

    assert await run_daily_evaluation(sessions, ladder, reached + timedelta(days=50)) == []
    later = reached + timedelta(days=366)
    changed = dict(await run_daily_evaluation(sessions, ladder, later))
    assert set(changed) == {drops_to_basic, drops_to_silver}
    to_basic, to_silver = changed[drops_to_basic], changed[drops_to_silver]
    assert (to_basic.from_tier, to_basic.to_tier, to_basic.direction) == (
        "gold",
        "basic",
        "downgrade",
    )
    assert (to_basic.reason, to_basic.qualifying_value) == ("protection_ended", 0)
    assert to_basic.protected_until == later + timedelta(days=365)
    assert (to_silver.to_tier, to_silver.qualifying_value) == ("silver", 1_500_00)
    # Again at the same instant, and the day after: nothing more to do.
    assert await run_daily_evaluation(sessions, ladder, later) == []
    assert await run_daily_evaluation(sessions, ladder, later + timedelta(days=1)) == []

    events = await wait_for_tier_events(topic_prefix, drops_to_basic, 3)
    assert [e.direction for e in events] == ["initial", "upgrade", "downgrade"]
    reached_at = await scalar(
        app, "SELECT reached_at FROM member_tiers WHERE member_id = :m", m=drops_to_basic
    )
    assert reached_at == later


async def test_the_periodic_job_uses_the_runtime_clock(
    app: FastAPI,
    client: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    clock: ShiftableClock,
) -> None:
    member = uuid.uuid4()
    await publish(
        producer,
        topic_prefix,
        registered(member, days_ago(30)),
        purchased(member, 1_200_00, days_ago(20)),
    )
    await wait_for_tier_events(topic_prefix, member, 2)
    await evaluate_tiers(app.state.runtime)  # today: still protected, nothing to do
    clock.offset = timedelta(days=400)
    await evaluate_tiers(app.state.runtime)
    await evaluate_tiers(app.state.runtime)
    events = await wait_for_tier_events(topic_prefix, member, 3)
    assert [(e.direction, e.to_tier) for e in events] == [
        ("initial", "basic"),
        ("upgrade", "silver"),
        ("downgrade", "basic"),
    ]
    view = await member_tier(client, app, member)
    assert (view["tier"], view["qualifying_value"]) == ("basic", 0)
    assert len(await tier_events(topic_prefix, member)) == 3


async def test_no_downgrade_while_protected_even_when_the_value_has_decayed(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    reached = days_ago(10)
    await publish(producer, topic_prefix, purchased(member, 6_000_00, reached))
    await wait_for_value(client, app, member, 6_000_00)
    # Protection longer than the window: the value is 0 from day 365, the tier stays to 400.
    ladder = default_ladder().model_copy(update={"protection_days": 400})
    sessions = app.state.runtime.sessions
    assert await run_daily_evaluation(sessions, ladder, reached + timedelta(days=380)) == []
    [(moved, change)] = await run_daily_evaluation(sessions, ladder, reached + timedelta(days=400))
    assert (moved, change.to_tier, change.qualifying_value) == (member, "basic", 0)

"""Schedule jobs with an injected clock: birthdays in each member's zone, one-off blasts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from campaign_svc.jobs import birthday_days_around, run_birthday_campaigns, run_due_blasts
from fastapi import FastAPI
from memberflow_events.payloads import MemberErased

from tests.integration.campaign_svc.helpers import (
    create_campaign,
    event,
    of_type,
    ops,
    publish,
    registered,
    sessions,
    tier_changed,
    wait_applied,
    wait_published,
    welcome_campaign,
)

pytestmark = pytest.mark.infra

# At this instant it is already 16 June 01:00 in Auckland but still 15 June 06:00 in LA.
INSTANT = datetime(2026, 6, 15, 13, 0, tzinfo=UTC)


async def _exposed_members(app: FastAPI) -> list[uuid.UUID | None]:
    return [e.member_id for e in await of_type(app, "campaign.exposed")]


async def test_birthdays_fire_once_per_member_per_year_in_the_members_own_zone(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client, app, welcome_campaign(name="Birthday", trigger={"kind": "birthday"})
    )
    auckland_16 = uuid.uuid4()  # birthday today in Auckland
    la_15 = uuid.uuid4()  # birthday today in LA
    la_16 = uuid.uuid4()  # tomorrow in LA
    auckland_15 = uuid.uuid4()  # yesterday in Auckland
    leap = uuid.uuid4()  # 29 February, in UTC
    await publish(
        topic_prefix,
        "members",
        [
            registered(auckland_16, birth_month=6, birth_day=16, time_zone="Pacific/Auckland"),
            registered(la_15, birth_month=6, birth_day=15, time_zone="America/Los_Angeles"),
            registered(la_16, birth_month=6, birth_day=16, time_zone="America/Los_Angeles"),
            registered(auckland_15, birth_month=6, birth_day=15, time_zone="Pacific/Auckland"),
            registered(leap, birth_month=2, birth_day=29),
        ],
    )
    await wait_applied(app, 5)
    db = sessions(app)

    assert await run_birthday_campaigns(db, INSTANT) == 2
    assert sorted(map(str, await _exposed_members(app))) == sorted(map(str, [auckland_16, la_15]))

    # the 15-minute job runs again the same day: nobody twice
    assert await run_birthday_campaigns(db, INSTANT + timedelta(minutes=15)) == 0
    assert await run_birthday_campaigns(db, INSTANT + timedelta(hours=10)) == 0
    # a day later it is LA's 16th; Auckland's 16th has passed
    assert await run_birthday_campaigns(db, INSTANT + timedelta(days=1)) == 1
    # next year, the same members again
    next_year = datetime(2027, 6, 15, 13, 0, tzinfo=UTC)
    assert await run_birthday_campaigns(db, next_year) == 2
    # 29 February is celebrated on 28 February in a common year
    assert await run_birthday_campaigns(db, datetime(2027, 2, 28, 12, tzinfo=UTC)) == 1
    assert await run_birthday_campaigns(db, datetime(2027, 3, 1, 12, tzinfo=UTC)) == 0

    exposed = await _exposed_members(app)
    assert exposed.count(auckland_16) == 2
    assert exposed.count(la_15) == 2
    assert exposed.count(la_16) == 1
    assert exposed.count(auckland_15) == 0
    assert exposed.count(leap) == 1
    coupons = await wait_published(topic_prefix, "coupon.issued", 6)
    assert {c.producer for c in coupons} == {"campaign-svc"}


async def test_paused_birthday_campaigns_do_not_fire(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    campaign = await create_campaign(
        client, app, welcome_campaign(name="Birthday", trigger={"kind": "birthday"})
    )
    await client.patch(
        f"/v1/campaigns/{campaign['campaign_id']}", json={"status": "paused"}, headers=ops(app)
    )
    member = uuid.uuid4()
    await publish(topic_prefix, "members", [registered(member, birth_month=6, birth_day=15)])
    await wait_applied(app, 1)

    assert await run_birthday_campaigns(sessions(app), INSTANT) == 0


def test_birthday_candidates_cover_every_zone_and_month_ends() -> None:
    days = birthday_days_around(datetime(2027, 2, 28, 12, tzinfo=UTC))
    assert {(2, 27), (2, 28), (3, 1), (2, 29), (2, 30), (2, 31)} <= days
    assert (3, 2) not in days
    assert birthday_days_around(INSTANT) == {(6, 14), (6, 15), (6, 16)}


async def test_a_blast_goes_once_to_its_segment_when_its_time_has_come(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    send_at = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    await create_campaign(
        client,
        app,
        welcome_campaign(
            name="Gold summer sale",
            trigger={"kind": "blast", "send_at": send_at.isoformat()},
            audience={"tiers": ["gold"], "attributes": {"country": "NZ"}},
        ),
    )
    gold_nz = [uuid.uuid4() for _ in range(5)]
    gold_fr, silver_nz = uuid.uuid4(), uuid.uuid4()
    await publish(
        topic_prefix,
        "members",
        [registered(m, attributes={"country": "NZ"}) for m in [*gold_nz, silver_nz]]
        + [registered(gold_fr, attributes={"country": "FR"})],
    )
    await publish(
        topic_prefix,
        "tiers",
        [tier_changed(m, "gold") for m in [*gold_nz, gold_fr]]
        + [tier_changed(silver_nz, "silver")],
    )
    await wait_applied(app, 14)
    db = sessions(app)

    assert await run_due_blasts(db, send_at - timedelta(minutes=1)) == 0
    assert await run_due_blasts(db, send_at + timedelta(minutes=1), batch_size=2) == 5
    assert await run_due_blasts(db, send_at + timedelta(minutes=2)) == 0

    assert sorted(map(str, await _exposed_members(app))) == sorted(map(str, gold_nz))
    assert len(await of_type(app, "coupon.issued")) == 5


async def test_erased_members_get_no_birthday_and_a_paused_blast_waits_for_resume(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client, app, welcome_campaign(name="Birthday", trigger={"kind": "birthday"})
    )
    send_at = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    blast = await create_campaign(
        client,
        app,
        welcome_campaign(name="Blast", trigger={"kind": "blast", "send_at": send_at.isoformat()}),
    )
    kept, erased = uuid.uuid4(), uuid.uuid4()
    await publish(
        topic_prefix,
        "members",
        [
            registered(kept, birth_month=6, birth_day=15, time_zone="America/Los_Angeles"),
            registered(erased, birth_month=6, birth_day=15, time_zone="America/Los_Angeles"),
            event(MemberErased(), erased),
        ],
    )
    await wait_applied(app, 3)
    db = sessions(app)

    assert await run_birthday_campaigns(db, INSTANT) == 1
    url = f"/v1/campaigns/{blast['campaign_id']}"
    await client.patch(url, json={"status": "paused"}, headers=ops(app))
    assert await run_due_blasts(db, send_at + timedelta(minutes=1)) == 0
    await client.patch(url, json={"status": "active"}, headers=ops(app))
    assert await run_due_blasts(db, send_at + timedelta(minutes=2)) == 1
    assert await run_due_blasts(db, send_at + timedelta(minutes=3)) == 0

    assert erased not in await _exposed_members(app)

"""Edges of the consumed contract: foreign refunds, guest refunds, member events."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from memberflow_events.codec import decode
from memberflow_events.envelope import new_event
from memberflow_events.payloads import MemberErased, MemberRegistered, OrderPurchased

from tests.integration.points_svc.helpers import (
    get_balance,
    now,
    publish,
    purchase,
    refund,
    scalar,
    violations,
    wait_for_balance,
)
from tests.support import eventually, read_topic


async def test_a_refund_naming_another_members_order_is_dead_lettered(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    owner, intruder = uuid.uuid4(), uuid.uuid4()
    bought = purchase(owner, 10_000)
    order_id = bought.payload_as(OrderPurchased).order_id
    await publish(topic_prefix, "orders", [bought])
    await wait_for_balance(client, app, owner, "purchase", available=100)

    foreign = refund(intruder, order_id, 10_000)
    await publish(topic_prefix, "orders", [foreign])

    async def dead_lettered() -> bool:
        records = await read_topic(f"{topic_prefix}dlq.points-svc")
        return any(decode(r.value).event_id == foreign.event_id for r in records)

    await eventually(dead_lettered, what="the foreign refund in dlq.points-svc")
    assert (await get_balance(client, app, owner))["available"] == 100
    assert await violations(app) == []


async def test_guest_refunds_are_ignored_and_member_events_open_accounts(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member, erased = uuid.uuid4(), uuid.uuid4()
    guest = purchase(None, 5_000)
    guest_refund = new_event(
        refund(member, guest.payload_as(OrderPurchased).order_id, 5_000).payload,
        producer="order-system:test",
        member_id=None,
        occurred_at=now(),
    )
    await publish(topic_prefix, "orders", [guest, guest_refund])
    await publish(
        topic_prefix,
        "members",
        [
            new_event(
                MemberRegistered(), producer="member-svc", member_id=member, occurred_at=now()
            ),
            new_event(MemberErased(), producer="member-svc", member_id=erased, occurred_at=now()),
        ],
    )

    async def account_opened() -> bool:
        found = await scalar(app, "SELECT count(*) FROM accounts WHERE member_id = :m", m=member)
        return bool(found)

    await eventually(account_opened, what="account opened on member.registered")

    async def refund_consumed() -> bool:
        found = await scalar(
            app, "SELECT count(*) FROM inbox WHERE event_id = :e", e=guest_refund.event_id
        )
        return bool(found)

    await eventually(refund_consumed, what="the guest refund consumed")
    assert (await get_balance(client, app, member))["total"] == 0
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0
    assert await scalar(app, "SELECT count(*) FROM orders") == 0

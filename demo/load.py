"""Load the demo programme into a running platform (called by `make up`).

Members, activity and feedback go through member-svc's REST API as a storefront would;
orders and refunds are published to Kafka as an order system would, with their historical
times. Event ids are derived from order and refund ids, so loading the same batch twice
changes nothing. Environment: MF_KAFKA_BOOTSTRAP, MF_TOPIC_PREFIX, MF_DEMO_MEMBERS,
MF_DEMO_DAYS, MF_DEMO_SEED, MF_DEMO_BATCH, MF_MEMBER_URL, MF_CAMPAIGN_URL, MF_POINTS_URL,
MF_ANALYTICS_URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from memberflow_events.codec import encode
from memberflow_events.envelope import Envelope
from memberflow_events.kafka import make_producer
from memberflow_events.payloads import OrderPurchased, OrderRefunded
from memberflow_events.topics import ORDERS, physical

from demo.campaigns import DEMO_CAMPAIGNS
from demo.generate import DemoData, generate
from demo.token import token_for

DEMO_NAMESPACE = uuid.UUID("7d1f4c52-58a1-4d1e-9a55-5f0c1f3f8a10")
PRODUCER = "order-system:demo"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


async def post_once(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str
) -> httpx.Response:
    """POST with an Idempotency-Key, sent again with the same key when the connection
    fails (the service may or may not have seen it): recorded once either way."""
    for attempt in range(1, 6):
        try:
            return await client.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            if attempt == 5:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _body_key(kind: str, index: int, body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return f"demo-{kind}-{index}-{digest}"


async def register_members(client: httpx.AsyncClient, data: DemoData) -> dict[int, uuid.UUID]:
    """Register every member (idempotent on external id); return demo ref -> member id."""
    limit = asyncio.Semaphore(16)
    ids: dict[int, uuid.UUID] = {}

    async def register(ref: int, body: dict[str, Any]) -> None:
        async with limit:
            key = f"demo-register-{body['external_id']}"
            response = await post_once(client, "/v1/members", body, key)
            if response.status_code not in (200, 201):
                raise RuntimeError(
                    f"registering {body['external_id']}: {response.status_code} {response.text}"
                )
            ids[ref] = uuid.UUID(response.json()["id"])

    await asyncio.gather(*(register(member.ref, member.registration) for member in data.members))
    return ids


def order_events(data: DemoData, ids: dict[int, uuid.UUID]) -> list[Envelope]:
    """Purchases and refunds in time order, with ids that make re-publishing harmless."""
    events = []
    for order in data.orders:
        member_id = ids.get(order.member_ref) if order.member_ref is not None else None
        payload = OrderPurchased.model_validate({**order.payload, "member_id": member_id})
        events.append(
            _envelope(payload, member_id, order.occurred_at, f"purchase:{order.order_id}")
        )
    for refund in data.refunds:
        member_id = ids.get(refund.member_ref) if refund.member_ref is not None else None
        refund_payload = OrderRefunded.model_validate(refund.payload)
        events.append(
            _envelope(
                refund_payload,
                member_id,
                refund.occurred_at,
                f"refund:{refund.payload['refund_id']}",
            )
        )
    return sorted(events, key=lambda event: event.occurred_at)


def _envelope(
    payload: OrderPurchased | OrderRefunded,
    member_id: uuid.UUID | None,
    occurred_at: datetime,
    name: str,
) -> Envelope:
    event_id = uuid.uuid5(DEMO_NAMESPACE, name)
    return Envelope(
        event_id=event_id,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at,
        producer=PRODUCER,
        member_id=member_id,
        correlation_id=event_id,
        causation_id=None,
        payload=payload,
    )


async def publish(events: list[Envelope], bootstrap: str, prefix: str) -> None:
    producer = make_producer(bootstrap, "demo-order-system")
    await producer.start()
    try:
        topic = physical(ORDERS, prefix)
        pending = [
            await producer.send(topic, encode(event), key=event.key.encode()) for event in events
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def record_engagement(
    client: httpx.AsyncClient, data: DemoData, ids: dict[int, uuid.UUID]
) -> None:
    limit = asyncio.Semaphore(16)

    async def post(path: str, body: dict[str, Any], key: str) -> None:
        async with limit:
            response = await post_once(client, path, body, key)
            if response.status_code != 202:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")

    calls = [
        post(f"/v1/members/{ids[ref]}/activities", body, _body_key("activity", i, body))
        for i, (ref, body) in enumerate(data.activities)
    ]
    calls += [
        post(f"/v1/members/{ids[ref]}/feedback", body, _body_key("feedback", i, body))
        for i, (ref, body) in enumerate(data.feedback)
    ]
    await asyncio.gather(*calls)


async def create_campaigns(client: httpx.AsyncClient) -> None:
    """Create the demo campaigns before any member exists, so the welcome campaign fires."""
    for definition in DEMO_CAMPAIGNS:
        response = await client.post("/v1/campaigns", json=definition)
        if response.status_code not in (201, 409):  # 409: created by an earlier load
            raise RuntimeError(
                f"creating campaign {definition['campaign_id']}: "
                f"{response.status_code} {response.text}"
            )


async def redeem_some_points(
    client: httpx.AsyncClient, ids: dict[int, uuid.UUID], every: int = 7
) -> int:
    """Every `every`-th member spends 100 points when they have them, as a shop checkout would."""
    redeemed = 0
    for ref, member_id in sorted(ids.items())[::every]:
        balance = await client.get(f"/v1/members/{member_id}/balance")
        if balance.status_code != 200 or balance.json()["available"] < 100:
            continue
        body = {"points": 100, "reference": f"demo-checkout-{ref}"}
        path = f"/v1/members/{member_id}/redemptions"
        response = await post_once(client, path, body, f"demo-redeem-{member_id}")
        if response.status_code not in (200, 201, 409):  # 409: spent in the meantime
            raise RuntimeError(f"redeeming for {member_id}: {response.status_code} {response.text}")
        redeemed += response.status_code in (200, 201)
    return redeemed


async def refit_analytics(client: httpx.AsyncClient, data: DemoData, days: int) -> None:
    """Wait until analytics-svc has every demo purchase and refund (by their sums: its
    order count leaves out wholly refunded orders), then fit RFM, CLV and churn risk now
    (the scheduled refit runs daily), so the dashboard and win-back campaign have data."""
    gross = sum(int(order.payload["total_minor"]) for order in data.orders)
    refunded = sum(int(refund.payload["amount_minor"]) for refund in data.refunds)
    deadline = time.monotonic() + 300
    while True:
        response = await client.get("/v1/kpis/summary", params={"window_days": days + 2})
        summary = response.json() if response.status_code == 200 else {}
        seen_gross = summary.get("gross_revenue_minor", 0)
        seen_refunded = summary.get("refunded_minor", 0)
        if seen_gross >= gross and seen_refunded >= refunded:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"analytics-svc has {seen_gross} of {gross} purchased and {seen_refunded} of "
                f"{refunded} refunded (minor units) after 300s"
            )
        await asyncio.sleep(2)
    response = await client.post("/v1/ops/jobs/refit/run", timeout=600)
    if response.status_code != 200:
        raise RuntimeError(f"analytics refit: {response.status_code} {response.text}")


async def load() -> None:
    members = int(_env("MF_DEMO_MEMBERS", "3000"))
    days = int(_env("MF_DEMO_DAYS", "270"))
    data = generate(
        int(_env("MF_DEMO_SEED", "7")),
        members,
        days,
        datetime.now(UTC),
        _env("MF_DEMO_BATCH", "demo"),
    )
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token_for('ops', 'demo-loader')}"}
    async with httpx.AsyncClient(
        base_url=_env("MF_CAMPAIGN_URL", "http://127.0.0.1:8004"), headers=headers, timeout=30
    ) as campaigns:
        await create_campaigns(campaigns)
        print(f"created {len(DEMO_CAMPAIGNS)} campaigns")
    async with httpx.AsyncClient(
        base_url=_env("MF_MEMBER_URL", "http://127.0.0.1:8001"), headers=headers, timeout=30
    ) as client:
        ids = await register_members(client, data)
        print(f"registered {len(ids)} members")
        events = order_events(data, ids)
        await publish(
            events, _env("MF_KAFKA_BOOTSTRAP", "127.0.0.1:19092"), _env("MF_TOPIC_PREFIX", "")
        )
        print(f"published {len(data.orders)} purchases and {len(data.refunds)} refunds to Kafka")
        await record_engagement(client, data, ids)
        print(f"recorded {len(data.activities)} activities and {len(data.feedback)} NPS answers")
    async with httpx.AsyncClient(
        base_url=_env("MF_POINTS_URL", "http://127.0.0.1:8002"), headers=headers, timeout=30
    ) as points:
        print(f"redeemed points for {await redeem_some_points(points, ids)} members")
    async with httpx.AsyncClient(
        base_url=_env("MF_ANALYTICS_URL", "http://127.0.0.1:8005"), headers=headers, timeout=30
    ) as analytics:
        await refit_analytics(analytics, data, days)
        print("analytics: RFM segments, CLV and churn risk fitted")
    print(
        f"demo data loaded in {time.perf_counter() - started:.1f}s "
        "(services keep applying the events for a little while)"
    )


def main() -> int:
    asyncio.run(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())

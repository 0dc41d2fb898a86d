"""`make chaos`: faults while purchases, refunds and redemptions flow; then every balance,
tier and KPI must equal what chaos/model.py computes from what was published.

    python -m chaos.run [--short] [--seed N]

Faults, in turn while the workload runs: SIGKILL of each service (then a restart), a
restart of the Kafka broker, a restart of PostgreSQL. The workload retries like a real
client: REST calls with the same Idempotency-Key until they get an answer, Kafka
publishes of the same event (same event id) until the broker acknowledges; it also
publishes a share of events twice on purpose. Exit status 0 only when nothing was lost
and nothing applied twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from memberflow_events.codec import decode, encode
from memberflow_events.envelope import Envelope, EventPayload
from memberflow_events.kafka import OutgoingRecord, RenewingProducer, quiet_repeated_kafka_errors
from memberflow_events.payloads import OrderPurchased, OrderRefunded
from memberflow_events.topics import ORDERS, POINTS, SERVICES, dlq_topic, physical

from chaos import model
from chaos.platform import KAFKA_BOOTSTRAP, Services, fresh_databases, infra, log
from demo.token import token_for
from tests.support import read_topic

OPS = {"Authorization": f"Bearer {token_for('ops', 'chaos-ops')}"}
STOREFRONT = {"Authorization": f"Bearer {token_for('storefront', 'chaos-shop')}"}
PATIENCE = 180.0  # seconds a client keeps retrying one call through outages


@dataclass(frozen=True)
class Plan:
    members: int
    concurrency: int
    pause: float  # between one member's actions; paces the workload across the faults
    settle: float  # seconds allowed for the platform to converge after the faults


SHORT = Plan(members=48, concurrency=8, pause=0.6, settle=180)
FULL = Plan(members=400, concurrency=16, pause=0.15, settle=300)


async def call(
    client: httpx.AsyncClient, method: str, url: str, ok: tuple[int, ...], **kwargs: Any
) -> httpx.Response:
    """Retry through outages (connection errors, 5xx, 503 while not ready) until an answer."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            response = await client.request(method, url, **kwargs)
            if response.status_code in ok or response.status_code < 500:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {url}: no answer within {PATIENCE}s")
        await asyncio.sleep(0.5)


class Publisher:
    """An order system's producer that republishes the same event until acknowledged."""

    def __init__(self, prefix: str) -> None:
        self.topic = physical(ORDERS, prefix)
        self.producer = RenewingProducer(KAFKA_BOOTSTRAP, "chaos-order-system")

    async def publish(self, event: Envelope) -> None:
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                record = OutgoingRecord(self.topic, encode(event), event.key.encode())
                await self.producer.deliver([record])
                return
            except Exception as error:  # any broker error: the event is sent again
                if time.monotonic() > deadline:
                    raise RuntimeError(f"publishing {event.event_id}: {error}") from error
                await asyncio.sleep(0.5)


def envelope(payload: EventPayload, member_id: uuid.UUID) -> Envelope:
    event_id = uuid.uuid4()
    return Envelope(
        event_id=event_id,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=datetime.now(UTC),
        producer="order-system:chaos",
        member_id=member_id,
        correlation_id=event_id,
        causation_id=None,
        payload=payload,
    )


class Workload:
    """Members joining, buying, returning goods and spending points, each as a sequence."""

    def __init__(self, plan: Plan, services: Services, publisher: Publisher, seed: int) -> None:
        self.plan = plan
        self.services = services
        self.publisher = publisher
        self.random = random.Random(seed)
        self.expected = model.Expected()
        self.run_id = uuid.uuid4().hex[:8]
        self.duplicates = 0
        self.redemptions_refused = 0

    async def run(self, faults: asyncio.Task[list[str]]) -> None:
        """At least `plan.members` journeys, and new ones until the last fault is over, so
        that every fault, the last one too, happens under load."""
        limit = asyncio.Semaphore(self.plan.concurrency)
        members = httpx.AsyncClient(base_url=self.services.url("member"), timeout=10)
        points = httpx.AsyncClient(base_url=self.services.url("points"), timeout=10)

        async def one(index: int) -> None:
            try:
                await self.member_journey(index, members, points)
            finally:
                limit.release()

        journeys: list[asyncio.Task[None]] = []
        try:
            while len(journeys) < self.plan.members or not faults.done():
                await limit.acquire()
                journeys.append(asyncio.create_task(one(len(journeys))))
            await asyncio.gather(*journeys)
        finally:
            await members.aclose()
            await points.aclose()

    async def member_journey(
        self, index: int, members: httpx.AsyncClient, points: httpx.AsyncClient
    ) -> None:
        rng = random.Random(self.random.random())
        external_id = f"chaos-{self.run_id}-{index}"
        response = await call(
            members,
            "POST",
            "/v1/members",
            (200, 201),
            json={"external_id": external_id, "email": f"{external_id}@chaos.example"},
            headers={**STOREFRONT, "Idempotency-Key": f"register-{external_id}"},
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"registering {external_id}: {response.status_code} {response.text}")
        member_id = uuid.UUID(response.json()["id"])
        self.expected.registered(member_id)
        orders: list[tuple[str, int]] = []
        for step in range(rng.randint(3, 9)):
            await asyncio.sleep(self.plan.pause)
            roll = rng.random()
            if roll < 0.6 or not orders:
                orders.append(await self.purchase(rng, member_id, f"{external_id}-o{step}"))
            elif roll < 0.8:
                order_id, left = rng.choice(orders)
                if left > 0:
                    amount = left if rng.random() < 0.5 else rng.randint(1, left)
                    await self.refund(member_id, order_id, f"{external_id}-r{step}", amount)
                    orders[orders.index((order_id, left))] = (order_id, left - amount)
            else:
                await self.redeem(points, member_id, rng.randint(20, 400), f"{external_id}-{step}")

    async def purchase(
        self, rng: random.Random, member_id: uuid.UUID, order_id: str
    ) -> tuple[str, int]:
        unit_price = rng.randint(500, 30_000)
        quantity = rng.randint(1, 3)
        payload = OrderPurchased(
            order_id=order_id,
            member_id=member_id,
            currency="EUR",
            total_minor=unit_price * quantity,
            lines=[
                {
                    "sku": f"sku-{rng.randint(1, 50)}",
                    "category": "grocery",
                    "quantity": quantity,
                    "unit_price_minor": unit_price,
                }
            ],
            channel="web",
        )
        await self.send(envelope(payload, member_id), rng)
        self.expected.purchased(order_id, member_id, payload.total_minor)
        return order_id, payload.total_minor

    async def refund(
        self, member_id: uuid.UUID, order_id: str, refund_id: str, amount: int
    ) -> None:
        payload = OrderRefunded(
            order_id=order_id, refund_id=refund_id, amount_minor=amount, currency="EUR"
        )
        await self.send(envelope(payload, member_id), random.Random(refund_id))
        self.expected.refunded(order_id, amount)

    async def send(self, event: Envelope, rng: random.Random) -> None:
        await self.publisher.publish(event)
        if rng.random() < 0.1:  # at-least-once upstream: the same event a second time
            await self.publisher.publish(event)
            self.duplicates += 1

    async def redeem(
        self, client: httpx.AsyncClient, member_id: uuid.UUID, wanted: int, key: str
    ) -> None:
        response = await call(
            client,
            "POST",
            f"/v1/members/{member_id}/redemptions",
            (201, 409),
            json={"points": wanted, "reference": f"checkout-{key}"},
            headers={**OPS, "Idempotency-Key": f"redeem-{key}"},
        )
        if response.status_code == 201:
            self.expected.redeemed(member_id, wanted)
        elif response.status_code == 409:
            self.redemptions_refused += 1  # not enough points (yet): nothing was spent
        else:
            raise RuntimeError(f"redeeming: {response.status_code} {response.text}")


async def inject_faults(services: Services, gap: float) -> list[str]:
    """Each service killed and restarted in turn, then the broker, then the database."""
    done = []
    for name in services.processes:
        await asyncio.sleep(gap)
        log(f"kill -9 {name}-svc")
        await services.kill(name)
        await asyncio.sleep(1)
        await services.start(name)
        done.append(f"{name}-svc killed (SIGKILL) and restarted")
    await asyncio.sleep(gap)
    log("restarting the Kafka broker")
    await infra("restart-kafka")
    done.append("Kafka broker restarted")
    await asyncio.sleep(gap)
    log("restarting PostgreSQL")
    await infra("restart-postgres")
    done.append("PostgreSQL restarted")
    return done


Check = Callable[[], Awaitable[list[str]]]


async def converge(checks: dict[str, Check], within: float) -> dict[str, list[str]]:
    """Poll every check until none reports a mismatch or time runs out; the last reports."""
    deadline = time.monotonic() + within
    while True:
        reports = {name: await check() for name, check in checks.items()}
        if not any(reports.values()) or time.monotonic() > deadline:
            return reports
        await asyncio.sleep(3)


def verification(
    expected: model.Expected,
    prefix: str,
    points: httpx.AsyncClient,
    tiers: httpx.AsyncClient,
    analytics: httpx.AsyncClient,
) -> dict[str, Check]:
    async def balances() -> list[str]:
        wrong = []
        for member_id in expected.members:
            body = (await points.get(f"/v1/members/{member_id}/balance")).json()
            want = expected.balance(member_id)
            redeemed = expected.members[member_id].redeemed
            if body.get("total") != want or body.get("lifetime_redeemed") != redeemed:
                wrong.append(
                    f"{member_id}: total {body.get('total')} want {want}, "
                    f"redeemed {body.get('lifetime_redeemed')} want {redeemed}"
                )
        return wrong

    async def member_tiers() -> list[str]:
        wrong = []
        for member_id, member in expected.members.items():
            response = await tiers.get(f"/v1/members/{member_id}/tier")
            got = (
                response.json().get("tier") if response.status_code == 200 else response.status_code
            )
            if got != member.tier:
                wrong.append(f"{member_id}: tier {got} want {member.tier}")
        return wrong

    async def kpis() -> list[str]:
        summary = (await analytics.get("/v1/kpis/summary", params={"window_days": 2})).json()
        want = {
            "orders": expected.net_orders,
            "revenue_minor": expected.net_revenue_minor,
            "member_revenue_minor": expected.net_revenue_minor,
            "gross_revenue_minor": expected.gross_revenue_minor,
            "refunded_minor": expected.refunded_minor,
            "points_redeemed": expected.points_redeemed,
            "new_members": len(expected.members),
        }
        wrong = [f"{k}: {summary.get(k)} want {v}" for k, v in want.items() if summary.get(k) != v]
        distribution = (await analytics.get("/v1/tiers/distribution")).json()
        seen = {row["tier"]: row["members"] for row in distribution.get("tiers", [])}
        want_tiers = dict(expected.tier_counts())
        if {k: v for k, v in seen.items() if v} != want_tiers:
            wrong.append(f"tier distribution {seen} want {want_tiers}")
        return wrong

    async def reconciliation() -> list[str]:
        body = (await points.get("/v1/ops/reconciliation")).json()
        return [] if body.get("accounts_with_violations") == 0 else [str(body)[:500]]

    async def published_once() -> list[str]:
        """points-svc's own events: one points.earned per order, one reversal per refund,
        whatever the relay re-sent (a re-send carries the same event id)."""
        earned: dict[str, set[uuid.UUID]] = defaultdict(set)
        reversed_: dict[str, set[uuid.UUID]] = defaultdict(set)
        for record in await read_topic(physical(POINTS, prefix), KAFKA_BOOTSTRAP):
            event = decode(record.value)
            order_id = getattr(event.payload, "order_id", None)
            if event.type == "points.earned" and order_id:
                earned[order_id].add(event.event_id)
            if event.type == "points.reversed":
                reversed_[event.payload.refund_id].add(event.event_id)  # type: ignore[attr-defined]
        wrong = [
            f"order {o}: {len(ids)} points.earned events"
            for o, ids in earned.items()
            if len(ids) != 1
        ]
        wrong += [
            f"refund {r}: {len(ids)} points.reversed"
            for r, ids in reversed_.items()
            if len(ids) > 1
        ]
        missing = [o for o, order in expected.orders.items() if order.earned and o not in earned]
        if missing:
            wrong.append(f"{len(missing)} orders without points.earned, e.g. {missing[:3]}")
        return wrong

    async def dead_letters() -> list[str]:
        wrong = []
        for service in SERVICES:
            records = await read_topic(physical(dlq_topic(service), prefix), KAFKA_BOOTSTRAP)
            if records:
                wrong.append(f"{service}: {len(records)} dead letters")
        return wrong

    return {
        "points balances": balances,
        "member tiers": member_tiers,
        "analytics KPIs": kpis,
        "points reconciliation": reconciliation,
        "points events, one per cause": published_once,
        "dead-letter queues empty": dead_letters,
    }


async def install_ladder(services: Services) -> None:
    ladder = {
        "revoke_on_refund": False,
        "tiers": [
            {"code": code, "name": code.title(), "rank": rank, "threshold": threshold}
            for rank, (code, threshold) in enumerate(model.CHAOS_LADDER)
        ],
    }
    async with httpx.AsyncClient(base_url=services.url("tier"), headers=OPS) as client:
        response = await client.put("/v1/tiers", json=ladder)
        if response.status_code != 200:
            raise RuntimeError(
                f"installing the chaos ladder: {response.status_code} {response.text}"
            )


async def main(plan: Plan, seed: int) -> int:
    started = time.monotonic()
    await infra("up")
    await fresh_databases()
    prefix = f"chaos{int(time.time())}."
    services = Services(prefix)
    publisher = Publisher(prefix)
    try:
        for name in ("member", "points", "tier", "campaign", "analytics"):
            await services.start(name)
        await install_ladder(services)
        await publisher.producer.start()
        workload = Workload(plan, services, publisher, seed)
        log(f"workload: {plan.members} members; faults begin")
        faults = asyncio.create_task(inject_faults(services, gap=4))
        await workload.run(faults)
        injected = await faults
        log(f"workload done after {time.monotonic() - started:.0f}s; waiting for convergence")
        async with (
            httpx.AsyncClient(base_url=services.url("points"), headers=OPS, timeout=30) as points,
            httpx.AsyncClient(base_url=services.url("tier"), headers=OPS, timeout=30) as tiers,
            httpx.AsyncClient(
                base_url=services.url("analytics"), headers=OPS, timeout=30
            ) as analytics,
        ):
            checks = verification(workload.expected, prefix, points, tiers, analytics)
            reports = await converge(checks, plan.settle)
    finally:
        await publisher.producer.stop()
        await services.stop_all()
        await infra("down")
    expected = workload.expected
    print()
    print(f"faults: {'; '.join(injected)}")
    print(
        f"workload: {len(expected.members)} members, {len(expected.orders)} purchases, "
        f"{expected.refunds} refunds, {expected.points_redeemed} points redeemed "
        f"({workload.redemptions_refused} redemptions refused for balance), "
        f"{workload.duplicates} events published twice on purpose"
    )
    for name, wrong in reports.items():
        print(
            f"  {'ok  ' if not wrong else 'FAIL'} {name}"
            + (f": {len(wrong)} mismatches" if wrong else "")
        )
        for line in wrong[:10]:
            print(f"         {line}")
    print(f"chaos run took {time.monotonic() - started:.0f}s")
    return 1 if any(reports.values()) else 0


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI form: fewer members")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # The run's own Kafka clients report each failed reconnect while the broker restarts.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    quiet_repeated_kafka_errors()
    return asyncio.run(main(SHORT if args.short else FULL, args.seed))


if __name__ == "__main__":
    sys.exit(cli())

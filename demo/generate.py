"""A deterministic demo programme: who joins when, what they buy, refund, do and say.

Pure: a seed and a clock in, plain values out. Purchases follow a buy-till-you-die
process (each member buys at their own rate until they silently drop out), so the CLV
models and churn-risk scoring have something real to find.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Eva",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jon",
    "Kavya",
    "Lukas",
    "Maya",
    "Nils",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST_NAMES = [
    "Almeida",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Müller",
    "Novak",
    "Olsen",
    "Petrov",
]
TIME_ZONES = [
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
]
CATALOGUE = [  # sku, category, unit price in minor units
    ("COF-ESP", "coffee", 350),
    ("COF-LAT", "coffee", 450),
    ("BAK-CRO", "bakery", 290),
    ("BAK-CAK", "bakery", 520),
    ("MER-MUG", "merchandise", 1900),
    ("MER-BAG", "merchandise", 4900),
    ("BEA-1KG", "beans", 2400),
    ("GFT-025", "gift_card", 2500),
    ("EQP-GRN", "equipment", 12900),
]
CHANNELS = ["app", "web", "store"]
ACTIVITY_KINDS = ["login", "visit", "review", "share"]


@dataclass(frozen=True)
class DemoMember:
    ref: int
    registration: dict[str, Any]
    joined_at: datetime


@dataclass(frozen=True)
class DemoOrder:
    member_ref: int | None  # None: a guest order
    order_id: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class DemoRefund:
    member_ref: int | None
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass
class DemoData:
    members: list[DemoMember] = field(default_factory=list)
    orders: list[DemoOrder] = field(default_factory=list)
    refunds: list[DemoRefund] = field(default_factory=list)
    activities: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    feedback: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def generate(seed: int, members: int, days: int, now: datetime, batch: str = "demo") -> DemoData:
    """`members` members joining over `days` days before `now`, with their behaviour."""
    rng = random.Random(seed)
    data = DemoData()
    start = now - timedelta(days=days)
    for ref in range(members):
        joined = start + timedelta(seconds=rng.uniform(0, days * 86400 * 0.9))
        member = _member(rng, ref, joined, now, batch)
        data.members.append(member)
        _behaviour(rng, data, member, now, batch)
    for index in range(members // 3):  # guest orders count in member share of sales
        occurred = start + timedelta(seconds=rng.uniform(0, days * 86400))
        data.orders.append(_order(rng, None, f"{batch}-guest-{index}", occurred))
    data.orders.sort(key=lambda order: order.occurred_at)
    data.refunds.sort(key=lambda refund: refund.occurred_at)
    return data


def _member(
    rng: random.Random, ref: int, joined: datetime, now: datetime, batch: str
) -> DemoMember:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
    if ref % 50 == 0:  # a few birthdays today, so the birthday campaign has work
        birthday = date(rng.randint(1960, 2000), now.month, min(now.day, 28))
    registration = {
        "external_id": f"{batch}-{ref:06d}",
        "email": f"{first.lower()}.{last.lower()}.{batch}.{ref}@example.com".replace("é", "e")
        .replace("í", "i")
        .replace("ü", "u"),
        "phone": f"+49151{rng.randint(10000000, 99999999)}",
        "first_name": first,
        "last_name": last,
        "birthday": birthday.isoformat(),
        "time_zone": rng.choice(TIME_ZONES),
        "consents": {
            "email": rng.random() < 0.7,
            "sms": rng.random() < 0.3,
            "push": rng.random() < 0.5,
        },
        "attributes": {"preferred_channel": rng.choice(CHANNELS)},
        "joined_at": joined.isoformat(),
    }
    return DemoMember(ref=ref, registration=registration, joined_at=joined)


def _behaviour(
    rng: random.Random, data: DemoData, member: DemoMember, now: datetime, batch: str
) -> None:
    rate_per_day = rng.gammavariate(0.8, 1 / 12)  # heterogeneous purchase rates (NBD)
    dropout = rng.betavariate(0.8, 6)  # chance to drop out after each purchase (BG)
    moment = member.joined_at
    count = 0
    while True:
        if rate_per_day <= 0:
            break
        moment += timedelta(days=rng.expovariate(rate_per_day))
        if moment >= now:
            break
        order = _order(rng, member.ref, f"{batch}-{member.ref}-{count}", moment)
        data.orders.append(order)
        count += 1
        if rng.random() < 0.05:
            _refund(rng, data, order, now)
        if rng.random() < 0.3:
            kind = rng.choice(ACTIVITY_KINDS)
            data.activities.append(
                (
                    member.ref,
                    {
                        "kind": kind,
                        "channel": rng.choice(CHANNELS),
                        "occurred_at": (moment + timedelta(minutes=5)).isoformat(),
                    },
                )
            )
        if rng.random() < dropout:
            break
    if rng.random() < 0.35:
        score = min(10, max(0, round(rng.gauss(7.6 if count > 2 else 6.0, 2.2))))
        data.feedback.append((member.ref, {"nps_score": score}))


def _order(
    rng: random.Random, member_ref: int | None, order_id: str, occurred: datetime
) -> DemoOrder:
    lines: list[dict[str, Any]] = []
    total = 0
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        sku, category, price = rng.choice(CATALOGUE)
        quantity = rng.choice([1, 1, 2])
        lines.append(
            {"sku": sku, "category": category, "quantity": quantity, "unit_price_minor": price}
        )
        total += quantity * price
    payload = {
        "order_id": order_id,
        "currency": "EUR",
        "total_minor": total,
        "lines": lines,
        "channel": rng.choice(CHANNELS),
        "store_id": f"store-{rng.randint(1, 12):02d}",
    }
    return DemoOrder(
        member_ref=member_ref, order_id=order_id, occurred_at=occurred, payload=payload
    )


def _refund(rng: random.Random, data: DemoData, order: DemoOrder, now: datetime) -> None:
    occurred = min(
        order.occurred_at + timedelta(days=rng.uniform(1, 20)), now - timedelta(minutes=1)
    )
    full = rng.random() < 0.5
    amount = order.payload["total_minor"] if full else max(1, order.payload["total_minor"] // 3)
    data.refunds.append(
        DemoRefund(
            member_ref=order.member_ref,
            occurred_at=occurred,
            payload={
                "order_id": order.order_id,
                "refund_id": f"{order.order_id}-r",
                "amount_minor": amount,
                "currency": "EUR",
            },
        )
    )

"""The event contract: every type round-trips; bad records are rejected with the reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from memberflow_events import schemas
from memberflow_events.codec import InvalidEvent, decode, encode
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.payloads import ALL_PAYLOADS, MemberFeedback, OrderPurchased, PointsAdjusted
from memberflow_events.registry import PAYLOAD_MODELS, topic_of, types_on

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
MEMBER = uuid.uuid4()

EXAMPLES: dict[str, dict[str, Any]] = {
    "order.purchased": {
        "order_id": "o-1",
        "member_id": str(MEMBER),
        "currency": "EUR",
        "total_minor": 2500,
        "lines": [{"sku": "s", "category": "shoes", "quantity": 1, "unit_price_minor": 2500}],
        "channel": "web",
    },
    "order.refunded": {"order_id": "o-1", "refund_id": "r-1", "amount_minor": 500},
    "member.registered": {
        "birth_month": 2,
        "birth_day": 29,
        "time_zone": "Europe/Paris",
        "consents": {"email": True},
    },
    "member.updated": {"time_zone": "Asia/Tokyo"},
    "member.erased": {},
    "member.activity": {"kind": "login"},
    "member.feedback": {"nps_score": 9},
    "points.earned": {
        "lot_id": str(uuid.uuid4()),
        "points": 25,
        "source": "order",
        "order_id": "o-1",
        "multiplier": "1.25",
        "available_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(days=365)).isoformat(),
    },
    "points.released": {"lot_id": str(uuid.uuid4()), "points": 25},
    "points.redeemed": {"redemption_id": str(uuid.uuid4()), "points": 10},
    "points.reversed": {"order_id": "o-1", "refund_id": "r-1", "points": 5, "debt_points": 2},
    "points.expired": {"lot_id": str(uuid.uuid4()), "points": 3},
    "points.adjusted": {"points": -4, "actor": "ops:ana", "reason": "duplicate credit"},
    "points.expiring": {"points": 30, "expires_on": "2026-12-01"},
    "tier.changed": {
        "from_tier": "silver",
        "to_tier": "gold",
        "direction": "upgrade",
        "reason": "threshold reached",
        "qualifying_value": 500000,
        "multiplier": "1.5",
    },
    "coupon.issued": {
        "coupon_id": str(uuid.uuid4()),
        "campaign_id": str(uuid.uuid4()),
        "code": "ABCD-EFGH-JKLM",
        "kind": "percent",
        "value": 20,
        "valid_from": NOW.isoformat(),
        "valid_until": (NOW + timedelta(days=30)).isoformat(),
    },
    "coupon.redeemed": {
        "coupon_id": str(uuid.uuid4()),
        "campaign_id": str(uuid.uuid4()),
        "discount_minor": 500,
    },
    "bonus.awarded": {
        "award_id": str(uuid.uuid4()),
        "campaign_id": str(uuid.uuid4()),
        "points": 100,
        "reason": "welcome",
    },
    "message.requested": {
        "campaign_id": str(uuid.uuid4()),
        "channel": "email",
        "template": "welcome",
    },
    "campaign.exposed": {
        "campaign_id": str(uuid.uuid4()),
        "group": "control",
        "trigger": "member.registered",
    },
    "member.churn_risk": {"score": 0.8, "reason": "p_alive below 0.3", "p_alive": 0.2},
    "member.segment_changed": {
        "rfm_segment": "Champions",
        "recency_score": 5,
        "frequency_score": 5,
        "monetary_score": 4,
    },
}


def test_every_registered_type_has_an_example() -> None:
    assert {model.event_type for model in ALL_PAYLOADS} == set(EXAMPLES)
    assert len(PAYLOAD_MODELS) == len(ALL_PAYLOADS)


@pytest.mark.parametrize("model", ALL_PAYLOADS, ids=lambda model: model.event_type)
def test_every_type_round_trips(model: type[EventPayload]) -> None:
    event = new_event(
        model.model_validate(EXAMPLES[model.event_type]),
        producer="test",
        member_id=MEMBER,
        occurred_at=NOW,
    )
    assert decode(encode(event)) == event
    assert topic_of(event.type) == model.topic
    assert event.type in types_on(model.topic)


def _record(**changes: Any) -> bytes:
    event = new_event(MemberFeedback(nps_score=7), producer="t", member_id=MEMBER, occurred_at=NOW)
    document = json.loads(encode(event))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "record has no value"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_record(type="member.exploded"), "unknown event type 'member.exploded'"),
        (_record(version=2), "unsupported version 2 of member.feedback (supported: [1])"),
        (_record(version="1"), "field 'version' is missing or not an integer"),
        (_record(payload={"nps_score": 11}), "member.feedback v1: payload.nps_score"),
        (_record(payload={"nps_score": 5, "mood": "x"}), "mood: Extra inputs are not permitted"),
        (
            _record(occurred_at="2026-11-01T12:00:00"),
            "occurred_at: Input should have timezone info",
        ),
        (_record(extra="x"), "envelope: unknown fields ['extra']"),
        (_record(event_id="nope"), "event_id"),
    ],
)
def test_invalid_records_are_rejected_with_the_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert reason in caught.value.reason


def test_payload_and_envelope_must_name_the_same_member() -> None:
    purchase = OrderPurchased.model_validate(EXAMPLES["order.purchased"])
    with pytest.raises(ValueError, match="different members"):
        new_event(purchase, producer="t", member_id=uuid.uuid4(), occurred_at=NOW)


def test_guest_orders_are_keyed_by_order_id() -> None:
    guest = OrderPurchased.model_validate({**EXAMPLES["order.purchased"], "member_id": None})
    event = new_event(guest, producer="order-system:pos", member_id=None, occurred_at=NOW)
    assert event.key == "o-1"


def test_events_are_stamped_in_utc_and_chain_correlation() -> None:
    local = datetime(2026, 11, 1, 14, tzinfo=UTC).astimezone()
    event = new_event(
        MemberFeedback(nps_score=3), producer="t", member_id=MEMBER, occurred_at=local
    )
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.correlation_id == event.event_id
    assert event.causation_id is None


def test_zero_adjustment_is_rejected() -> None:
    with pytest.raises(ValueError, match="must not be zero"):
        PointsAdjusted(points=0, actor="ops", reason="x")


def test_generated_event_docs_are_current() -> None:
    stale = schemas.stale_files(ROOT / "docs" / "events")
    assert not stale, f"run `make schemas`: {stale}"


def test_envelope_schema_lists_the_contract_fields() -> None:
    schema = schemas.event_schema(OrderPurchased)
    assert set(schema["required"]) == set(Envelope.model_fields)
    assert schema["properties"]["type"] == {"const": "order.purchased", "type": "string"}

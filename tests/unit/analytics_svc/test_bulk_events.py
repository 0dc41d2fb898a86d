"""bulk_events renders exactly the events new_event + encode would (ids aside)."""

from __future__ import annotations

import json
import os
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import numpy as np
import pytest
from analytics_svc import bulk_events
from analytics_svc.bulk_events import member_strings, outbox_rows, uuid7_strings
from memberflow_events.codec import decode, encode
from memberflow_events.envelope import Envelope, new_event
from memberflow_events.ids import uuid7
from memberflow_events.payloads import MemberChurnRisk, MemberSegmentChanged

NOW = datetime(2026, 5, 17, 3, 0, tzinfo=UTC)


def _segment(fields: Hashable) -> MemberSegmentChanged:
    segment, previous = cast(tuple[str, str | None], fields)
    return MemberSegmentChanged(
        rfm_segment=segment,
        previous_segment=previous,
        recency_score=3,
        frequency_score=4,
        monetary_score=5,
        scored_at=NOW,
    )


def test_rows_decode_to_the_events_new_event_makes() -> None:
    members = [str(UUID(int=k + 1, version=4)) for k in range(3)]
    fields = [("Champions", None), ("Loyal", "Champions"), ("Champions", None)]
    rows = outbox_rows(
        zip(members, fields, strict=True), _segment, producer="analytics-svc", occurred_at=NOW
    )
    assert rows is not None
    assert (rows.topic, rows.event_type, rows.event_version) == (
        "analytics",
        "member.segment_changed",
        1,
    )
    assert rows.keys == members
    assert len(set(rows.event_ids)) == 3
    for k, value in enumerate(rows.values):
        event = decode(value)
        assert str(event.event_id) == rows.event_ids[k]
        assert event.correlation_id == event.event_id
        assert str(event.member_id) == members[k]
        expected = new_event(
            _segment(fields[k]),
            producer="analytics-svc",
            member_id=UUID(members[k]),
            occurred_at=NOW,
        )
        same_ids = expected.model_copy(
            update={"event_id": event.event_id, "correlation_id": event.event_id}
        )
        assert value == encode(same_ids)


def test_an_envelope_of_another_shape_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def another_correlation(event: Envelope) -> bytes:
        return encode(event.model_copy(update={"correlation_id": UUID(int=7, version=4)}))

    monkeypatch.setattr(bulk_events, "encode", another_correlation)
    with pytest.raises(ValueError, match=r"cannot template the envelope of member\.segment_"):
        outbox_rows(
            [(str(UUID(int=1, version=4)), ("Champions", None))],
            _segment,
            producer="analytics-svc",
            occurred_at=NOW,
        )


def test_payloads_with_floats_and_nulls() -> None:
    def risk(j: Hashable) -> MemberChurnRisk:
        k = cast(int, j)
        return MemberChurnRisk(score=0.25 * k, reason="p_alive", p_alive=None if k else 0.5)

    rows = outbox_rows(
        [(str(UUID(int=9, version=4)), 0), (str(UUID(int=10, version=4)), 3)],
        risk,
        producer="analytics-svc",
        occurred_at=NOW,
    )
    assert rows is not None
    payloads = [json.loads(v)["payload"] for v in rows.values]
    assert payloads == [
        {"score": 0.0, "reason": "p_alive", "p_alive": 0.5},
        {"score": 0.75, "reason": "p_alive", "p_alive": None},
    ]


def test_nothing_to_emit() -> None:
    assert outbox_rows([], _segment, producer="analytics-svc", occurred_at=NOW) is None


def test_ids() -> None:
    before = uuid7()
    ids = [UUID(s) for s in uuid7_strings(1000)]
    after = uuid7()
    # Strictly increasing, between the process's ids made before and after: the order of
    # memberflow_events.ids, and the outbox's event id index grows at its right edge.
    assert [before, *ids, after] == sorted({before, *ids, after})
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}
    raw = np.frombuffer(b"".join(i.bytes for i in ids[:5]), dtype="V16")
    assert member_strings(raw) == [str(i) for i in ids[:5]]


def test_ids_stay_distinct_when_the_random_bits_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[int] = []
    real_urandom = os.urandom

    def urandom(size: int) -> bytes:
        draws.append(size)
        return bytes(size) if len(draws) == 1 else real_urandom(size)

    monkeypatch.setattr(os, "urandom", urandom)
    made = uuid7_strings(100)
    assert draws == [800, 99 * 8]  # 100 equal draws keep one; 99 more are drawn
    assert made == sorted(set(made))
    assert len(made) == 100

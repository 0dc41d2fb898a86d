"""Many events of one type for the outbox at once: a refit's million segment changes.

`new_event` + `encode` + `add_to_outbox` cost about 60 µs per event (pydantic builds and
validates every envelope, SQLAlchemy binds every row): a first scoring of 1,000,000
members spent about a minute there. Here the envelope of a batch is rendered by pydantic
once — a prototype event whose ids are then cut out, leaving a template — and each event
is that template filled with its own event id and member id and its payload; the payload
is still a validated payload model serialised by pydantic (identical payloads, frequent
for segment changes, are serialised once). The result is byte-for-byte what `encode`
gives for the same event; `repository.append_outbox` writes the rows with one COPY.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from memberflow_events import ids
from memberflow_events.codec import encode
from memberflow_events.envelope import EventPayload, new_event

_NIL_MEMBER = UUID("00000000-0000-4000-8000-000000000000")


@dataclass(frozen=True, slots=True)
class OutboxRows:
    """Outbox rows of one event type (columns of `repository.append_outbox`)."""

    topic: str
    event_type: str
    event_version: int
    event_ids: list[str]
    keys: list[str]
    values: list[bytes]

    def __len__(self) -> int:
        return len(self.event_ids)


def uuid7_strings(n: int) -> list[str]:
    """`n` distinct RFC 9562 version-7 ids (canonical strings) for events created now, in
    increasing order.

    All share the upper 64 bits of one `memberflow_events.ids` tick, so they keep that
    module's order: after every id the process made before, before every id it makes
    after. Below them, the variant and 62 random bits, sorted: the outbox's unique index
    on event ids then grows at its right edge instead of at a random page per row
    (a COPY of 1,440,000 events took 6 s instead of 10–14 s).
    """
    low = np.empty(0, dtype=np.uint64)
    while low.size < n:  # a repeat among 62 random bits is unlikely, never impossible
        drawn = np.frombuffer(os.urandom(8 * (n - low.size)), dtype=np.uint64)
        low = np.sort(np.concatenate([low, drawn & np.uint64(ids.RANDOM_MASK)]))
        low = low[np.concatenate([[True], low[1:] != low[:-1]])]
    raw = np.empty((n, 2), dtype=">u8")
    raw[:, 0] = ids.uuid7_upper_bits()
    raw[:, 1] = low | np.uint64(ids.VARIANT_BITS)
    return member_strings(raw)


def member_strings(raw: np.ndarray[Any, Any]) -> list[str]:
    """Canonical uuid strings of 16-byte ids (as `str(UUID(bytes=...))` gives them), from
    an array holding them back to back."""
    hexes = np.ascontiguousarray(raw).tobytes().hex()
    return [
        f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        for h in (hexes[i : i + 32] for i in range(0, len(hexes), 32))
    ]


def _template(prototype: EventPayload, producer: str, occurred_at: datetime) -> list[str]:
    """The envelope JSON of one event cut where its event id, member id, correlation id
    (the event id again) and payload go, in that order: the five literal parts around
    them. Concatenating the parts with an event's values takes half the time of
    str.format (1,000,000 events: 0.5 s against 1.05 s)."""
    event = new_event(prototype, producer=producer, member_id=_NIL_MEMBER, occurred_at=occurred_at)
    text = encode(event).decode()
    cuts = [
        (prototype.model_dump_json(), "\x00p\x00"),
        (str(event.event_id), "\x00e\x00"),
        (str(_NIL_MEMBER), "\x00m\x00"),
    ]
    for value, marker in cuts:
        text = text.replace(value, marker)
    parts = re.split("\x00([emp])\x00", text)
    if parts[1::2] != ["e", "m", "e", "p"]:
        raise ValueError(f"cannot template the envelope of {prototype.event_type}")
    return parts[0::2]


def outbox_rows(
    payloads: Iterable[tuple[str, Hashable]],
    build: Callable[[Hashable], EventPayload],
    *,
    producer: str,
    occurred_at: datetime,
) -> OutboxRows | None:
    """Outbox rows for (member id, payload fields) pairs, all of one payload type.

    `build(fields)` makes the payload model for a member's fields (validated as always);
    equal fields are built and serialised once. None when there is nothing to emit.
    """
    members: list[str] = []
    bodies: list[str] = []
    rendered: dict[Hashable, str] = {}
    first: EventPayload | None = None
    for member, fields in payloads:
        body = rendered.get(fields)
        if body is None:
            payload = build(fields)
            first = first or payload
            body = rendered[fields] = payload.model_dump_json()
        members.append(member)
        bodies.append(body)
    if first is None:
        return None
    a, b, c, d, z = _template(first, producer, occurred_at)
    event_ids = uuid7_strings(len(members))
    values = [
        (a + e + b + m + c + e + d + p + z).encode()
        for e, m, p in zip(event_ids, members, bodies, strict=True)
    ]
    return OutboxRows(
        topic=first.topic,
        event_type=first.event_type,
        event_version=first.event_version,
        event_ids=event_ids,
        keys=members,
        values=values,
    )

"""Events → rows of the append-only fact tables. Pure: no I/O, no clock.

The live consumer and the replay (rebuild) both go through `facts_of`, so a rebuilt
projection holds exactly the rows the live one did. Values stay in their wire form
(ids and times as strings) and PostgreSQL casts them; this keeps the replay path free of
per-event pydantic work (see rebuild.py).

Every row is keyed by the event's own identity (event_id, order_id, refund_id or
member_id), so applying an event twice is a no-op, and no row depends on another event
having arrived first: a refund before its purchase is just a refund row until the
purchase row joins it at query time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from memberflow_events.envelope import Envelope

Row = tuple[Any, ...]


class RawEvent(NamedTuple):
    """The fields of an event the projections use, in wire form (a tuple: cheap to make)."""

    event_id: str
    type: str
    occurred_at: str
    member_id: str | None
    payload: Mapping[str, Any]

    @classmethod
    def of(cls, event: Envelope) -> RawEvent:
        """From a decoded event: its JSON form, exactly what replay reads from the record."""
        document = event.model_dump(mode="json")
        return cls(
            event_id=document["event_id"],
            type=document["type"],
            occurred_at=document["occurred_at"],
            member_id=document["member_id"],
            payload=document["payload"],
        )


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: a cheap dict key
class FactTable:
    """A fact table: its columns, their SQL types, the conflict key and how to merge."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    key: tuple[str, ...]
    # Columns merged on conflict with LEAST (earliest wins); empty means DO NOTHING.
    least: tuple[str, ...] = ()


PURCHASES = FactTable(
    "fact_purchases",
    ("order_id", "event_id", "member_id", "occurred_at", "total_minor", "currency", "channel"),
    ("text", "uuid", "uuid", "timestamptz", "bigint", "text", "text"),
    ("order_id",),
)
REFUNDS = FactTable(
    "fact_refunds",
    ("refund_id", "event_id", "order_id", "member_id", "occurred_at", "amount_minor"),
    ("text", "uuid", "text", "uuid", "timestamptz", "bigint"),
    ("refund_id",),
)
REGISTRATIONS = FactTable(
    "fact_registrations",
    ("member_id", "event_id", "registered_at"),
    ("uuid", "uuid", "timestamptz"),
    ("member_id",),
    least=("registered_at",),
)
ERASURES = FactTable(
    "fact_erasures",
    ("member_id", "event_id", "erased_at"),
    ("uuid", "uuid", "timestamptz"),
    ("member_id",),
    least=("erased_at",),
)
ACTIVITIES = FactTable(
    "fact_activities",
    ("event_id", "member_id", "occurred_at", "kind"),
    ("uuid", "uuid", "timestamptz", "text"),
    ("event_id",),
)
FEEDBACK = FactTable(
    "fact_feedback",
    ("event_id", "member_id", "occurred_at", "nps_score"),
    ("uuid", "uuid", "timestamptz", "smallint"),
    ("event_id",),
)
POINTS = FactTable(
    "fact_points",
    (
        "event_id",
        "member_id",
        "occurred_at",
        "kind",
        "points",
        "delta",
        "lot_points",
        "lot_id",
        "available_at",
    ),
    ("uuid", "uuid", "timestamptz", "text", "bigint", "bigint", "bigint", "uuid", "timestamptz"),
    ("event_id",),
)
TIER_CHANGES = FactTable(
    "fact_tier_changes",
    ("event_id", "member_id", "occurred_at", "from_tier", "to_tier", "direction"),
    ("uuid", "uuid", "timestamptz", "text", "text", "text"),
    ("event_id",),
)
EXPOSURES = FactTable(
    "fact_exposures",
    ("event_id", "campaign_id", "member_id", "exposure_group", "occurred_at"),
    ("uuid", "uuid", "uuid", "text", "timestamptz"),
    ("event_id",),
)

FACT_TABLES: tuple[FactTable, ...] = (
    PURCHASES,
    REFUNDS,
    REGISTRATIONS,
    ERASURES,
    ACTIVITIES,
    FEEDBACK,
    POINTS,
    TIER_CHANGES,
    EXPOSURES,
)


@dataclass(slots=True)
class FactBatch:
    """Rows per table. Rows of first-seen (LEAST) tables are merged per key here, since one
    INSERT … ON CONFLICT DO UPDATE may not touch a row twice; the others may repeat a key
    (DO NOTHING skips the copy)."""

    rows: dict[FactTable, list[Row]] = field(default_factory=dict)
    merged: dict[FactTable, dict[Any, Row]] = field(default_factory=dict)
    events: int = 0

    def add(self, table: FactTable, row: Row) -> None:
        if not table.least:
            self.rows.setdefault(table, []).append(row)
            return
        keyed = self.merged.setdefault(table, {})
        key = row[_KEY_INDEX[table.name][0]]
        seen = keyed.get(key)
        keyed[key] = row if seen is None else min(seen, row, key=lambda r: _instant(r, table))

    def extend(self, event: RawEvent) -> None:
        extract = FACTS.get(event.type)
        if extract is not None:
            for table, row in extract(event):
                self.add(table, row)
        self.events += 1

    def tables(self) -> list[tuple[FactTable, list[Row]]]:
        """Every table with rows, and its rows."""
        out = [(table, rows) for table, rows in self.rows.items() if rows]
        out += [(table, list(keyed.values())) for table, keyed in self.merged.items() if keyed]
        return out

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.tables())


_KEY_INDEX: dict[str, tuple[int, ...]] = {
    table.name: tuple(table.columns.index(column) for column in table.key) for table in FACT_TABLES
}


def _instant(row: Row, table: FactTable) -> float:
    """The merged (LEAST) column as an instant: strings with offsets compare wrongly."""
    value = row[table.columns.index(table.least[0])]
    return datetime.fromisoformat(str(value)).timestamp()


def _purchase(e: RawEvent) -> list[tuple[FactTable, Row]]:
    p = e.payload
    return [
        (
            PURCHASES,
            (
                p["order_id"],
                e.event_id,
                e.member_id,
                e.occurred_at,
                int(p["total_minor"]),
                p["currency"],
                p["channel"],
            ),
        )
    ]


def _refund(e: RawEvent) -> list[tuple[FactTable, Row]]:
    p = e.payload
    row = (p["refund_id"], e.event_id, p["order_id"], e.member_id, e.occurred_at)
    return [(REFUNDS, (*row, int(p["amount_minor"])))]


def _registered(e: RawEvent) -> list[tuple[FactTable, Row]]:
    return [(REGISTRATIONS, (e.member_id, e.event_id, e.occurred_at))] if e.member_id else []


def _erased(e: RawEvent) -> list[tuple[FactTable, Row]]:
    return [(ERASURES, (e.member_id, e.event_id, e.occurred_at))] if e.member_id else []


def _activity(e: RawEvent) -> list[tuple[FactTable, Row]]:
    if not e.member_id:
        return []
    return [(ACTIVITIES, (e.event_id, e.member_id, e.occurred_at, e.payload["kind"]))]


def _feedback(e: RawEvent) -> list[tuple[FactTable, Row]]:
    if not e.member_id:
        return []
    row = (e.event_id, e.member_id, e.occurred_at, int(e.payload["nps_score"]))
    return [(FEEDBACK, row)]


def _points(kind: str, sign: int) -> Callable[[RawEvent], list[tuple[FactTable, Row]]]:
    def facts(e: RawEvent) -> list[tuple[FactTable, Row]]:
        p = e.payload
        points = int(p["points"])
        lot_points = points - int(p.get("debt_repaid") or 0) if kind == "earned" else 0
        row = (
            e.event_id,
            e.member_id,
            e.occurred_at,
            kind,
            points,
            sign * points,
            lot_points,
            p.get("lot_id"),
            p.get("available_at") if kind == "earned" else None,
        )
        return [(POINTS, row)]

    return facts


def _tier_changed(e: RawEvent) -> list[tuple[FactTable, Row]]:
    if not e.member_id:
        return []
    p = e.payload
    row = (e.event_id, e.member_id, e.occurred_at, p.get("from_tier"), p["to_tier"])
    return [(TIER_CHANGES, (*row, p["direction"]))]


def _exposed(e: RawEvent) -> list[tuple[FactTable, Row]]:
    if not e.member_id:
        return []
    p = e.payload
    row = (e.event_id, p["campaign_id"], e.member_id, p["group"], e.occurred_at)
    return [(EXPOSURES, row)]


FACTS: dict[str, Callable[[RawEvent], list[tuple[FactTable, Row]]]] = {
    "order.purchased": _purchase,
    "order.refunded": _refund,
    "member.registered": _registered,
    "member.erased": _erased,
    "member.activity": _activity,
    "member.feedback": _feedback,
    "points.earned": _points("earned", 1),
    "points.released": _points("released", 0),
    "points.redeemed": _points("redeemed", -1),
    "points.reversed": _points("reversed", -1),
    "points.expired": _points("expired", -1),
    "points.adjusted": _points("adjusted", 1),
    "tier.changed": _tier_changed,
    "campaign.exposed": _exposed,
}
PROJECTED_TYPES: Sequence[str] = tuple(FACTS)


def facts_of(event: RawEvent) -> list[tuple[FactTable, Row]]:
    """The fact rows one event contributes (none for types no projection needs)."""
    extract = FACTS.get(event.type)
    return [] if extract is None else extract(event)

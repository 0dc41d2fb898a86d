"""Which payload model reads which (type, version), and on which topic each type travels."""

from __future__ import annotations

from memberflow_events.envelope import EventPayload
from memberflow_events.payloads import ALL_PAYLOADS

PAYLOAD_MODELS: dict[tuple[str, int], type[EventPayload]] = {
    (model.event_type, model.event_version): model for model in ALL_PAYLOADS
}
"""Older versions stay here for one release after a bump (DESIGN.md §2, compatibility)."""


def supported_versions(event_type: str) -> list[int]:
    return sorted(version for (type_, version) in PAYLOAD_MODELS if type_ == event_type)


def topic_of(event_type: str) -> str:
    for (type_, _), model in PAYLOAD_MODELS.items():
        if type_ == event_type:
            return model.topic
    raise KeyError(f"unknown event type {event_type!r}")


def types_on(topic: str) -> list[str]:
    return sorted({type_ for (type_, _), model in PAYLOAD_MODELS.items() if model.topic == topic})

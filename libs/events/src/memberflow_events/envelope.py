"""The envelope every event travels in (DESIGN.md §2)."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    field_validator,
    model_validator,
)

from memberflow_events.ids import uuid7


class EventPayload(BaseModel):
    """Base of every payload model; subclasses declare their type, version and topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1
    topic: ClassVar[str]
    description: ClassVar[str] = ""
    # Whether the payload has a member_id of its own, which must match the envelope's.
    names_member: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.names_member = "member_id" in cls.__pydantic_fields__


P = TypeVar("P", bound=EventPayload)


class Envelope(BaseModel):
    """An event: metadata shared by all types plus the type's own payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=100)
    member_id: UUID | None
    correlation_id: UUID
    causation_id: UUID | None
    payload: SerializeAsAny[EventPayload]

    @model_validator(mode="after")
    def _one_member(self) -> Envelope:
        if not self.payload.names_member:
            return self
        inner: Any = self.payload.__dict__.get("member_id")
        if inner is not None and inner != self.member_id:
            raise ValueError("member_id: payload and envelope name different members")
        return self

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def payload_as(self, model: builtins.type[P]) -> P:
        """The payload as the model a handler expects (handlers are registered per type)."""
        if not isinstance(self.payload, model):
            raise TypeError(f"event {self.type} carries {type(self.payload).__name__}")
        return self.payload

    @property
    def key(self) -> str:
        """Kafka record key: the member, or for member-less events the payload's order id."""
        if self.member_id is not None:
            return str(self.member_id)
        order_id: Any = self.payload.__dict__.get("order_id")
        return str(order_id) if order_id is not None else str(self.event_id)


def new_event(
    payload: EventPayload,
    *,
    producer: str,
    member_id: UUID | None,
    occurred_at: datetime,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> Envelope:
    """Wrap a payload; a new chain starts when no correlation id is given."""
    event_id = uuid7()
    return Envelope(
        event_id=event_id,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at,
        producer=producer,
        member_id=member_id,
        correlation_id=correlation_id or event_id,
        causation_id=causation_id,
        payload=payload,
    )

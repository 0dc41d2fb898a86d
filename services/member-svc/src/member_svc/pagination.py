"""Opaque keyset cursors over (created_at, id): stable under inserts, no offsets."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from member_svc.validation import InvalidValue

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Position:
    """The last member of a page; the next page starts strictly after it."""

    created_at: datetime
    member_id: UUID


def encode_cursor(position: Position) -> str:
    document = {"c": position.created_at.isoformat(), "i": str(position.member_id)}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor from encode_cursor points at; InvalidValue for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
        created_at = datetime.fromisoformat(document["c"])
        member_id = UUID(document["i"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidValue("not a cursor returned by this API") from None
    if created_at.tzinfo is None:
        raise InvalidValue("not a cursor returned by this API")
    return Position(created_at=created_at, member_id=member_id)

"""Opaque keyset cursors over (timestamp, id): stable under inserts, no offsets."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from uuid import UUID

from memberflow_platform.problems import invalid

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

Position = tuple[datetime, UUID]


def encode_cursor(position: Position) -> str:
    at, item_id = position
    raw = json.dumps({"t": at.isoformat(), "i": str(item_id)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    """The position a cursor from encode_cursor points at; a 422 naming `cursor` otherwise."""
    if cursor is None:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, item_id = datetime.fromisoformat(document["t"]), UUID(document["i"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid("cursor", "not a cursor returned by this API") from None
    if at.tzinfo is None:
        raise invalid("cursor", "not a cursor returned by this API")
    return at, item_id

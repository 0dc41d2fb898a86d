"""Opaque cursors round-trip and refuse anything they did not produce."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from member_svc.pagination import Position, decode_cursor, encode_cursor
from member_svc.validation import InvalidValue


def test_a_cursor_round_trips_its_position() -> None:
    position = Position(datetime(2026, 11, 23, 2, 35, 1, 123456, tzinfo=UTC), uuid4())
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert "=" not in cursor
    assert all(c.isalnum() or c in "-_" for c in cursor)


def test_a_cursor_keeps_the_instant_whatever_the_offset() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    position = Position(local, uuid4())
    assert decode_cursor(encode_cursor(position)).created_at == local


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        _b64(b"not json"),
        _b64(b"[]"),
        _b64(b'{"c": "2026-01-01T00:00:00+00:00"}'),
        _b64(b'{"c": "yesterday", "i": "6b0c3f4e-8d0a-4b5b-9c1f-1a2b3c4d5e6f"}'),
        _b64(b'{"c": "2026-01-01T00:00:00+00:00", "i": "not-a-uuid"}'),
        _b64(b'{"c": "2026-01-01T00:00:00", "i": "6b0c3f4e-8d0a-4b5b-9c1f-1a2b3c4d5e6f"}'),
    ],
)
def test_anything_else_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(InvalidValue, match="not a cursor"):
        decode_cursor(cursor)


@given(
    created_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
    member_id=st.uuids(),
)
def test_any_position_round_trips(created_at: datetime, member_id: UUID) -> None:
    position = Position(created_at, member_id)
    assert decode_cursor(encode_cursor(position)) == position

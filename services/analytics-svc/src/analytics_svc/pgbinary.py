"""PostgreSQL binary COPY rows ⇄ numpy arrays, for the jobs' million-row reads and writes.

Only fixed-width, non-null columns are supported (int2/int4/int8/float8/bool/uuid and
timestamptz), which makes every row the same size, so a whole COPY stream is one
structured numpy array: no per-row Python work in either direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Binary wire type of each supported column kind (big-endian, as PostgreSQL sends it).
KINDS: dict[str, str] = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "bool": "u1",
    "uuid": "V16",
    "timestamptz": ">i8",
}


def _row_dtype(kinds: Sequence[str]) -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"v{i}", KINDS[kind])]
    return np.dtype(fields)


def decode(data: bytes, kinds: Sequence[str]) -> list[NDArray[np.generic]]:
    """Columns of a binary COPY stream (NULLs are not allowed: coalesce them in the query)."""
    if not data.startswith(_HEADER[:11]):
        raise ValueError("not a binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : len(data) - 2]
    dtype = _row_dtype(kinds)
    if len(body) % dtype.itemsize:
        raise ValueError("rows are not fixed-width (a NULL or an unexpected column type)")
    rows = np.frombuffer(body, dtype=dtype)
    if rows.size and np.any(rows["n"] != len(kinds)):
        raise ValueError("unexpected number of columns")
    columns: list[NDArray[np.generic]] = []
    for i, kind in enumerate(kinds):
        if rows.size and np.any(rows[f"l{i}"] < 0):
            raise ValueError(f"column {i} has NULLs")
        values = rows[f"v{i}"]
        if kind == "uuid":
            columns.append(values.copy())
        elif kind == "bool":
            columns.append(values.astype(np.bool_))
        else:
            columns.append(values.astype(KINDS[kind].replace(">", "<")))
    return columns


def encode(columns: Sequence[tuple[NDArray[np.generic], str]]) -> bytes:
    """A binary COPY stream of the given columns (all the same length)."""
    kinds = [kind for _, kind in columns]
    n = len(columns[0][0]) if columns else 0
    rows = np.empty(n, dtype=_row_dtype(kinds))
    rows["n"] = len(columns)
    for i, (values, kind) in enumerate(columns):
        rows[f"l{i}"] = np.dtype(KINDS[kind]).itemsize
        rows[f"v{i}"] = values
    return _HEADER + rows.tobytes() + _TRAILER


def timestamp_value(moment: datetime) -> int:
    """timestamptz in binary COPY: microseconds since 2000-01-01 UTC."""
    delta = moment.astimezone(UTC) - _PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def timestamp_column(moment: datetime, n: int) -> tuple[NDArray[np.int64], str]:
    """A timestamptz column of `n` rows all holding `moment` (a job's run time)."""
    return np.full(n, timestamp_value(moment), dtype=np.int64), "timestamptz"

"""Version-7 ids: layout, clock, strict order within a process, fresh randomness per fork."""

from __future__ import annotations

import os
import time
from uuid import UUID

import pytest
from memberflow_events import ids
from memberflow_events.ids import uuid7


def _milliseconds(value: UUID) -> int:
    return value.int >> 80


def test_layout_is_rfc_9562_version_7() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"


def test_timestamp_is_the_clock_even_under_load() -> None:
    before = time.time_ns() // 1_000_000
    made = [uuid7() for _ in range(50_000)]
    after = time.time_ns() // 1_000_000
    # Many ids per millisecond: uuid6's uuid7 ran tens of seconds ahead here.
    assert before <= _milliseconds(made[0]) <= _milliseconds(made[-1]) <= after + 1


def test_ids_of_one_process_strictly_increase_and_never_repeat() -> None:
    made = [uuid7() for _ in range(50_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_clock_that_steps_back_does_not_reorder_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    first = uuid7()
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - 5_000_000_000)
    second = uuid7()
    assert second > first
    assert _milliseconds(second) - _milliseconds(first) <= 1


def test_random_part_differs_between_ids_and_after_a_fork() -> None:
    random_bits = {uuid7().int & ((1 << 62) - 1) for _ in range(2_000)}
    assert len(random_bits) == 2_000

    read, write = os.pipe()
    parent_next = ids._generator.random_bits()
    pid = os.fork()
    if pid == 0:  # the child reports its next random bits and exits at once
        os.write(write, ids._generator.random_bits().to_bytes(8, "big"))
        os._exit(0)
    os.waitpid(pid, 0)
    child_next = int.from_bytes(os.read(read, 8), "big")
    assert child_next != ids._generator.random_bits()
    assert child_next != parent_next


def test_ids_made_on_one_batch_tick_sit_between_the_ids_around_them() -> None:
    before = uuid7()
    upper = ids.uuid7_upper_bits()
    after = uuid7()
    lowest = UUID(int=(upper << 64) | ids.VARIANT_BITS)
    highest = UUID(int=(upper << 64) | ids.VARIANT_BITS | ids.RANDOM_MASK)
    assert before < lowest < highest < after
    assert lowest.version == 7
    assert lowest.variant == "specified in RFC 4122"

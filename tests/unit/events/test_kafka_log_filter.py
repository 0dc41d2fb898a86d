"""aiokafka's repeated connection errors are held back, and counted when one passes again."""

from __future__ import annotations

import logging

from memberflow_events.kafka import RepeatedKafkaErrors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


UNREACHABLE = "Unable connect to node with id %s: %s"


def test_the_first_passes_repeats_are_held_back_then_counted() -> None:
    clock = Clock()
    quiet = RepeatedKafkaErrors(window_seconds=30, clock=clock)
    assert quiet.filter(record("aiokafka", UNREACHABLE, 1, "refused"))
    for second in range(1, 30):
        clock.now = 1000.0 + second
        assert not quiet.filter(record("aiokafka", UNREACHABLE, 1, f"refused {second}"))
    clock.now = 1030.0
    passed = record("aiokafka", UNREACHABLE, 1, "refused")
    assert quiet.filter(passed)
    assert passed.getMessage() == (
        "Unable connect to node with id 1: refused (29 more like it held back in 30 s)"
    )
    clock.now = 1031.0
    assert not quiet.filter(record("aiokafka", UNREACHABLE, 1, "refused"))


def test_each_node_message_and_logger_is_its_own_kind() -> None:
    quiet = RepeatedKafkaErrors(clock=Clock())
    assert quiet.filter(record("aiokafka", UNREACHABLE, 1, "refused"))
    assert quiet.filter(record("aiokafka", UNREACHABLE, 2, "refused"))
    assert quiet.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert quiet.filter(record("aiokafka.conn", UNREACHABLE, 1, "refused"))
    assert not quiet.filter(record("aiokafka", UNREACHABLE, 2, "refused"))


def test_other_loggers_and_lower_levels_always_pass() -> None:
    quiet = RepeatedKafkaErrors(clock=Clock())
    for _ in range(3):
        assert quiet.filter(record("memberflow_events.inbox", "offset commit failed for %s", "x"))
        assert quiet.filter(record("aiokafka", UNREACHABLE, 1, "x", level=logging.INFO))

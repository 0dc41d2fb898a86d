"""The fast partitioner puts every key where aiokafka's (and the Java client's) would."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from memberflow_events.partitioner import key_partitioner, murmur2


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


def test_every_tail_length_and_member_ids_land_on_the_same_partition() -> None:
    rng = random.Random(3)
    reference = DefaultPartitioner()
    keys = [rng.randbytes(length) for length in range(64) for _ in range(20)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode() for _ in range(2000)]
    for partitions in (1, 3, 6, 7):
        everything = list(range(partitions))
        for key in keys:
            assert key_partitioner(key, everything, everything) == reference(
                key, everything, everything
            )


def test_java_clients_known_hashes() -> None:
    # Kafka's own test vectors (UtilsTest.testMurmur2).
    assert murmur2(b"21") == 0xFFFFFFFF & -973932308
    assert murmur2(b"foobar") == 0xFFFFFFFF & -790332482
    assert murmur2(b"a-little-bit-long-string") == 0xFFFFFFFF & -985981536
    assert murmur2(b"a-little-bit-longer-string") == 0xFFFFFFFF & -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == 0xFFFFFFFF & -58897971
    assert murmur2(b"abc") == 0xFFFFFFFF & 479470107


def test_records_without_a_key_go_to_an_available_partition() -> None:
    assert key_partitioner(None, [0, 1, 2], [2]) == 2
    assert key_partitioner(None, [0, 1, 2], []) in {0, 1, 2}

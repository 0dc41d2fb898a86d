"""Outbox → Kafka → inbox against the real broker and database, including failures."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError
from memberflow_events.codec import encode
from memberflow_events.kafka import OutgoingRecord, RenewingProducer, kafka_admin, make_producer
from memberflow_events.outbox import OutboxRelay
from memberflow_events.redrive import redrive
from prometheus_client import REGISTRY
from sqlalchemy import text

from tests.conftest import CreateDatabase
from tests.integration.events.pipeline import BROKEN_KINDS, SINK, Pipeline, activity
from tests.support import ADMIN_DSN, KAFKA_BOOTSTRAP, eventually, read_topic

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def pipeline(create_database: CreateDatabase, topic_prefix: str) -> AsyncIterator[Pipeline]:
    pipe = Pipeline(await create_database("source"), await create_database("sink"), topic_prefix)
    await pipe.prepare()
    yield pipe
    await pipe.close()


async def test_outbox_to_inbox_round_trip(pipeline: Pipeline) -> None:
    members = [uuid.uuid4() for _ in range(20)]
    events = [activity(members[i % 20]) for i in range(200)]
    await pipeline.start_relay()
    await pipeline.start_consumer()
    for start in range(0, 200, 50):
        await pipeline.publish(events[start : start + 50])

    await eventually(lambda: _total_is(pipeline, 200), what="200 visits applied")

    assert await pipeline.visits() == dict.fromkeys(members, 10)
    assert await pipeline.scalar(pipeline.sink, "SELECT count(*) FROM inbox") == 200
    await eventually(lambda: _outbox_drained(pipeline), what="every outbox row published")
    records = await read_topic(f"{pipeline.prefix}members")
    assert len(records) == 200
    headers = dict(records[0].headers)
    assert headers["type"] == b"member.activity"
    assert headers["version"] == b"1"
    assert {record.key.decode() for record in records} == {str(member) for member in members}


async def test_duplicated_event_is_applied_once(pipeline: Pipeline) -> None:
    duplicated, marker = activity(uuid.uuid4()), activity(uuid.uuid4())
    await pipeline.start_consumer()
    producer = make_producer(KAFKA_BOOTSTRAP, "test-duplicator")
    await producer.start()
    try:
        for event in (duplicated, duplicated, duplicated, marker):
            await producer.send_and_wait(
                f"{pipeline.prefix}members", encode(event), key=event.key.encode()
            )
    finally:
        await producer.stop()

    await eventually(lambda: _has_visits(pipeline, marker.member_id), what="the marker event")

    visits = await pipeline.visits()
    assert visits == {duplicated.member_id: 1, marker.member_id: 1}


async def test_batch_hooks_write_in_bulk_and_still_once(pipeline: Pipeline) -> None:
    members = [uuid.uuid4() for _ in range(7)]
    events = [activity(members[i % 7]) for i in range(140)]
    await pipeline.start_consumer(batch_size=50, buffered=True)
    producer = make_producer(KAFKA_BOOTSTRAP, "test-bulk")
    await producer.start()
    try:
        for event in [*events, *events[:40]]:  # 40 duplicates
            await producer.send(f"{pipeline.prefix}members", encode(event), key=event.key.encode())
        await producer.flush()
    finally:
        await producer.stop()

    await eventually(lambda: _total_is(pipeline, 140), what="140 buffered visits")
    await asyncio.sleep(1.0)  # the duplicates are consumed too
    assert await pipeline.visits() == dict.fromkeys(members, 20)


async def test_poison_events_go_to_the_dlq_and_the_consumer_goes_on(pipeline: Pipeline) -> None:
    member = uuid.uuid4()
    unknown_version = encode(activity(member)).replace(b'"version":1', b'"version":99')
    poison_handler = activity(uuid.uuid4(), kind="poison")
    good = [activity(member) for _ in range(5)]
    await pipeline.start_consumer(batch_size=50)
    producer = make_producer(KAFKA_BOOTSTRAP, "test-poisoner")
    await producer.start()
    try:
        topic = f"{pipeline.prefix}members"
        key = str(member).encode()
        await producer.send_and_wait(topic, b"{not json", key=key)
        await producer.send_and_wait(topic, unknown_version, key=key)
        await producer.send_and_wait(topic, encode(poison_handler), key=key)
        for event in good:
            await producer.send_and_wait(topic, encode(event), key=key)
    finally:
        await producer.stop()

    await eventually(lambda: _total_is(pipeline, 5), what="the good events after the poison")
    assert poison_handler.member_id not in await pipeline.visits()  # its write was rolled back

    dead = await read_topic(f"{pipeline.prefix}dlq.{SINK}")
    reasons = sorted(dict(record.headers)["dlq.reason"].decode() for record in dead)
    assert len(reasons) == 3, reasons
    assert any("not UTF-8 JSON" in reason for reason in reasons)
    assert any("unsupported version 99 of member.activity" in reason for reason in reasons)
    assert any("invariant violated: poison visit" in reason for reason in reasons)
    sources = {dict(record.headers)["dlq.source.topic"] for record in dead}
    assert sources == {f"{pipeline.prefix}members".encode()}
    assert all(record.value for record in dead)  # the original record is kept for redrive


async def test_dead_letters_redrive_after_the_fix(pipeline: Pipeline) -> None:
    flaky = activity(uuid.uuid4(), kind="flaky")
    BROKEN_KINDS.add("flaky")
    try:
        await pipeline.start_consumer()
        await pipeline.start_relay()
        await pipeline.publish([flaky])
        dlq = f"{pipeline.prefix}dlq.{SINK}"
        await eventually(lambda: _count_records(dlq, 1), what="the flaky event in the DLQ")
    finally:
        BROKEN_KINDS.discard("flaky")  # the "fix" is deployed

    assert await redrive(SINK, KAFKA_BOOTSTRAP, pipeline.prefix) == 1
    await eventually(lambda: _has_visits(pipeline, flaky.member_id), what="the redriven event")
    assert await redrive(SINK, KAFKA_BOOTSTRAP, pipeline.prefix) == 0  # nothing left
    assert await pipeline.visits() == {flaky.member_id: 1}


async def test_relay_killed_between_publish_and_mark_sent_yields_one_effect(
    pipeline: Pipeline,
) -> None:
    events = [activity(uuid.uuid4()) for _ in range(30)]
    await pipeline.publish(events)
    database_url = pipeline.source.url.render_as_string(hide_password=False)

    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.events.relay_then_die",
        database_url,
        pipeline.prefix,
        cwd=ROOT,
    )
    assert await doomed.wait() == -9  # SIGKILL after Kafka acknowledged the batch

    assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 30
    assert len(await read_topic(f"{pipeline.prefix}members")) == 30  # they did reach Kafka

    await pipeline.start_relay()  # a new relay publishes the undeleted rows again
    await pipeline.start_consumer()
    await eventually(lambda: _outbox_drained(pipeline), what="the new relay to delete the rows")
    await eventually(lambda: _total_is(pipeline, 30), what="30 visits")
    await asyncio.sleep(1.0)  # let the consumer see the second copies too

    assert len(await read_topic(f"{pipeline.prefix}members")) == 60  # every event twice on Kafka
    assert await pipeline.visits() == {event.member_id: 1 for event in events}  # once in effect


async def test_broker_restart_mid_stream_loses_nothing(pipeline: Pipeline) -> None:
    members = [uuid.uuid4() for _ in range(10)]
    await pipeline.start_relay()
    await pipeline.start_consumer()
    await pipeline.publish([activity(members[i % 10]) for i in range(100)])
    await eventually(lambda: _total_is(pipeline, 100), what="the first 100 visits")

    restart = await asyncio.create_subprocess_exec(str(ROOT / "infra/infra.sh"), "restart-kafka")
    for _ in range(10):  # keep writing while the broker goes down and comes back
        await pipeline.publish([activity(members[i % 10]) for i in range(20)])
        await asyncio.sleep(0.5)
    assert await restart.wait() == 0
    await pipeline.publish([activity(members[i % 10]) for i in range(100)])

    await eventually(lambda: _total_is(pipeline, 400), within=120, what="all 400 visits")
    await asyncio.sleep(1.0)
    assert Counter(await pipeline.visits()) == Counter(dict.fromkeys(members, 40))
    assert await pipeline.scalar(pipeline.sink, "SELECT count(*) FROM inbox") == 400


async def test_a_producer_left_with_a_sequence_gap_is_renewed(topic_prefix: str) -> None:
    """A batch the broker refuses for good leaves a gap in the idempotent producer's
    numbering; a plain aiokafka producer then gets OutOfOrderSequenceNumber for every later
    batch on that partition (tried), this one starts anew and goes on delivering."""
    topic = f"{topic_prefix}one-partition"
    await _create_topic(topic, {"max.message.bytes": "2000"})
    producer = RenewingProducer(KAFKA_BOOTSTRAP, "test-renewing")
    await producer.start()
    try:
        await producer.deliver([OutgoingRecord(topic, b"first", b"k")])
        with pytest.raises(MessageSizeTooLargeError):
            await producer.deliver([OutgoingRecord(topic, b"x" * 5000, b"k")])
        await producer.deliver([OutgoingRecord(topic, b"second", b"k")])
        await producer.deliver([OutgoingRecord(topic, b"third", b"k")])
    finally:
        await producer.stop()

    assert [record.value for record in await read_topic(topic)] == [b"first", b"second", b"third"]


async def test_relay_catches_up_once_a_too_low_topic_limit_is_raised(pipeline: Pipeline) -> None:
    """Every batch fails while the topic refuses records of this size; each failure leaves
    the producer with a sequence gap. Once an operator raises the limit, everything queued
    is published, and applied once."""
    members = [uuid.uuid4() for _ in range(10)]
    topic = f"{pipeline.prefix}members"
    await pipeline.start_relay()
    await pipeline.start_consumer()
    await pipeline.publish([activity(members[i % 10]) for i in range(30)])
    await eventually(lambda: _total_is(pipeline, 30), what="the first 30 visits")

    await _set_topic_config(topic, {"max.message.bytes": "100"})
    await pipeline.publish([activity(members[i % 10]) for i in range(30)])
    await asyncio.sleep(2.0)  # the relay keeps failing meanwhile
    assert await pipeline.total_visits() == 30

    await _set_topic_config(topic, {"max.message.bytes": "1048588"})
    await pipeline.publish([activity(members[i % 10]) for i in range(30)])

    await eventually(lambda: _total_is(pipeline, 90), within=60, what="all 90 visits")
    await asyncio.sleep(1.0)
    assert await pipeline.visits() == dict.fromkeys(members, 9)


async def test_a_commit_wakes_the_relay_and_a_lost_listener_reconnects(
    pipeline: Pipeline,
) -> None:
    """With a ten-minute fallback poll, only the NOTIFY of a commit can explain prompt
    publishing: before and after the listening connection is killed."""
    members = [uuid.uuid4() for _ in range(5)]
    await pipeline.start_relay(poll_interval=600)
    await pipeline.start_consumer()
    await eventually(lambda: _listeners(pipeline, 1), what="the relay listening")
    await asyncio.sleep(0.5)  # the relay's first pass is over; it waits
    await pipeline.publish([activity(members[i % 5]) for i in range(10)])
    await eventually(lambda: _total_is(pipeline, 10), within=15, what="10 visits, woken")

    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'outbox-listener:source-svc'"
        " AND datname = current_database()"
    )
    assert await pipeline.scalar(pipeline.source, terminate) == 1
    await eventually(lambda: _listeners(pipeline, 1), what="the listener back")
    await asyncio.sleep(0.5)
    await pipeline.publish([activity(members[i % 5]) for i in range(10)])
    await eventually(lambda: _total_is(pipeline, 20), within=15, what="20 visits, woken again")
    assert await pipeline.visits() == dict.fromkeys(members, 4)


async def test_one_relay_of_two_leads_and_the_other_takes_over(pipeline: Pipeline) -> None:
    """Two replicas' relays on one outbox: one leads (is woken by commits and publishes),
    each event is sent once, and when the leader stops the other takes over."""
    members = [uuid.uuid4() for _ in range(5)]
    await pipeline.start_relay(poll_interval=0.5)
    other = pipeline.new_relay(poll_interval=0.5)
    other_running = asyncio.create_task(other.run())
    relays = [pipeline.relay, other]
    try:
        await pipeline.start_consumer()
        await eventually(lambda: _leaders(relays, 1), what="one relay leading")
        for _ in range(5):
            await pipeline.publish([activity(members[i % 5]) for i in range(10)])
            await asyncio.sleep(0.2)
        await eventually(lambda: _total_is(pipeline, 50), what="50 visits")
        assert await _leaders(relays, 1)

        leader = next(relay for relay in relays if relay is not None and relay.leading)
        leader.stop()
        follower = other if leader is pipeline.relay else pipeline.relay
        assert follower is not None
        await eventually(lambda: _is_leading(follower), within=10, what="the other leading")
        await pipeline.publish([activity(members[i % 5]) for i in range(10)])
        await eventually(lambda: _total_is(pipeline, 60), within=15, what="60 visits")
        await asyncio.sleep(1.0)
        assert len(await read_topic(f"{pipeline.prefix}members")) == 60  # none sent twice
        assert await pipeline.visits() == dict.fromkeys(members, 12)
    finally:
        other.stop()
        await other_running


async def test_a_relay_that_cannot_listen_cannot_lead_and_the_metrics_say_so(
    pipeline: Pipeline,
) -> None:
    """A replica whose listening connection cannot be opened can neither lead nor take
    over. Its gauges say so, and the backlog and its age, which every replica reports,
    grow; once it can connect again it leads and publishes the backlog."""
    members = [uuid.uuid4() for _ in range(5)]
    await pipeline.start_relay(poll_interval=0.2)
    relay = pipeline.relay
    assert relay is not None
    await pipeline.start_consumer()
    await eventually(lambda: _is_leading(relay), what="the relay leading")
    assert _gauge("memberflow_outbox_relay_leading") == 1
    assert _gauge("memberflow_outbox_relay_listening") == 1
    database = pipeline.source.url.database
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        terminate = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'outbox-listener:source-svc' AND datname = $1"
        )
        assert await admin.fetchval(terminate, database) == 1
        await eventually(lambda: _not_leading(relay), what="the relay no longer leading")
        assert _gauge("memberflow_outbox_relay_leading") == 0
        assert _gauge("memberflow_outbox_relay_listening") == 0

        await pipeline.publish([activity(members[i % 5]) for i in range(10)])
        await asyncio.sleep(1.0)
        await relay.housekeeping()
        assert _gauge("memberflow_outbox_backlog") == 10
        assert _gauge("memberflow_outbox_oldest_unpublished_seconds") >= 1.0
        assert await pipeline.total_visits() == 0
        assert not relay.leading
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()

    await eventually(lambda: _is_leading(relay), within=15, what="the relay leading again")
    assert _gauge("memberflow_outbox_relay_listening") == 1
    await eventually(lambda: _total_is(pipeline, 10), within=15, what="10 visits")
    await relay.housekeeping()
    assert _gauge("memberflow_outbox_backlog") == 0
    assert _gauge("memberflow_outbox_oldest_unpublished_seconds") == 0


async def test_published_rows_are_deleted_and_the_leader_deletes_rows_marked_by_old_builds(
    pipeline: Pipeline,
) -> None:
    """Rows leave the outbox once Kafka has them. During a rolling upgrade a replica of an
    earlier build may still mark rows published instead: they are not sent again, and
    the leader deletes them."""
    relay = pipeline.new_relay()
    await pipeline.publish([activity(uuid.uuid4()) for _ in range(10)])
    assert await relay.publish_batch() == 10
    assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 0

    await pipeline.publish([activity(uuid.uuid4()) for _ in range(4)])
    marked = "UPDATE outbox SET published_at = now() RETURNING 1"  # as an earlier build did
    async with pipeline.source.begin() as conn:
        assert len((await conn.execute(text(marked))).all()) == 4
    assert await relay.publish_batch() == 0
    await relay.housekeeping()  # not leading: it only reports
    assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 4
    running = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _is_leading(relay), what="the relay leading")
        await relay.housekeeping()
        assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 0
    finally:
        relay.stop()
        await running
    assert len(await read_topic(f"{pipeline.prefix}members")) == 10


async def test_a_graceful_stop_publishes_what_was_committed_before_it(pipeline: Pipeline) -> None:
    """With commits not waking it (trigger disabled) and a ten-minute fallback poll, only
    the relay's last pass on stop() can publish the rows."""
    relay = pipeline.new_relay(poll_interval=600)
    running = asyncio.create_task(relay.run())
    await eventually(lambda: _is_leading(relay), what="the relay leading")
    async with pipeline.source.begin() as conn:
        await conn.execute(text("ALTER TABLE outbox DISABLE TRIGGER outbox_written"))
    events = [activity(uuid.uuid4()) for _ in range(12)]
    await pipeline.publish(events)
    await asyncio.sleep(0.5)
    assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 12

    relay.stop()
    await asyncio.wait_for(running, timeout=10)

    assert await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 0
    records = await read_topic(f"{pipeline.prefix}members")
    assert sorted(dict(r.headers)["event_id"] for r in records) == sorted(
        str(e.event_id).encode() for e in events
    )


def _gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"service": "source-svc"})
    assert value is not None, f"{name} was never set"
    return value


async def _not_leading(relay: OutboxRelay) -> bool:
    return not relay.leading


async def _leaders(relays: list[OutboxRelay | None], expected: int) -> bool:
    return sum(1 for relay in relays if relay is not None and relay.leading) == expected


async def _is_leading(relay: OutboxRelay) -> bool:
    return relay.leading


async def _listeners(pipeline: Pipeline, expected: int) -> bool:
    listening = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'outbox-listener:source-svc'"
        " AND datname = current_database() AND query LIKE 'LISTEN%'"
    )
    return await pipeline.scalar(pipeline.source, listening) == expected


async def _create_topic(name: str, configs: dict[str, str]) -> None:
    async with kafka_admin(KAFKA_BOOTSTRAP) as admin:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])


async def _set_topic_config(name: str, configs: dict[str, str]) -> None:
    async with kafka_admin(KAFKA_BOOTSTRAP) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs)])


async def _total_is(pipeline: Pipeline, expected: int) -> bool:
    total = await pipeline.total_visits()
    assert total <= expected, f"{total} visits applied, more than the {expected} events sent"
    return total == expected


async def _outbox_drained(pipeline: Pipeline) -> bool:
    return await pipeline.scalar(pipeline.source, "SELECT count(*) FROM outbox") == 0


async def _count_records(topic: str, expected: int) -> bool:
    return len(await read_topic(topic)) == expected


async def _has_visits(pipeline: Pipeline, member: uuid.UUID | None) -> bool:
    return member in await pipeline.visits()

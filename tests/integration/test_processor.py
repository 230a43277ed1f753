"""The batch processor and state store on real Redis, dead letters on real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from faust.types import TP
from roi_metrics.domain.aggregate import BatchDelta, fold
from roi_metrics.domain.events import Counter
from roi_metrics.ingest.contract import DeadLetterHeader
from roi_metrics.ingest.decode import Decoder
from roi_metrics.settings import Settings
from roi_metrics.state.store import (
    ApplyResult,
    PartitionApply,
    PartitionRead,
    StateCorrupt,
    StateStore,
)
from roi_metrics.worker.app import ensure_topic
from roi_metrics.worker.gaps import Chunk, RangeReader
from roi_metrics.worker.monitor import check_tail
from roi_metrics.worker.processor import BatchProcessor, Record
from roi_metrics.worker.runtime import Runtime

from tests.cloudevents import encode, event
from tests.integration.batches import NOW, TOPIC, mark_count, processor, records
from tests.integration.pipeline import read_topic

pytestmark = pytest.mark.integration


async def totals(client: aioredis.Redis, channel: str = "web") -> dict[str, int]:
    raw = await client.hgetall(f"roi:{{{channel}}}:b:all:0")
    return {key.decode(): int(value) for key, value in raw.items()}


EXPECTED = {
    "conversations": 1,
    "ai_conversations": 1,
    "ai_resolutions_assumed": 1,
    "ai_cost_micros": 125_000,
    "ai_revenue_micros": 40_000_000,  # within 72 h of the AI resolution
}


async def test_a_batch_delivered_twice_is_applied_once(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    worker = processor(redis_db, producer, topic_name)
    await worker.process(records())
    await worker.process(records())  # redelivery after a crash or rebalance
    await processor(redis_db, producer, topic_name).process(records()[2:])  # another worker
    assert await totals(redis_db) == EXPECTED
    assert await redis_db.hgetall("roi:{web}:wm") == {b"support.events.web:0": b"14"}
    assert await redis_db.smembers("roi:channels") == {b"web"}
    [letter] = await read_topic(bootstrap, topic_name, 1)
    assert letter.value == b"{broken"
    assert dict(letter.headers) == {
        DeadLetterHeader.ORIGIN_TOPIC: TOPIC.encode(),
        DeadLetterHeader.ORIGIN_PARTITION: b"0",
        DeadLetterHeader.ORIGIN_OFFSET: b"13",
        DeadLetterHeader.REASON: b"invalid_json",
        DeadLetterHeader.ERROR: b"Expecting property name enclosed in double quotes at character 1",
    }
    sample = worker.metrics.registry.get_sample_value
    outcomes = {
        outcome: sample("support_events_total", {"channel": "web", "outcome": outcome})
        for outcome in ("counted", "duplicate", "dead_lettered")
    }
    assert outcomes == {"counted": 4, "duplicate": 1, "dead_lettered": 1}


async def test_every_key_carries_the_channel_hash_tag_and_expires_as_designed(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    await processor(redis_db, producer, topic_name).process(records())
    keys = sorted([key async for key in redis_db.scan_iter()])
    assert keys[0] == b"roi:channels"
    assert all(key.startswith(b"roi:{web}:") for key in keys[1:])
    ttl = {key: await redis_db.ttl(key) for key in keys}
    for key, seconds in ttl.items():
        if b":b:m:" in key:
            assert 0 < seconds <= 66 * 60
        elif b":b:h:" in key:
            assert 0 < seconds <= 26 * 3600
        elif b":b:d:" in key:
            assert 0 < seconds <= 32 * 86400
        elif b":s:" in key or b":sx:" in key:  # marks: a horizon after their bucket's end
            assert 86_000 < seconds <= 2 * 86_400
        elif b":c:" in key:
            assert 2_591_000 < seconds <= 2_592_000
        else:
            assert seconds == -1, key  # totals, watermarks, mark directory, the channel set
    assert await mark_count(redis_db) == 4  # one mark per distinct event
    assert await redis_db.get("roi:{web}:c:c1") == f"ai:{int((NOW - 30) * 1e6)}".encode()


async def test_an_apply_against_a_moved_watermark_writes_nothing(redis_db: aioredis.Redis) -> None:
    store = StateStore(redis_db, 86_400, 2_592_000)
    delta = BatchDelta()
    delta.add("web", ("all", 0), {Counter.CONVERSATIONS: 1})
    first = PartitionApply("web", TOPIC, 3, None, 7, delta)
    zombie = PartitionApply("web", TOPIC, 3, None, 9, delta)  # read before `first` applied
    assert await store.apply([first]) == [ApplyResult.OK]
    assert await store.apply([zombie]) == [ApplyResult.CONFLICT]
    assert await totals(redis_db) == {"conversations": 1}
    assert await redis_db.hget("roi:{web}:wm", f"{TOPIC}:3") == b"7"


async def test_a_dedup_mark_that_appeared_meanwhile_aborts_the_apply(
    redis_db: aioredis.Redis,
) -> None:
    """The same event in two partitions (a publisher that re-keyed a retry), folded by two
    workers at once: the second apply finds the first one's mark and writes nothing."""
    store = StateStore(redis_db, 86_400, 2_592_000)
    [same] = (
        Decoder("USD")
        .decode_record(
            encode(event("conversation.started", "x", "c9", NOW, handled_by="human")),
            "web",
            int(NOW * 1e6),
        )
        .events
    )
    reads = [PartitionRead("web", TOPIC, p, ["c9"], [(same.source, same.event_id)]) for p in (0, 1)]
    states = await store.read(reads)
    deltas = [fold([same], s.states, s.seen, int(NOW * 1e6), 7 * 86_400_000_000) for s in states]
    applies = [
        PartitionApply("web", TOPIC, p, None, 5, d) for p, d in zip((0, 1), deltas, strict=True)
    ]
    assert await store.apply(applies) == [ApplyResult.OK, ApplyResult.CONFLICT]
    assert (await totals(redis_db))["conversations"] == 1
    assert await redis_db.hget("roi:{web}:wm", f"{TOPIC}:1") is None


INT64_MAX = 2**63 - 1


def costs(amounts: list[str], first_id: int = 100) -> Record:
    """One batched record of cost events of 'c1', one per amount."""
    events = [
        event(
            "cost.recorded",
            str(first_id + n),
            "c1",
            NOW - 5,
            amount=amount,
            currency="USD",
            category="ai_usage",
        )
        for n, amount in enumerate(amounts)
    ]
    return Record(TOPIC, 0, 20, b"c1", encode(events))


async def test_an_event_that_would_overflow_a_sum_is_dead_lettered_and_the_rest_applied(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """A sum 1.5 units under 2^63 - 1, then costs of 1, 1 and 0.5 units: the first fits,
    the second would pass the limit (dead-lettered `overflow`; nothing of it written, not
    even its dedup mark), the third takes the sum to the limit exactly, which still fits."""
    start = INT64_MAX - 1_500_000
    await redis_db.hset("roi:{web}:b:all:0", "ai_cost_micros", start)
    await redis_db.sadd("roi:channels", "web")
    worker = processor(redis_db, producer, topic_name)
    broken = Record(TOPIC, 0, 19, b"c1", b"{broken")
    await worker.process([broken, costs(["1", "1", "0.5"])])  # applied on the second try
    assert int(await redis_db.hget("roi:{web}:b:all:0", "ai_cost_micros")) == INT64_MAX
    letters = await read_topic(bootstrap, topic_name, 2)
    # each dead letter once, though the batch was folded and sent twice
    assert [dict(r.headers)[DeadLetterHeader.REASON] for r in letters] == [
        b"invalid_json",
        b"overflow",
    ]
    assert json.loads(letters[1].value)["id"] == "101"  # the event's own bytes
    assert await mark_count(redis_db) == 2  # the overflowing event left no mark
    assert await redis_db.hget("roi:{web}:wm", f"{TOPIC}:0") == b"20"
    minute = [key async for key in redis_db.scan_iter("roi:{web}:b:m:*")]
    [bucket] = minute
    assert int(await redis_db.hget(bucket, "ai_cost_micros")) == 1_500_000


async def test_a_corrupt_sum_stops_the_apply_before_any_write(redis_db: aioredis.Redis) -> None:
    store = StateStore(redis_db, 86_400, 2_592_000)
    await redis_db.hset("roi:{web}:b:all:0", "conversations", "not a number")
    delta = BatchDelta()
    delta.add("web", ("all", 0), {Counter.CONVERSATIONS: 1})
    delta.dedup_marks.add(("web", "/s", "1"))
    with pytest.raises(StateCorrupt, match="conversations"):
        await store.apply([PartitionApply("web", TOPIC, 0, None, 3, delta)])
    assert [key async for key in redis_db.scan_iter("roi:{web}:s:*")] == []
    assert await redis_db.hget("roi:{web}:wm", f"{TOPIC}:0") is None


async def test_a_batch_that_alone_passes_2_63_loses_nothing(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """Ten records of 1000 costs at the largest amount in ONE batch: the batch alone would
    add 10^19 micro-units to a sum. 9223 of them fit under 2^63 - 1 and are counted, the
    other 777 are dead-lettered `overflow`; nothing is lost as a false duplicate."""
    await redis_db.sadd("roi:channels", "web")
    records = []
    for number in range(10):
        record = costs(["1000000000"] * 1000, first_id=number * 1000)
        records.append(Record(TOPIC, 0, number, b"big", record.value))
    await processor(redis_db, producer, topic_name).process(records)
    assert int(await redis_db.hget("roi:{web}:b:all:0", "ai_cost_micros")) == 9223 * 10**15
    letters = await read_topic(bootstrap, topic_name, 777)
    assert len(letters) == 777
    assert {dict(r.headers)[DeadLetterHeader.REASON] for r in letters} == {b"overflow"}
    assert await mark_count(redis_db) == 9223


async def test_a_topic_created_again_counts_even_before_the_consumer_knows_its_end(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    """Just after an assignment the consumer knows no end offset yet: the broker is asked,
    so records at offsets the old watermark names count when the partition now ends
    before it (a topic created again), and stay redeliveries when it does not."""
    first = processor(redis_db, producer, topic_name)
    await first.process(records())  # watermark 14
    started = event("conversation.started", "new-1", "c9", NOW - 5, handled_by="ai")
    again = [Record(TOPIC, 0, 0, b"c9", encode(started))]
    asked: list[tuple[str, int]] = []

    async def end_offset(topic: str, partition: int) -> int | None:
        asked.append((topic, partition))
        return 1  # the new topic holds one record

    recreated = processor(redis_db, producer, topic_name)
    recreated.end_offset = end_offset  # highwater stays unknown (None)
    await recreated.process(again)
    assert asked == [(TOPIC, 0)]
    assert await redis_db.hgetall("roi:{web}:wm") == {b"support.events.web:0": b"0"}
    assert (await totals(redis_db))["conversations"] == EXPECTED["conversations"] + 1

    async def far(topic: str, partition: int) -> int | None:
        return 15  # not created again: offset 0 is a redelivery of what was applied

    unchanged = processor(redis_db, producer, topic_name)
    unchanged.end_offset = far
    await redis_db.hset("roi:{web}:wm", "support.events.web:0", "14")
    before = await totals(redis_db)
    await unchanged.process(again)
    assert await totals(redis_db) == before


GAP_PREFIX = "test.gaps."
"""The gap tests' channel topics' prefix (their processors are made with it)."""


async def _channel_topic(bootstrap: str) -> str:
    """A fresh one-partition channel topic, under a prefix of the tests' own: a worker of
    `make demo` on the same broker (prefix support.events.) never sees it."""
    name = f"{GAP_PREFIX}gap{uuid.uuid4().hex[:8]}"
    await ensure_topic(Settings(kafka_bootstrap_servers=bootstrap), name)
    return name


def _started(number: int) -> bytes:
    return encode(
        event("conversation.started", f"g{number}", f"c{number}", NOW - 60, handled_by="ai")
    )


async def _gapped(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, dlq: str, bootstrap: str, count: int
) -> tuple[str, list[Record], RangeReader, BatchProcessor]:
    """A fresh channel topic holding `count` records, and a processor that reads the gaps
    behind its batches with a RangeReader (stop it after)."""
    topic = await _channel_topic(bootstrap)
    sent = await _published(producer, topic, range(count))
    reader = RangeReader({"bootstrap_servers": bootstrap})
    worker = processor(redis_db, producer, dlq, GAP_PREFIX)
    worker.ranges = reader
    return topic, sent, reader, worker


async def _published(producer: AIOKafkaProducer, topic: str, numbers: range) -> list[Record]:
    """Each number's conversation.started, one record each, as the worker reads them back."""
    sent = []
    for number in numbers:
        metadata = await producer.send_and_wait(topic, _started(number), key=b"k")
        sent.append(Record(topic, 0, metadata.offset, b"k", _started(number)))
    return sent


async def _recovered_up_to(
    worker: BatchProcessor, redis_db: aioredis.Redis, topic: str
) -> tuple[float | None, int]:
    """How many records the processor read again from Kafka, and the watermark of the
    topic's one partition."""
    channel = topic.removeprefix(GAP_PREFIX)
    recovered = worker.metrics.registry.get_sample_value(
        "support_recovered_records_total", {"channel": channel}
    )
    watermarks = await redis_db.hgetall(f"roi:{{{channel}}}:wm")
    assert list(watermarks) == [f"{topic}:0".encode()]
    return recovered, int(watermarks[f"{topic}:0".encode()])


async def test_records_a_rebalance_dropped_before_a_batch_are_read_again_from_kafka(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    topic, sent, reader, worker = await _gapped(redis_db, producer, topic_name, bootstrap, 10)
    channel = topic.removeprefix(GAP_PREFIX)
    try:
        await worker.process(sent[:2])
        await worker.process(sent[5:])  # offsets 2-4 never reached the batch
        assert (await totals(redis_db, channel))["conversations"] == 10
        await worker.process(sent[6:])  # a redelivery: nothing read, nothing counted twice
        await worker.process(sent[:3])
        more = await _published(producer, topic, range(10, 16))
        await worker.process(more[4:])  # offsets 10-13 missing after watermark 9
        assert (await totals(redis_db, channel))["conversations"] == 16
    finally:
        await reader.stop()
    assert await _recovered_up_to(worker, redis_db, topic) == (7, 15)


async def test_records_missing_between_records_of_a_batch_are_read_again_from_kafka(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """Faust can drop a record in the middle of a partition's stream at a rebalance and hand
    over the next: the batch holds offsets 2, 3, 5, 8, 9 (4, 6 and 7 missing)."""
    topic, sent, reader, worker = await _gapped(redis_db, producer, topic_name, bootstrap, 10)
    channel = topic.removeprefix(GAP_PREFIX)
    try:
        await worker.process(sent[:2])
        await worker.process([sent[2], sent[3], sent[5], sent[8], sent[9]])
        assert (await totals(redis_db, channel))["conversations"] == 10
        await worker.process(sent[4:8])  # the consumer's redelivery: nothing counted twice
        assert (await totals(redis_db, channel))["conversations"] == 10
        # a hole holding a duplicate (conversation 0 published again): the batch's state is
        # read again with the records found, so its mark is seen and it counts once
        more = await _published(producer, topic, range(10, 12))
        again = await _published(producer, topic, range(0, 1))
        last = await _published(producer, topic, range(12, 13))
        assert [r.offset for r in (*more, *again, *last)] == [10, 11, 12, 13]
        await worker.process([more[0], last[0]])
        assert (await totals(redis_db, channel))["conversations"] == 13
    finally:
        await reader.stop()
    assert await _recovered_up_to(worker, redis_db, topic) == (5, 13)


async def test_without_a_watermark_the_gap_starts_where_the_partition_was_left(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """No watermark: a new channel's first records, dropped before its first batch, are read
    from the partition's start; after `channel remove` (the watermark deleted with the
    figures) nothing before the consumer's place is counted again ("from there")."""
    topic, sent, reader, worker = await _gapped(redis_db, producer, topic_name, bootstrap, 10)
    channel = topic.removeprefix(GAP_PREFIX)
    try:
        await worker.process(sent[5:])  # a new channel: offsets 0-4 dropped before the batch
        assert (await totals(redis_db, channel))["conversations"] == 10
        await redis_db.flushdb()  # channel remove
        more = await _published(producer, topic, range(10, 14))
        await worker.process(more)  # this process applied up to 9: from 10 on
        assert (await totals(redis_db, channel))["conversations"] == 4
        await redis_db.flushdb()
        other = processor(
            redis_db, producer, topic_name, GAP_PREFIX
        )  # another worker, after a rebalance
        other.ranges, other.committed = reader, lambda topic, partition: 12
        await other.process(more[3:])  # committed up to 11: offset 12 was dropped
        assert (await totals(redis_db, channel))["conversations"] == 2
    finally:
        await reader.stop()
    sample = worker.metrics.registry.get_sample_value
    assert sample("support_recovered_records_total", {"channel": channel}) == 5


async def test_a_gap_that_holds_no_records_counts_nothing_and_does_not_stall(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """Transactions leave offsets without records (each commit's marker; an aborted
    transaction's records are not read): the batch after one goes on at once."""
    topic = await _channel_topic(bootstrap)
    channel = topic.removeprefix(GAP_PREFIX)
    publisher = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=topic)
    await publisher.start()
    offsets = []
    try:
        for number, commit in ((0, True), (1, False), (2, True)):
            async with publisher.transaction() if commit else _aborted(publisher):
                metadata = await publisher.send_and_wait(topic, _started(number), key=b"k")
                offsets.append(metadata.offset)
    finally:
        await publisher.stop()
    assert offsets == [0, 2, 4]  # 1 and 3: markers; 2 aborted
    reader = RangeReader({"bootstrap_servers": bootstrap})
    worker = processor(redis_db, producer, topic_name, GAP_PREFIX)
    worker.ranges = reader
    try:
        await worker.process([Record(topic, 0, 0, b"k", _started(0))])
        async with asyncio.timeout(15):  # nothing in 1..3: no retry loop
            await worker.process([Record(topic, 0, 4, b"k", _started(2))])
        await redis_db.flushdb()  # the same holes inside one batch
        async with asyncio.timeout(15):
            await worker.process(
                [Record(topic, 0, 0, b"k", _started(0)), Record(topic, 0, 4, b"k", _started(2))]
            )
    finally:
        await reader.stop()
    assert (await totals(redis_db, channel))["conversations"] == 2
    sample = worker.metrics.registry.get_sample_value
    assert sample("support_recovered_records_total", {"channel": channel}) == 0


@contextlib.asynccontextmanager
async def _aborted(publisher: AIOKafkaProducer) -> AsyncIterator[None]:
    await publisher.begin_transaction()
    yield
    await publisher.abort_transaction()


async def test_records_dropped_at_a_partitions_end_are_found_by_the_lag_check(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """No later record brings them back: the lag check sees a partition fetched to its end
    with records after the watermark and none in hand, reads them and applies them."""
    topic = await _channel_topic(bootstrap)
    channel = topic.removeprefix(GAP_PREFIX)
    sent = await _published(producer, topic, range(6))
    reader = RangeReader({"bootstrap_servers": bootstrap})
    runtime = Runtime(Settings(kafka_bootstrap_servers=bootstrap))
    runtime.processor = processor(redis_db, producer, topic_name, GAP_PREFIX)
    runtime.processor.ranges = reader
    tp = TP(topic, 0)
    try:
        await runtime.processor.process(sent[:3])  # offsets 3-5 were fetched, then dropped
        assert not check_tail(runtime, tp, applied=2, end=6)  # maybe still on their way
        assert runtime.recovering is None
        assert not check_tail(runtime, tp, applied=2, end=6)  # the same at the next look
        assert runtime.recovering is not None
        assert check_tail(runtime, tp, applied=2, end=6)  # being applied: the lag shows
        await runtime.recovering[1]
        assert (await totals(redis_db, channel))["conversations"] == 6
        assert not check_tail(runtime, tp, applied=5, end=6)
        assert not check_tail(runtime, tp, applied=5, end=6)  # read: nothing after 5
        await runtime.recovering[1]
        assert runtime.tails == {tp: (5, 6)}  # not read again until something moves
        before = runtime.recovering
        assert not check_tail(runtime, tp, applied=5, end=6)
        assert runtime.recovering is before
        runtime.batcher.filling.append(object())  # records on their way to a batch
        assert not check_tail(runtime, tp, applied=7, end=9)
        assert not check_tail(runtime, tp, applied=7, end=9)
        assert tp not in runtime.suspects and runtime.recovering is before
    finally:
        await reader.stop()
    sample = runtime.processor.metrics.registry.get_sample_value
    assert sample("support_recovered_records_total", {"channel": channel}) == 3


async def test_a_batch_no_replica_confirmed_is_never_reported_applied(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    """ROI_REDIS_WAIT_REPLICAS=1 on a Redis without replicas: the master has the batch, but
    the processor keeps it (not ready) instead of letting the caller acknowledge it."""
    worker = processor(redis_db, producer, topic_name)
    worker.store = StateStore(redis_db, 86_400, 2_592_000, wait_replicas=1, wait_timeout_ms=50)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(worker.process(records()), 1.5)
    assert await totals(redis_db) == EXPECTED  # applied on the master, once
    assert worker.store.unconfirmed == {"web": {"support.events.web:0": 14}}
    assert worker.metrics.registry.get_sample_value("support_state_store_up") == 0
    assert await redis_db.get("roi:{web}:rp") is not None  # it wrote to wait again


async def test_a_watermark_that_goes_back_while_a_batch_waits_is_caught_up_from_kafka(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """A Redis failover to a replica that lacked the last writes takes the watermark back
    while a batch waits for replicas: its next attempt reads the lost records again."""
    topic, sent, reader, worker = await _gapped(redis_db, producer, topic_name, bootstrap, 10)
    channel = topic.removeprefix(GAP_PREFIX)
    try:
        await worker.process(sent[:3])
        replica = {k: await redis_db.dump(k) async for k in redis_db.scan_iter()}  # up to 2
        await worker.process(sent[3:6])
        worker.store = StateStore(redis_db, 86_400, 2_592_000, wait_replicas=1, wait_timeout_ms=50)
        waiting = asyncio.ensure_future(worker.process(sent[6:]))
        await asyncio.sleep(0.5)  # applied on the master, never confirmed: it retries
        assert not waiting.done()
        async with redis_db.pipeline(transaction=True) as failover:  # atomic, as a failover
            failover.flushdb()  # the master dies; its replica, at offset 2, takes over
            for key, value in replica.items():
                failover.restore(key, 0, value)
            await failover.execute()
        worker.store.wait_replicas = 0  # and has replicas of its own
        await asyncio.wait_for(waiting, 10)
    finally:
        await reader.stop()
    assert (await totals(redis_db, channel))["conversations"] == 10
    sample = worker.metrics.registry.get_sample_value
    assert sample("support_recovered_records_total", {"channel": channel}) == 3


async def test_the_range_reader_steps_over_a_record_it_cannot_read(
    producer: AIOKafkaProducer, bootstrap: str
) -> None:
    """The consumer dead-letters a record it cannot read and leaves a gap of one offset:
    the gap's read must step over it, keep what follows, and not take for ever."""
    topic = await _channel_topic(bootstrap)
    await _published(producer, topic, range(3))
    subprocess.run(  # kcat: a header name of bytes 0xff 0xfe, which no producer API allows
        f"printf 'bad\\n' | kcat -P -b {bootstrap} -t {topic} -p 0 -H $'\\xff\\xfe=v'",
        shell=True,
        executable="/bin/bash",
        check=True,
    )
    await _published(producer, topic, range(4, 6))
    reader = RangeReader({"bootstrap_servers": bootstrap})
    try:
        assert [r.offset for r in await reader.read(topic, 0, 0, 6)] == [0, 1, 2, 4, 5]
        assert [r.offset for r in await reader.read(topic, 0, 2, 5)] == [2, 4]
        assert await reader.read(topic, 0, 3, 4) == []
    finally:
        await reader.stop()


async def test_a_record_fetched_twice_into_one_batch_is_one_record(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """After a seek the consumer can hand the same record twice before the batch is applied:
    its events count once (their marks) and its dead letters go out once."""
    batch = records()
    await processor(redis_db, producer, topic_name).process(batch + batch[::-1])
    assert await totals(redis_db) == EXPECTED
    letters = await read_topic(bootstrap, topic_name, 1)
    assert [letter.value for letter in letters] == [b"{broken"]


async def test_a_long_gap_of_aborted_records_is_read_once_and_stays_read(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    """30,000 records of an aborted transaction behind a batch (a publisher's worst case):
    read in one pass, with progress shown, and the watermark moved over them, so a worker
    restarted later does not read them again."""
    topic = await _channel_topic(bootstrap)
    channel = topic.removeprefix(GAP_PREFIX)
    [first] = await _published(producer, topic, range(1))
    publisher = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=topic, linger_ms=20, max_batch_size=2**20
    )
    await publisher.start()
    try:
        await publisher.begin_transaction()
        sent = [await publisher.send(topic, b"x" * 50, key=b"k") for _ in range(30_000)]
        await asyncio.gather(*sent)
        await publisher.abort_transaction()
    finally:
        await publisher.stop()
    [last] = await _published(producer, topic, range(1, 2))
    reader = RangeReader({"bootstrap_servers": bootstrap})
    worker = processor(redis_db, producer, topic_name, GAP_PREFIX)
    worker.ranges = reader
    progress: list[float] = []
    worker.on_progress = lambda: progress.append(time.monotonic())
    try:
        await worker.process([first])
        async with asyncio.timeout(30):
            # what a restart mid-way would leave: the watermark over what was read
            assert await worker.recover_range(topic, 0, 1, last.offset - 1, 0) == 0
            assert (
                await redis_db.hget(f"roi:{{{channel}}}:wm", f"{topic}:0")
                == str(last.offset - 2).encode()
            )
            await worker.process([last])
    finally:
        await reader.stop()
    assert (await totals(redis_db, channel))["conversations"] == 2
    assert progress  # the watchdog heard of the read
    assert (
        worker.metrics.registry.get_sample_value(
            "support_recovered_records_total", {"channel": channel}
        )
        == 0
    )


async def test_a_gap_that_retention_deleted_is_reported_and_the_rest_read(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, bootstrap: str
) -> None:
    topic, sent, reader, worker = await _gapped(redis_db, producer, topic_name, bootstrap, 10)
    channel = topic.removeprefix(GAP_PREFIX)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await worker.process(sent[:2])
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(6)})
        await worker.process(sent[9:])  # 2..5 deleted before they were applied; 6..8 read
    finally:
        await admin.close()
        await reader.stop()
    assert (await totals(redis_db, channel))["conversations"] == 6
    sample = worker.metrics.registry.get_sample_value
    assert sample("support_unread_offsets_total", {"channel": channel}) == 4
    assert sample("support_recovered_records_total", {"channel": channel}) == 3


async def test_a_chunk_of_a_gap_is_bounded_in_bytes(
    producer: AIOKafkaProducer, bootstrap: str
) -> None:
    topic = await _channel_topic(bootstrap)
    sent = await _published(producer, topic, range(6))
    size = len(sent[0].value) + 1  # and its key
    reader = RangeReader({"bootstrap_servers": bootstrap}, max_bytes=2 * size - 1)
    chunks: list[list[int]] = []

    async def keep(chunk: Chunk) -> bool:
        chunks.append([record.offset for record in chunk.records])
        return True

    try:
        await reader.each_chunk(topic, 0, 0, 6, keep)
    finally:
        await reader.stop()
    assert chunks == [[0, 1], [2, 3], [4, 5]]  # the record that passes the bound ends it

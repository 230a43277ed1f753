"""The batch processor and state store on real Redis, dead letters on real Kafka."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics.domain.aggregate import BatchDelta, fold
from roi_metrics.domain.events import Counter
from roi_metrics.ingest.contract import DeadLetterHeader
from roi_metrics.ingest.decode import Decoder
from roi_metrics.state.store import (
    ApplyResult,
    PartitionApply,
    PartitionRead,
    StateCorrupt,
    StateStore,
)
from roi_metrics.worker.processor import Record

from tests.cloudevents import encode, event
from tests.integration.batches import NOW, TOPIC, processor, records
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
        elif b":s:" in key:
            assert 86_000 < seconds <= 86_400
        elif b":c:" in key:
            assert 2_591_000 < seconds <= 2_592_000
        else:
            assert seconds == -1, key  # totals, watermarks, the channel set
    assert len([key for key in keys if b":s:" in key]) == 4  # one mark per distinct event
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
    marks = [key async for key in redis_db.scan_iter("roi:{web}:s:*")]
    assert len(marks) == 2  # the overflowing event left no mark: it changed nothing
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
    marks = [key async for key in redis_db.scan_iter("roi:{web}:s:*", count=1000)]
    assert len(marks) == 9223


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

"""Dedup marks grouped by the time they were written (marks.lua), on the real Redis, with the
worker's clock set by the test: every mark is found until its bucket expires, the hashes
stay small enough for Redis's compact encoding, a bucket opens sized from the one before,
and marks of the previous layout (a key each) are still honoured for one horizon."""

from __future__ import annotations

import redis.asyncio as aioredis
from roi_metrics.domain.aggregate import BatchDelta
from roi_metrics.domain.events import Counter
from roi_metrics.state import keys
from roi_metrics.state.store import ApplyResult, PartitionApply, PartitionRead, StateStore

TOPIC = "support.events.web"
HOUR = 3_600
T0 = 1_800_000_000  # a multiple of the mark bucket (the horizon, HOUR)
DIRECTORY = keys.dedup_directory("web")
SLACK = keys.MARK_SLACK_SECONDS


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Partition:
    """One partition's applies, each a batch of dedup marks, its watermark kept."""

    def __init__(self, client: aioredis.Redis, clock: Clock, partition: int = 0) -> None:
        self.store = StateStore(client, HOUR, 30 * 86_400, clock=clock)
        self.partition = partition
        self.watermark: int | None = None

    async def apply(self, ids: list[str], marks_read: str | None = None) -> ApplyResult:
        delta = BatchDelta()
        delta.add("web", ("all", 0), {Counter.CONVERSATIONS: 1})
        delta.dedup_marks.update(("web", "/s", i) for i in ids)
        new = (self.watermark or 0) + 1
        request = PartitionApply(
            "web", TOPIC, self.partition, self.watermark, new, delta, marks_read=marks_read
        )
        [result] = await self.store.apply([request])
        if result is ApplyResult.OK:
            self.watermark = new
        return result

    async def seen(self, ids: list[str]) -> set[str]:
        return (await self.read(ids))[0]

    async def read(self, ids: list[str]) -> tuple[set[str], str | None]:
        """The ids marked, and the token of the last apply that wrote marks."""
        marks = [("/s", i) for i in ids]
        [state] = await self.store.read([PartitionRead("web", TOPIC, self.partition, [], marks)])
        return {mark[2] for mark in state.seen}, state.mark_token


def ids(first: int, count: int) -> list[str]:
    return [f"event-{n}" for n in range(first, first + count)]


async def test_marks_grow_in_generations_of_small_hashes_and_are_all_found(
    redis_db: aioredis.Redis,
) -> None:
    clock = Clock(T0 + 5)
    part = Partition(redis_db, clock)
    for first in range(0, 1_500, 250):
        assert await part.apply(ids(first, 250)) is ApplyResult.OK
    assert await part.seen(ids(0, 1_500)) == set(ids(0, 1_500))
    assert await part.seen(ids(1_500, 1_000)) == set()
    # a new channel's 16 hashes hold 16 x 64 = 1,024 marks; 256 more hold the other 476
    expire = T0 + HOUR + HOUR + SLACK
    directory = await redis_db.hgetall(DIRECTORY)
    assert len(directory.pop(b"w")) == 32  # the last writer's token
    assert directory == {
        b"v2": b"0",  # a new channel: no mark of the previous layout to look up
        str(T0).encode(): f"{expire} 16 256".encode(),
        f"{T0}:c".encode(): b"476",
    }
    hashes = [key async for key in redis_db.scan_iter("roi:{web}:s:*", count=1000)]
    sizes = [await redis_db.hlen(key) for key in hashes]
    assert sum(sizes) == 1_500 and max(sizes) <= 128
    assert {await redis_db.object("encoding", key) for key in hashes} == {b"listpack"}
    assert {await redis_db.expiretime(key) for key in hashes} == {expire}
    # which hashes exist, so each one's expiry was set once
    second = len([key for key in hashes if key.startswith(f"roi:{{web}}:s:{T0}:2:".encode())])
    bitmaps = [f"roi:{{web}}:sx:{T0}:{generation}" for generation in (1, 2)]
    assert [await redis_db.bitcount(name) for name in bitmaps] == [16, second]
    assert len(hashes) == 16 + second
    assert {await redis_db.expiretime(name) for name in bitmaps} == {expire}
    # a batch holding a mark that exists changes nothing
    assert await part.apply([*ids(2_000, 10), "event-1499"]) is ApplyResult.CONFLICT
    assert await part.seen(ids(2_000, 10)) == set()


async def test_a_bucket_opens_sized_from_the_last_and_marks_expire_with_their_bucket(
    redis_db: aioredis.Redis,
) -> None:
    clock = Clock(T0)
    part = Partition(redis_db, clock)
    assert await part.apply(ids(0, 1_000)) is ApplyResult.OK
    clock.now = T0 + HOUR  # the next bucket: enough shards for 1.25 x the last one's marks
    assert await part.apply(ids(1_000, 10)) is ApplyResult.OK
    assert await redis_db.hget(DIRECTORY, str(T0 + HOUR)) == f"{T0 + 3 * HOUR + SLACK} 20".encode()
    assert await part.seen(["event-0", "event-999", "event-1009"]) == {
        "event-0",
        "event-999",
        "event-1009",
    }
    # a horizon after its bucket's end (and the clocks' slack) a mark is gone: the same
    # identity counts again
    clock.now = T0 + 2 * HOUR + SLACK - 1
    assert await part.seen(["event-0"]) == {"event-0"}
    clock.now = T0 + 2 * HOUR + SLACK
    assert await part.seen(["event-0", "event-1000"]) == {"event-1000"}
    assert await part.apply(["event-0"]) is ApplyResult.OK
    assert str(T0).encode() not in await redis_db.hgetall(DIRECTORY)  # dropped from the lookups


async def test_marks_of_the_previous_layout_count_for_one_horizon(
    redis_db: aioredis.Redis,
) -> None:
    """State written by the version that kept a key per mark: its marks are looked up until
    a horizon after the first apply of this layout."""
    legacy = keys.dedup_prefix("web") + keys.dedup_digest("/s", "old")
    await redis_db.set(legacy, "1", ex=HOUR)
    await redis_db.hset(keys.watermarks("web"), f"{TOPIC}:0", 0)
    clock = Clock(T0)
    part = Partition(redis_db, clock)
    part.watermark = 0
    assert await part.seen(["old", "new"]) == {"old"}
    assert await part.apply(["old"]) is ApplyResult.CONFLICT
    assert await part.apply(["new"]) is ApplyResult.OK
    assert await redis_db.hget(DIRECTORY, "v2") == str(T0 + HOUR).encode()
    assert await part.seen(["old"]) == {"old"}
    clock.now = T0 + HOUR
    assert await part.seen(["old"]) == set()


async def test_a_directory_written_by_hand_is_no_error(redis_db: aioredis.Redis) -> None:
    junk = {"v2": "x", "w": "1.5", "junk": "not numbers", "7": "", "8:c": "y"}
    await redis_db.hset(DIRECTORY, mapping=junk)
    clock = Clock(T0)
    part = Partition(redis_db, clock)
    assert await part.apply(ids(0, 100)) is ApplyResult.OK
    assert await part.seen(ids(0, 101)) == set(ids(0, 100))
    directory = await redis_db.hgetall(DIRECTORY)
    assert b"junk" not in directory and b"7" not in directory
    assert len(directory[b"w"]) == 32


async def test_marks_are_looked_up_again_at_apply_only_when_written_since_the_read(
    redis_db: aioredis.Redis,
) -> None:
    clock = Clock(T0)
    first, second = Partition(redis_db, clock, 0), Partition(redis_db, clock, 1)
    assert await first.apply(ids(0, 10)) is ApplyResult.OK
    # the same identity published to two partitions: both read it unmarked...
    seen, writes = await first.read(["twice"])
    assert seen == set() and writes is not None
    assert await second.read(["twice"]) == (set(), writes)
    # ...one applies it; the other's apply finds it, though its read did not
    assert await second.apply(["twice"], marks_read=writes) is ApplyResult.OK
    assert await first.apply(["twice"], marks_read=writes) is ApplyResult.CONFLICT
    # with no mark written since its read, an apply does not look its marks up again (only
    # the apply script writes marks: one added by hand goes unseen)
    _, writes = await first.read(["by-hand"])
    digest = keys.dedup_digest("/s", "by-hand")
    shard = int.from_bytes(digest[:3], "big") % 16  # a new channel's bucket has 16 hashes
    await redis_db.hset(f"roi:{{web}}:s:{T0}:1:{shard}", digest, "1")
    assert await first.seen(["by-hand"]) == {"by-hand"}  # where a lookup finds it
    assert await first.apply(["by-hand"], marks_read=writes) is ApplyResult.OK


async def test_a_horizon_raised_between_runs_keeps_every_mark_its_horizon(
    redis_db: aioredis.Redis,
) -> None:
    """Twice the horizon: the new bucket starts where a live one of the old horizon started
    (both multiples), so that bucket lasts the longer of the two, every hash written too."""
    clock = Clock(T0 + 100)
    assert await Partition(redis_db, clock).apply(ids(0, 200)) is ApplyResult.OK
    longer = Partition(redis_db, clock)
    longer.store = StateStore(redis_db, 2 * HOUR, 30 * 86_400, clock=clock)
    longer.watermark = 1
    clock.now = T0 + HOUR - 100  # T0 is a multiple of 2 * HOUR too
    assert await longer.apply(ids(200, 200)) is ApplyResult.OK
    expire = T0 + 2 * HOUR + 2 * HOUR + SLACK
    assert (await redis_db.hget(DIRECTORY, str(T0))).split()[0] == str(expire).encode()
    hashes = [key async for key in redis_db.scan_iter("roi:{web}:s:*", count=1000)]
    written = [key for key in hashes if set(ids(200, 200)) & await _marked_ids(redis_db, key)]
    assert written and {await redis_db.expiretime(key) for key in written} == {expire}
    clock.now = T0 + 3 * HOUR  # past the old horizon's end, within the new one
    assert await longer.seen(ids(0, 400)) == set(ids(0, 400))


async def _marked_ids(client: aioredis.Redis, key: bytes) -> set[str]:
    fields = set(await client.hkeys(key))
    return {i for i in ids(0, 400) if keys.dedup_digest("/s", i) in fields}

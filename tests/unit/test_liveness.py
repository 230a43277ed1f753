"""The watchdog's decision (worker.liveness) and the batcher's bounds (worker.batching)."""

from __future__ import annotations

import asyncio

import pytest
from roi_metrics.worker.batching import Batcher
from roi_metrics.worker.liveness import QUERY_TIMEOUT_SECONDS, Watch

STALL = 20.0


def watch() -> Watch:
    return Watch(STALL, started=1000.0)


def check(
    w: Watch, now: float, running: bool = True, store_up: bool = True, behind: bool = False
) -> str | None:
    w.answered(now)
    return w.check(now, running=running, store_up=store_up, fetch_behind=behind)


def test_a_stopped_agent_is_a_stall_at_once_and_stays_one() -> None:
    w = watch()
    assert check(w, 1001) is None
    assert check(w, 1002, running=False) == "the agent stopped consuming"
    assert check(w, 1003) == "the agent stopped consuming"  # never un-stalls


def test_a_batch_held_past_the_stall_time_is_a_stall_unless_redis_is_away() -> None:
    w = watch()
    w.took(1000.0, {("t", 0)})
    assert check(w, 1020.0) is None  # exactly the stall time: not yet
    assert check(w, 1100.0, store_up=False) is None  # waiting for Redis is not a stall
    assert check(w, 1100.5) == "one batch has not been applied for 100 s"


def test_an_applied_batch_resets_the_clock() -> None:
    w = watch()
    w.took(1000.0, {("t", 0)})
    w.applied(1019.0)
    w.took(1019.0, {("t", 0)})
    assert check(w, 1030.0) is None


def test_records_behind_the_fetch_with_nothing_consumed_is_a_stall() -> None:
    w = watch()
    assert check(w, 1010.0, behind=True) is None
    assert check(w, 1030.0, behind=True) is None  # behind for 20 s: not yet
    assert check(w, 1031.0, behind=True) == (
        "records wait in assigned partitions but none was consumed for 21 s"
    )


def test_behind_but_consuming_or_caught_up_is_no_stall() -> None:
    w = watch()
    check(w, 1001.0, behind=True)
    w.took(1015.0, set())
    w.applied(1016.0)
    assert check(w, 1030.0, behind=True) is None  # the last batch was 14 s ago
    assert check(w, 1030.0, behind=False) is None
    assert check(w, 1060.0, behind=True) is None  # behind again from 1060 only


def test_a_rebalance_is_progress() -> None:
    w = watch()
    check(w, 1001.0, behind=True)
    w.rebalanced(1019.0)
    assert check(w, 1030.0, behind=True) is None


def test_a_consumer_that_does_not_answer_is_a_stall() -> None:
    w = watch()
    silent = STALL + QUERY_TIMEOUT_SECONDS
    assert w.check(1000.0 + silent, running=True, store_up=True, fetch_behind=False) is None
    verdict = w.check(1001.0 + silent, running=True, store_up=True, fetch_behind=False)
    assert verdict == f"the Kafka consumer has not answered for {silent + 1:.0f} s"


async def test_batches_are_bounded_by_records_bytes_and_time() -> None:
    batcher: Batcher[str] = Batcher(max_records=3, max_bytes=100, within_seconds=0.05)
    taken: list[list[str]] = []

    async def take(count: int) -> None:
        for _ in range(count):
            taken.append(await batcher.take())

    consumer = asyncio.create_task(take(3))
    for item in ["a", "b", "c", "d"]:  # three records fill a batch
        await batcher.add(item, 1)
    await batcher.add("big", 100)  # bytes fill the next one at once
    await batcher.add("late", 1)  # alone: handed over after 50 ms
    await asyncio.wait_for(consumer, 2)
    assert taken == [["a", "b", "c"], ["d", "big"], ["late"]]


async def test_a_full_batch_holds_the_pump_until_taken() -> None:
    batcher: Batcher[str] = Batcher(max_records=2, max_bytes=10**6, within_seconds=10)
    await batcher.add("a", 1)
    adding = asyncio.create_task(batcher.add("b", 1))  # fills the batch: waits to be taken
    await asyncio.sleep(0.05)
    assert not adding.done()
    blocked = asyncio.create_task(batcher.add("c", 1))
    await asyncio.sleep(0.05)
    assert batcher.filling == ["a", "b"] and not blocked.done()
    assert await batcher.take() == ["a", "b"]
    await asyncio.wait_for(asyncio.gather(adding, blocked), 1)
    assert batcher.filling == ["c"]


@pytest.mark.parametrize("within", [0.05])
async def test_a_lone_record_waits_at_most_within(within: float) -> None:
    batcher: Batcher[str] = Batcher(max_records=100, max_bytes=10**6, within_seconds=within)
    loop = asyncio.get_running_loop()
    await batcher.add("x", 1)
    started = loop.time()
    assert await batcher.take() == ["x"]
    assert loop.time() - started < within + 0.05

"""The customer facts' joiner (roi_metrics.worker.customers.CustomerAgent.catch_up and
roi_metrics.worker.app's join loop) against stand-ins of its progress mark and of Kafka:
which facts it joins when the customer topic was created again, and a rebalance during its
look at its partitions' end. (Found by a review of the joiner; these failed before.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP
from roi_metrics.settings import Settings
from roi_metrics.worker import app as worker_app
from roi_metrics.worker.batch import Record
from roi_metrics.worker.customers import CustomerAgent
from roi_metrics.worker.gaps import Chunk
from roi_metrics.worker.metrics import WorkerMetrics
from roi_metrics.worker.runtime import Runtime

TOPIC = "support.customers"


class Progress:
    """The progress marks as CustomerStore keeps them (ADVANCE only moves forward)."""

    def __init__(self, marks: dict[int, int]) -> None:
        self.marks = dict(marks)

    async def progress(self, topic: str, partition: int) -> int | None:
        return self.marks.get(partition)

    async def advance(self, topic: str, partition: int, offset: int) -> None:
        if offset > self.marks.get(partition, -1):
            self.marks[partition] = offset

    async def forget(self, topic: str, partition: int) -> None:
        self.marks.pop(partition, None)


class Kafka:
    """One partition as Kafka holds it: offsets 0 to size - 1."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.asked = 0
        """Fresh end offsets asked of Kafka."""

    async def first(self, topic: str, partition: int, fresh: bool = False) -> int:
        return 0

    async def end(self, topic: str, partition: int, fresh: bool = False) -> int:
        self.asked += fresh
        return self.size

    async def each_chunk(self, topic: str, partition: int, start: int, end: int, handle) -> None:  # type: ignore[no-untyped-def]
        stop = min(end, self.size)
        records = [Record(topic, partition, o, b"k", b"v", ()) for o in range(start, stop)]
        await handle(Chunk(records, end))


def agent(marks: dict[int, int], size: int) -> tuple[CustomerAgent, list[int], Progress]:
    progress = Progress(marks)
    joiner = CustomerAgent(
        store=None,  # type: ignore[arg-type]
        customers=progress,  # type: ignore[arg-type]
        metrics=WorkerMetrics(),
        topic=TOPIC,
        topic_prefix="support.",
        window_seconds=3600,
        max_lateness_seconds=60,
        ranges=Kafka(size),  # type: ignore[arg-type]
    )
    joined: list[int] = []

    async def handle(partition: int, offset: int, value: bytes | None) -> str:
        joined.append(offset)
        return "joined"

    joiner.handle = handle  # type: ignore[method-assign]
    return joiner, joined, progress


def test_facts_deferred_after_the_customer_topic_was_created_again_are_joined() -> None:
    """The old topic's mark is 5000; the new topic's facts 0 and 1 are handed over, 2 to 9
    deferred (the queue full: acknowledged, not queued), 10 handed over: all joined."""
    joiner, joined, progress = agent({0: 5000}, size=11)

    async def run() -> None:
        for offset in (0, 1, 10):
            await joiner.take(0, offset, b"v")

    asyncio.run(run())
    assert joined == list(range(11))
    assert progress.marks == {0: 10}


def test_facts_queued_at_a_crash_after_the_topic_was_created_again_are_joined() -> None:
    """New topic: facts 0 to 300 acknowledged but still queued at a kill -9; the restarted
    worker's first fact is 301, the old topic's mark still 5000: all joined, once."""
    joiner, joined, _ = agent({0: 5000}, size=302)
    asyncio.run(joiner.take(0, 301, b"v"))
    assert joined == list(range(302))


def test_a_redelivered_fact_does_not_read_the_partition_again() -> None:
    """Facts at or before the mark of this topic (redelivered, or queued while the joiner's
    look at the partition's end joined them) are joined alone, without asking Kafka for the
    partition's end each time (a known end past the mark settles it)."""
    joiner, joined, _ = agent({0: 20}, size=30)

    async def run() -> None:
        for offset in (15, 16, 17):
            await joiner.take(0, offset, b"v")

    asyncio.run(run())
    assert joined == [15, 16, 17]
    assert joiner.ranges.asked == 0  # type: ignore[union-attr]


class Consumer:
    def __init__(self) -> None:
        self.assigned = {TP(TOPIC, 0), TP(TOPIC, 1)}

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def highwater(self, tp: TP) -> int:
        assert tp in self.assigned, "Partition is not assigned"  # as aiokafka does
        return 10


def test_a_rebalance_during_the_look_at_the_partitions_end_does_not_kill_the_joiner() -> None:
    consumer = Consumer()
    fake_app = SimpleNamespace(consumer=consumer)
    looked: list[int] = []

    class Agent:
        def __init__(self) -> None:
            self.customers = Progress({0: 9})
            self.joined = {0: 6}  # joined to 6 of an end at 10: 7, 8 and 9 wait

        async def catch_up(self, partition: int, end: int) -> int:
            looked.append(partition)
            consumer.assigned.discard(TP(TOPIC, 1))  # revoked while partition 0 catches up
            return 0

    runtime = Runtime(Settings())
    asyncio.run(worker_app._join_tails(fake_app, runtime, Agent(), TOPIC))  # type: ignore[arg-type]
    assert looked == [0]  # partition 1 moved away meanwhile: passed
    assert runtime.metrics.facts_lag._value.get() == 3  # partition 0: offsets 7 to 9

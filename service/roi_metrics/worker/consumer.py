"""Faust's aiokafka consumer, minus two rebalance crashes.

Faust runs aiokafka on a thread of its own and reads its state from the main thread.
When a channel topic appears, Faust resubscribes: aiokafka's `subscribe()` (on the consumer
thread) replaces the subscription at once, so from that moment until the group has
rebalanced no partition counts as assigned. Faust only stops its flow later, in the revoke
callback of the rebalance itself, so its own guards (`flow_active`, the generation id) do
not cover that window, and two calls fail in it:

1. the fetcher (`Consumer.getmany` in faust/transport/consumer.py) calls `highwater(tp)`
   for every record it hands on; aiokafka asserts `Partition is not assigned` and the
   fetcher crashes, taking the worker with it;
2. the periodic commit (`AIOKafkaConsumerThread._commit`) keeps the offsets of assigned
   partitions only, finds none, and aiokafka raises `IllegalStateError: No partitions
   assigned`, which crashes the consumer thread;
3. the table recovery service resumes the streams with `perform_seek` ->
   `seek_to_committed`, and aiokafka asserts `No partitions are currently assigned`.

Each is fixed where it happens. `highwater` answers None ("not known", as aiokafka does
before a first fetch) for a partition that is not assigned at that instant; it only feeds
Faust's monitor. A commit or a seek with nothing assigned does nothing (there is nothing
of ours to commit or seek; the rebalance that follows seeks the new assignment). The
records in flight during the window are counted as usual: nothing is
acknowledged before it is applied, and the partition watermark applies each record once
whichever worker gets it. Records that arrive for a partition already revoked are dropped
on arrival: its new owner reads them again from the committed offset.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.errors import ConsumerStoppedError, IllegalStateError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

log = logging.getLogger(__name__)

NOT_ASSIGNED = (AssertionError, IllegalStateError, AttributeError, KeyError)
"""What aiokafka raises when asked about a partition it holds no assignment for
(AttributeError/KeyError: the same check when asserts are off)."""


READ_COMMITTED: Final = "read_committed"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record the consumer could not read (a header name that is not UTF-8, a codec the
    client lacks...): skipped, to be dead-lettered without its bytes."""

    topic: str
    partition: int
    offset: int
    error: str


class GuardedConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, committing and seeking only what is assigned (both run on
    the consumer thread, where the assignment cannot change between the check and aiokafka's
    own: no await between them), reading committed records only, and skipping a record it
    cannot read instead of crashing on it forever."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unreadable_at: dict[Any, tuple[int, str]] = {}
        """Partitions with a record that could not be read: its offset and the error."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust reads uncommitted records unless it runs transactions itself: aborted
        # transactions of a publisher would count. aiokafka reads this when it starts.
        consumer._isolation_level = READ_COMMITTED
        # Faust asks the broker to hold an empty fetch for 1.5 s. aiokafka fetches only the
        # partitions whose records the agent has taken: a fetch sent while a channel's
        # records still wait in its buffer covers the other partitions alone (Faust's leader
        # topic), finds nothing, and holds the channel's next records back until it returns.
        if "_fetch_max_wait_ms" not in vars(consumer):  # an aiokafka that keeps it elsewhere
            raise RuntimeError("aiokafka's consumer has no _fetch_max_wait_ms to set")
        consumer._fetch_max_wait_ms = self.consumer.fetch_wait_ms  # type: ignore[attr-defined]
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        """aiokafka's fetch, past records it cannot read. When one raises, the records of
        its partition read before it in that call are lost to the caller (aiokafka does not
        move the position), so the bad record is remembered: the next call reads just the
        records before it, and the one after steps over it and reports it."""
        if self._unreadable_at:
            return await self._around_unreadable(consumer, timeout)
        try:
            return await super()._fetch_records(
                consumer, active_partitions, timeout=timeout, max_records=max_records
            )
        except ConsumerStoppedError:
            raise
        except Exception as error:
            found = _failed_partition(consumer)
            if found is None:
                raise
            tp, offset = found
            del consumer._fetcher._records[tp]  # its iterator is dead: fetched again
            self._unreadable_at[tp] = (offset, f"{type(error).__name__}: {error}")
            return {}

    async def _around_unreadable(self, consumer: Any, timeout: float | None) -> Any:
        tp, (offset, error) = next(iter(self._unreadable_at.items()))
        if tp not in consumer.assignment():
            del self._unreadable_at[tp]
            return {}
        position = await consumer.position(tp)
        if position < offset:  # the records before the bad one, not the bad one
            return await consumer._fetcher.fetched_records(
                {tp}, timeout=timeout or 0, max_records=offset - position
            )
        del self._unreadable_at[tp]
        if position > offset:  # moved past it meanwhile (a rebalance seek): nothing to skip
            return {}
        consumer._fetcher._records.pop(tp, None)
        consumer.seek(tp, offset + 1)
        log.error(
            "skipped unreadable record %s:%d@%d (%s); it goes to the dead letters",
            tp.topic,
            tp.partition,
            offset,
            error,
        )
        waiting = self.consumer.unreadable  # type: ignore[attr-defined]
        if len(waiting) == waiting.maxlen:
            log.error(
                "%d unreadable records wait for their dead letters; the oldest is dropped",
                len(waiting),
            )
        waiting.append(Unreadable(tp.topic, tp.partition, offset, error))
        return {}

    async def _commit(self, offsets: Mapping[Any, int]) -> bool:
        assigned = self.assignment()
        ours = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not ours:
            return False
        committed: bool = await super()._commit(ours)
        return committed

    async def seek_to_committed(self) -> Mapping[Any, int]:
        return await self.call_thread(self._seek_to_committed)  # type: ignore[no-any-return]

    async def _seek_to_committed(self) -> Mapping[Any, int]:
        """Every assigned partition back to where this group's reading must go on: its
        committed offset, or its first record when nothing is committed. aiokafka seeks
        only the partitions with a committed offset above 0 and leaves the others where
        its last fetch left them, but Faust drops the records of a fetch that ends after a
        rebalance (the flow is stopped, or the generation changed): for a partition that
        never committed (a new channel, a new group), those records were lost for good."""
        consumer = self._ensure_consumer()
        if not consumer.assignment():
            return {}
        try:
            committed: Mapping[Any, int] = await consumer.seek_to_committed()
            fresh = [tp for tp, offset in committed.items() if not offset or offset < 0]
            if fresh:
                # to an offset, not with seek_to_beginning: that one leaves the position unset
                # until the broker answers, and Faust's livelock check asserts it is set
                firsts = await consumer.beginning_offsets(fresh)
                for tp in fresh:
                    if tp in consumer.assignment():
                        consumer.seek(tp, firsts[tp])
        except NOT_ASSIGNED:  # revoked while the committed offsets were fetched
            return {}
        return committed


def _failed_partition(consumer: Any) -> tuple[Any, int] | None:
    """The partition whose record iterator an error just closed, and the offset it had
    reached (the record it failed on); None if no iterator was closed by it."""
    for tp, result in list(consumer._fetcher._records.items()):
        records = getattr(result, "_partition_records", None)
        iterator = getattr(records, "_records_iterator", None)
        if iterator is not None and inspect.getgeneratorstate(iterator) == inspect.GEN_CLOSED:
            offset: int = records.next_fetch_offset  # type: ignore[union-attr]
            return tp, offset
    return None


class AssignedOnlyConsumer(Consumer):
    """The aiokafka driver's consumer, safe while the group rebalances."""

    fetch_wait_ms: int = 900
    """How long the broker may hold an empty fetch (consumer_class sets it from the settings)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unreadable: deque[Unreadable] = deque(maxlen=100_000)
        """Records the consumer thread skipped; the worker dead-letters them."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return GuardedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def highwater(self, tp: Any) -> int | None:  # type: ignore[override]  # None: not known
        try:
            highwater: int | None = super().highwater(tp)
        except NOT_ASSIGNED:
            return None
        return highwater

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        records = await super()._getmany(active_partitions, timeout)
        if not records:
            return records
        assigned = self.assignment()
        kept = {tp: batch for tp, batch in records.items() if tp in assigned}
        for tp in records.keys() - kept.keys():
            self.log.info("dropped %d records of %s: revoked while fetched", len(records[tp]), tp)
        return kept


def consumer_class(fetch_wait_seconds: float) -> type[AssignedOnlyConsumer]:
    """AssignedOnlyConsumer with the broker's hold on an empty fetch set (Faust builds the
    consumer from a class, so the setting travels on one)."""
    return type(
        "AssignedOnlyConsumer",
        (AssignedOnlyConsumer,),
        {"fetch_wait_ms": max(1, round(fetch_wait_seconds * 1000))},
    )

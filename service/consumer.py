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

from collections.abc import Mapping
from typing import Any

from aiokafka.errors import IllegalStateError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

NOT_ASSIGNED = (AssertionError, IllegalStateError, AttributeError, KeyError)
"""What aiokafka raises when asked about a partition it holds no assignment for
(AttributeError/KeyError: the same check when asserts are off)."""


class GuardedConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, committing and seeking only what is assigned. Both run on
    the consumer thread, where the assignment cannot change between the check and aiokafka's
    own (no await between them)."""

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
        consumer = self._ensure_consumer()
        if not consumer.assignment():
            return {}
        try:
            return await consumer.seek_to_committed()  # type: ignore[no-any-return]
        except NOT_ASSIGNED:  # revoked while the committed offsets were fetched
            return {}


class AssignedOnlyConsumer(Consumer):
    """The aiokafka driver's consumer, safe while the group rebalances."""

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

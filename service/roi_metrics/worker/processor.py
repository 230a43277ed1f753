"""One batch of Kafka records through decode, state read, fold, dead letters and apply.

Every record ends as counted, duplicate, late, ignored or dead-lettered; nothing about one
record stops the others. `BatchProcessor.apply` returns only when every record was applied
(or found applied by another worker): while Redis is unreachable it retries and reports
itself not ready, so the caller never acknowledges a record whose effect is not in Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from redis.exceptions import AskError, ClusterDownError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roi_metrics.domain.aggregate import INT64_MAX, BatchDelta, Outcome, fold, is_late
from roi_metrics.domain.events import MICROS_PER_SECOND, SupportEvent
from roi_metrics.ingest.decode import DecodedRecord, Decoder
from roi_metrics.state.store import (
    ApplyResult,
    PartitionApply,
    PartitionRead,
    PartitionState,
    ReplicasBehind,
    StateCorrupt,
    StateStore,
)
from roi_metrics.worker.batch import Partition, Prepared, Record
from roi_metrics.worker.consumer import Unreadable
from roi_metrics.worker.customers import FactPost, Origin
from roi_metrics.worker.deadletter import DeadLetterSink
from roi_metrics.worker.gaps import Chunk, RangeReader
from roi_metrics.worker.letters import DeadLettersPending, LetterPost
from roi_metrics.worker.metrics import UNREGISTERED, WorkerMetrics

log = logging.getLogger(__name__)
END_OFFSET_SECONDS: Final = 5.0
"""How long a batch waits for the broker to say where a partition ends."""
UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
    ClusterDownError,  # a Redis Cluster failing over (MasterDownError too)
    TryAgainError,
    RedisClusterException,  # no node of the cluster answers
    AskError,  # a slot moved (MovedError too): the cluster client learns the new layout
)


@dataclass(slots=True)
class _Plan:
    """One partition's attempt: what to write, what to dead-letter, what to count."""

    part: Partition
    fresh: list[tuple[Record, DecodedRecord]]
    request: PartitionApply
    label: str
    """The channel label of its metrics: the channel once registered, else UNREGISTERED."""


class GapMoved(Exception):
    """The watermark went back while recovered records were applied (a Redis failover):
    the range must be read again from it."""


class BatchProcessor:
    def __init__(
        self,
        *,
        decoder: Decoder,
        store: StateStore,
        dead_letters: DeadLetterSink,
        metrics: WorkerMetrics,
        topic_prefix: str,
        max_lateness_seconds: int,
        max_channels: int = 200,
        clock: Callable[[], float] = time.time,
        max_backoff_seconds: float = 5.0,
        on_progress: Callable[[], None] = lambda: None,
        highwater: Callable[[str, int], int | None] = lambda topic, partition: None,
        end_offset: Callable[[str, int], Awaitable[int | None]] | None = None,
        ranges: RangeReader | None = None,
        committed: Callable[[str, int], int | None] = lambda topic, partition: None,
        facts: FactPost | None = None,
    ) -> None:
        self.decoder = decoder
        self.store = store
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.topic_prefix = topic_prefix
        self.max_lateness_micros = max_lateness_seconds * MICROS_PER_SECOND
        self.max_channels = max_channels
        self.clock = clock
        self.max_backoff_seconds = max_backoff_seconds
        self.on_progress = on_progress
        """Called whenever a part of a long batch is done (a chunk of dead letters sent, a
        chunk of a gap read): a batch that keeps moving is not a stall."""
        self.highwater = highwater
        """The partition's end offset as the consumer last saw it, None if not known."""
        self.end_offset = end_offset
        """Asks the broker for a partition's end offset when the consumer does not know it
        yet (just after an assignment); None when it cannot say."""
        self.ranges = ranges
        """Reads a partition's records straight from Kafka (roi_metrics.worker.gaps)."""
        self.committed = committed
        """The group's committed offset of a partition as the consumer knows it, or None."""
        self.letters = LetterPost(decoder, dead_letters, metrics, max_channels, on_progress)
        self.facts = facts
        """Sends customer facts (CONTRACT.md §9); None: re-contact is not followed."""
        self.ready = True
        self._paused_by: type[BaseException] | None = None
        """What made the processor pause (said once per kind, not at every retry)."""
        self.applied_offsets: dict[tuple[str, int], int] = {}
        """Last applied offset of each (topic, partition) this process has seen."""
        self.last_applied_monotonic = time.monotonic()
        self._newest_event_micros: dict[str, int] = {}

    def channel_of(self, topic: str) -> str:
        return topic.removeprefix(self.topic_prefix)

    async def process(self, records: Sequence[Record]) -> None:
        """Apply `records` exactly once; retries until Redis has them all."""
        await self.apply(self.prepare(records))

    async def recover(self, records: Sequence[Record]) -> None:
        """Apply records read again from Kafka by recover_range (a rebalance dropped them
        after the consumer fetched them, or a failover lost their effect); counted as
        recovered once applied. Raises what apply raises, and GapMoved."""
        prepared = self.prepare(records)
        for part in prepared.partitions:
            part.recovered = {record.offset for record, _ in part.records}
            part.ranged = True
        await self.apply(prepared)

    def prepare(self, records: Sequence[Record]) -> Prepared:
        """Decode a batch (CPU only, no I/O), once, before any attempt to apply it."""
        now_micros = int(self.clock() * MICROS_PER_SECOND)
        partitions: dict[tuple[str, int], Partition] = {}
        for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
            tp = (record.topic, record.partition)
            if tp not in partitions:
                partitions[tp] = Partition(record.topic, record.partition, self.channel_of(tp[0]))
            part = partitions[tp]
            if part.records and part.records[-1][0].offset == record.offset:
                continue  # fetched twice around a seek: one record, one set of dead letters
            part.records.append((record, self._decode(record, part.channel, now_micros)))
        return Prepared(list(partitions.values()))

    async def apply(self, prepared: Prepared) -> None:
        """Apply a prepared batch exactly once; retries while Redis is unreachable, so it
        returns only when Redis holds every record's effect. Raises DeadLettersPending or
        StateCorrupt (nothing of the unfinished partitions applied) for the caller to retry
        later."""
        partitions = prepared.partitions
        backoff = 0.1
        while partitions:
            try:
                partitions = await self._attempt(partitions)
            except UNREACHABLE as error:
                if self.ready or type(error) is not self._paused_by:  # once per cause
                    waiting = isinstance(error, ReplicasBehind)
                    what = "state store replicas behind" if waiting else "state store unreachable"
                    log.warning("%s, pausing: %s", what, error)
                self._paused_by = type(error)
                self._set_ready(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            except Exception:
                # Redis answered (every attempt reads it first): whatever failed, the store
                # is up, and the watchdog must see a batch that cannot be applied.
                self._set_ready(True)
                raise
            if not self.ready:
                log.warning("state store reachable again, resuming")
            self._set_ready(True)

    async def dead_letter_unreadable(self, records: Sequence[Unreadable]) -> None:
        """Dead-letter records the consumer could not read (`unprocessable`, no key, no
        payload: the record stays at its origin offset). DeadLettersPending if some could
        not be sent (they are tried again)."""
        await self.letters.unreadable(records, self.channel_of)

    def _set_ready(self, ready: bool) -> None:
        if ready:
            self._paused_by = None
        self.ready = ready
        self.metrics.state_store_up.set(1 if ready else 0)

    async def _attempt(self, partitions: Sequence[Partition]) -> list[Partition]:
        """One read-fold-apply round; returns the partitions to try again (conflicts)."""
        started = time.perf_counter()
        states = await self.store.read([self._read_request(part) for part in partitions])
        now_micros = int(self.clock() * MICROS_PER_SECOND)
        plans: list[_Plan] = []
        retry = []
        for part, state in zip(partitions, states, strict=True):
            applied = await self._watermark(part, state)
            if part.ranged:  # read from Kafka after the watermark, by recover_range
                self._check_no_gap(part, applied)
            elif await self._fill_gap(part, applied, state.watermark) or await self._fill_holes(
                part, applied
            ):
                retry.append(part)  # read again, with the records found
                continue
            plan = await self._plan(part, state, applied, now_micros)
            if plan is not None:
                plans.append(plan)
            else:  # applied before: acknowledged once enough replicas have it (if required)
                self.store.expect(part.channel, part.topic, part.partition, state.watermark)
        if not plans:
            await self.store.confirm()
            return retry
        results = await self.store.apply([plan.request for plan in plans])
        for plan, result in zip(plans, results, strict=True):
            if result is ApplyResult.OK:
                request = plan.request
                self.store.expect(
                    request.channel, request.topic, request.partition, request.new_watermark
                )
                self._applied(plan, now_micros)
                continue
            if result is ApplyResult.OVERFLOW:
                room = await self.store.headroom(plan.request)
                plan.part.headroom = {**(plan.part.headroom or {}), **room}
            retry.append(plan.part)
        await self.store.confirm()
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        return retry

    async def _watermark(self, part: Partition, state: PartitionState) -> int | None:
        """The offset up to which the partition's records are applied: its watermark, unless
        the partition now ends at or before it. Then the topic was deleted and created
        again (or truncated) and the watermark names records that are gone: the new records
        at those offsets are not redeliveries and count (the apply replaces the watermark)."""
        watermark = state.watermark
        if watermark is None or part.records[0][0].offset > watermark:
            return watermark
        end = self.highwater(part.topic, part.partition)
        if end is None and self.end_offset is not None:
            # just assigned, nothing fetched under this assignment yet: without the end, a
            # topic created again would have its first records taken for redeliveries
            try:  # bounded: a broker busy rebalancing must not hold the batch
                end = await asyncio.wait_for(
                    self.end_offset(part.topic, part.partition), END_OFFSET_SECONDS
                )
            except Exception as error:
                log.warning("end offset of %s:%d unknown (%s)", part.topic, part.partition, error)
        if end is None or end > watermark:
            return watermark
        log.error(
            "%s partition %d ends at offset %d but its watermark says offset %d was applied: "
            "the topic was deleted and created again (or truncated); its records count anew",
            part.topic,
            part.partition,
            end,
            watermark,
        )
        return None

    @staticmethod
    def _check_no_gap(part: Partition, applied: int | None) -> None:
        """Records recover_range read must go on from the watermark: GapMoved when it went
        back meanwhile (a Redis failover), for the range to be read again from there."""
        fresh = [r.offset for r, _ in part.records if applied is None or r.offset > applied]
        if fresh and (applied is None or fresh[0] != applied + 1):
            raise GapMoved(f"{part.topic}:{part.partition} watermark now {applied}")

    async def _fill_gap(self, part: Partition, applied: int | None, stored: int | None) -> bool:
        """True when records between the watermark and the batch's first fresh record were
        missing from the batch: the range is read from Kafka (roi_metrics.worker.gaps) and
        what it holds applied first, the watermark moved over the rest; the batch is then
        read again. Checked at every attempt: the watermark may have gone back since the
        last one (a Redis failover lost writes its replica never got). Without a watermark
        the gap starts where _gap_start says. `stored`: the watermark as read from Redis."""
        if self.ranges is None:
            return False
        fresh = [r.offset for r, _ in part.records if applied is None or r.offset > applied]
        if not fresh:
            return False
        begin = self._gap_start(part, applied)
        first = fresh[0]
        start = await self.ranges.first(part.topic, part.partition) if begin is None else begin
        if start >= first:
            return False
        try:
            found = await self.recover_range(part.topic, part.partition, start, first, stored)
        except GapMoved:
            return True  # read again from where the watermark is now
        if found:
            log.warning(
                "%s partition %d: %d records before offset %d were not applied (dropped in a "
                "rebalance, or lost by Redis in a failover); read again from Kafka and applied",
                part.topic,
                part.partition,
                found,
                first,
            )
        return True

    async def _fill_holes(self, part: Partition, applied: int | None) -> bool:
        """True when records were missing between two fresh records of the batch: they are
        read from Kafka and put in their place, and the batch is read again (its state
        read covers their conversations and marks). Faust can drop a record in the middle
        of a partition's stream around a rebalance and hand over the next ones (seen in the
        observability test: one of a fresh group's first records); without this, the apply
        would move the watermark over it. A hole with no record in Kafka is real (a
        transaction's marker, aborted records); one Kafka deleted before it was read is
        reported, as a gap is. The holes are read in one read from the first to the last
        (the records of the batch in between are read again and dropped), and read again
        only while records are found."""
        if self.ranges is None:
            return False
        fresh = [r.offset for r, _ in part.records if applied is None or r.offset > applied]
        holes = [
            (before + 1, after)
            for before, after in itertools.pairwise(fresh)
            if after - before > 1 and (before + 1, after) not in part.holes_read
        ]
        if not holes:
            return False
        have = {record.offset for record, _ in part.records}
        found: list[Record] = []

        async def keep(chunk: Chunk) -> bool:
            found.extend(record for record in chunk.records if record.offset not in have)
            self.on_progress()  # a long span (aborted transactions) is not a stall
            return True

        await self.ranges.each_chunk(part.topic, part.partition, holes[0][0], holes[-1][1], keep)
        part.holes_read.update(holes)
        offsets = {record.offset for record in found}
        for start, end in holes:  # one with no record: markers, aborted records, or deleted
            if end - start > 1 and not any(start <= offset < end for offset in offsets):
                await self._report_deleted(part.topic, part.partition, start, end)
        if not found:
            return False
        log.warning(
            "%s partition %d: %d records missing between records of a batch (dropped by the "
            "consumer in a rebalance); read again from Kafka and applied in their place",
            part.topic,
            part.partition,
            len(found),
        )
        now_micros = int(self.clock() * MICROS_PER_SECOND)
        part.records += [
            (record, self._decode(record, part.channel, now_micros)) for record in found
        ]
        part.records.sort(key=lambda pair: pair[0].offset)
        part.recovered.update(record.offset for record in found)
        return True

    async def recover_range(
        self, topic: str, partition: int, start: int, end: int, stored: int | None
    ) -> int:
        """Read a partition's records from `start` up to `end` (excluded) from Kafka and
        apply them a chunk at a time (a long range is never held at once), moving the
        watermark over the offsets that held none (transaction markers, aborted records), so
        what was read stays read after a restart; returns how many records there were.
        `stored`: the partition's watermark in Redis when the range was chosen; every move
        checks it is still what this reading left. Offsets Kafka deleted before they were
        applied (retention) are reported. Stops early when another worker moved the
        watermark on (the partition is its own now); GapMoved when it went back (a Redis
        failover lost what was applied: read again from there). Raises what apply raises:
        nothing is moved over records that were not applied."""
        assert self.ranges is not None
        found, expected = 0, stored

        async def handle(chunk: Chunk) -> bool:
            nonlocal found, start, expected
            hole = chunk.records[0].offset if chunk.records else chunk.end
            if hole - start > 1:  # more than a transaction's marker: maybe deleted
                await self._report_deleted(topic, partition, start, hole)
            if not await self._advance(topic, partition, expected, hole - 1):
                return False
            expected = hole - 1
            if chunk.records:
                found += len(chunk.records)
                await self.recover(chunk.records)
                expected = chunk.records[-1].offset
            self.on_progress()
            start = chunk.end
            if not await self._advance(topic, partition, expected, chunk.end - 1):
                return False
            expected = chunk.end - 1
            return True

        await self.ranges.each_chunk(topic, partition, start, end, handle)
        return found

    async def _report_deleted(self, topic: str, partition: int, start: int, stop: int) -> None:
        """Say (log, metric) which offsets of [start, stop), found without records, Kafka
        deleted before they were applied: they are not counted."""
        assert self.ranges is not None
        first = await self.ranges.first(topic, partition, fresh=True)
        if first <= start:
            return  # aborted records, compacted away: nothing was lost
        unread = min(first, stop) - start
        log.error(
            "%s partition %d: offsets %d..%d were deleted by Kafka (retention) before they "
            "were applied; whatever they held is not counted",
            topic,
            partition,
            start,
            start + unread - 1,
        )
        self.metrics.unread.labels(self.metrics.label(self.channel_of(topic))).inc(unread)

    async def _advance(self, topic: str, partition: int, expected: int | None, offset: int) -> bool:
        """Move the partition's watermark from `expected` to `offset` (offsets found to hold
        no record; on a topic created again it may go down). False when another worker
        moved it on; GapMoved when it went back (a failover)."""
        channel = self.channel_of(topic)
        current = (await self.store.watermarks([(channel, topic, partition)]))[(topic, partition)]
        if current != expected:
            if expected is not None and (current is None or current < expected):
                raise GapMoved(f"{topic}:{partition} watermark went back to {current}")
            return False
        if current == offset:
            return True
        request = PartitionApply(channel, topic, partition, current, offset, BatchDelta())
        [result] = await self.store.apply([request])
        if result is not ApplyResult.OK:
            return False
        self.applied_offsets[(topic, partition)] = offset
        self.store.expect(channel, topic, partition, offset)
        return True

    def _gap_start(self, part: Partition, applied: int | None) -> int | None:
        """Where a partition's next record must be: after its watermark; with none (its
        state removed by `channel remove`, or never written), after the last record this
        process applied, else at the group's committed offset, else (None) at the
        partition's first record. So removed figures are not counted again, and the first
        records of a new channel are not lost."""
        if applied is not None:
            return applied + 1
        mine = self.applied_offsets.get((part.topic, part.partition))
        if mine is not None:
            return mine + 1
        return self.committed(part.topic, part.partition)

    def _decode(self, record: Record, channel: str, now_micros: int) -> DecodedRecord:
        return self.decoder.decode_record(
            record.value, channel, now_micros, len(record.key or b""), record.headers
        )

    async def _plan(
        self, part: Partition, state: PartitionState, applied: int | None, now_micros: int
    ) -> _Plan | None:
        """Fold a partition's records after `applied` and send their dead letters; None when
        another worker applied them all already."""
        fresh = [
            (record, decoded)
            for record, decoded in part.records
            if applied is None or record.offset > applied
        ]
        if len(fresh) < len(part.records) and not part.counted_redelivery:
            part.counted_redelivery = True
            label = self.metrics.label(part.channel)
            self.metrics.redelivered.labels(label).inc(len(part.records) - len(fresh))
        if not fresh:
            self.applied_offsets[(part.topic, part.partition)] = part.records[-1][0].offset
            return None
        origins = [
            (record, decoded, index)
            for record, decoded in fresh
            for index in range(len(decoded.events))
        ]
        events = [decoded.events[index] for _, decoded, index in origins]
        registered = state.registered or (
            bool(events) and await self.store.register_channel(part.channel, self.max_channels)
        )
        delta = BatchDelta()
        if registered:
            self.metrics.channel_known(part.channel)
            delta = self._fold(part, state, events, now_micros)
        label = part.channel if registered else UNREGISTERED
        letters = self.letters.compose(part, fresh, origins, delta, blocked=not registered)
        await self.letters.send(part, letters, label)
        if delta.facts and self.facts is not None:  # before the apply: see worker.customers
            await self.facts.send(
                part,
                [
                    (fact, Origin(part.topic, part.partition, origins[position][0].offset))
                    for position, fact in delta.facts
                ],
            )
        request = PartitionApply(
            part.channel,
            part.topic,
            part.partition,
            state.watermark,
            fresh[-1][0].offset,
            delta,
            digests=state.digests,
            marks_read=state.mark_token,
            guarded=state.guarded,
        )
        return _Plan(part, fresh, request, label)

    def _fold(
        self, part: Partition, state: PartitionState, events: list[SupportEvent], now: int
    ) -> BatchDelta:
        """The batch's delta. Folded without headroom checks first (fast); if one batch
        alone would add more than INT64_MAX to a sum, again with them (every sum assumed
        empty until the apply reads the real headroom), so no increment can overflow."""
        args = (events, state.states, state.seen, now, self.max_lateness_micros)
        delta = fold(*args, part.headroom)
        if part.headroom is None and any(
            amount > INT64_MAX
            for counters in delta.increments.values()
            for amount in counters.values()
        ):
            delta = fold(*args, {})
        return delta

    @staticmethod
    def _read_request(part: Partition) -> PartitionRead:
        conversations: dict[str, None] = {}
        marks: dict[tuple[str, str], None] = {}
        for _, decoded in part.records:
            for event in decoded.events:
                conversations[event.conversation_id] = None
                marks[(event.source, event.event_id)] = None
        return PartitionRead(
            part.channel, part.topic, part.partition, list(conversations), list(marks)
        )

    def _applied(self, plan: _Plan, now_micros: int) -> None:
        part, request = plan.part, plan.request
        self.applied_offsets[(part.topic, part.partition)] = request.new_watermark
        self.last_applied_monotonic = time.monotonic()
        metrics, label = self.metrics, plan.label
        recovered = sum(record.offset in part.recovered for record, _ in plan.fresh)
        if recovered:
            metrics.recovered.labels(label).inc(recovered)
        for (_, outcome), count in request.delta.outcomes.items():
            metrics.outcome(label, outcome, count)
        newest = self._newest_event_micros.get(part.channel)
        for _, decoded in plan.fresh:
            metrics.outcome(label, Outcome.IGNORED, decoded.ignored)
            newest = self._newest(decoded.events, newest, now_micros)
        if newest is not None and label != UNREGISTERED:
            self._newest_event_micros[part.channel] = newest
            metrics.last_event.labels(label).set(newest / MICROS_PER_SECOND)

    def _newest(
        self, events: Sequence[SupportEvent], newest: int | None, now_micros: int
    ) -> int | None:
        for event in events:
            if not is_late(event.time_micros, now_micros, self.max_lateness_micros):
                newest = max(newest or event.time_micros, event.time_micros)
        return newest


__all__ = ["BatchProcessor", "DeadLettersPending", "Prepared", "Record", "StateCorrupt"]

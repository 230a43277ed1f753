"""One batch of Kafka records through decode, state read, fold, dead letters and apply.

`BatchProcessor.process` returns only when every record was applied (or found applied by
another worker): while Redis is unreachable it retries and reports itself not ready, so the
caller never acknowledges a record whose effect is not in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.deadletter import DeadLetter, DeadLetterSink
from service.decode import DecodedRecord, Decoder
from service.domain.aggregate import Outcome, fold, is_late
from service.domain.events import MICROS_PER_SECOND
from service.metrics import WorkerMetrics
from service.state.store import PartitionApply, PartitionRead, StateStore

log = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class _Partition:
    """The records of one (topic, partition) in a batch, decoded once."""

    topic: str
    partition: int
    channel: str
    records: list[tuple[Record, DecodedRecord]] = field(default_factory=list)
    dead_lettered_through: int = -1
    """Highest offset whose dead letters were already sent by this call."""
    counted_redelivery: bool = False


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decoded batch, grouped by (topic, partition), ready to apply."""

    partitions: list[_Partition]


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
        clock: Callable[[], float] = time.time,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.decoder = decoder
        self.store = store
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.topic_prefix = topic_prefix
        self.max_lateness_micros = max_lateness_seconds * MICROS_PER_SECOND
        self.clock = clock
        self.max_backoff_seconds = max_backoff_seconds
        self.ready = True
        self.applied_offsets: dict[tuple[str, int], int] = {}
        """Last applied offset of each (topic, partition) this process has seen."""
        self._registered: set[str] = set()
        self._newest_event_micros: dict[str, int] = {}

    def channel_of(self, topic: str) -> str:
        return topic.removeprefix(self.topic_prefix)

    async def process(self, records: Sequence[Record]) -> None:
        """Apply `records` exactly once; retries until Redis has them all."""
        await self.apply(self.prepare(records))

    def prepare(self, records: Sequence[Record]) -> Prepared:
        """Decode a batch (CPU only, no I/O), once, before any attempt to apply it."""
        return Prepared(self._decode(records))

    async def apply(self, prepared: Prepared) -> None:
        """Apply a prepared batch exactly once; retries while Redis is unreachable, so it
        returns only when Redis holds every record's effect."""
        partitions = prepared.partitions
        backoff = 0.1
        while partitions:
            try:
                await self._register(partitions)
                partitions = await self._attempt(partitions)
            except UNREACHABLE as error:
                if self.ready:
                    log.warning("state store unreachable, pausing: %s", error)
                self._set_ready(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
                continue
            if not self.ready:
                log.warning("state store reachable again, resuming")
            self._set_ready(True)

    def _set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.metrics.state_store_up.set(1 if ready else 0)

    def _decode(self, records: Sequence[Record]) -> list[_Partition]:
        now_micros = int(self.clock() * MICROS_PER_SECOND)
        partitions: dict[tuple[str, int], _Partition] = {}
        for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
            channel = self.channel_of(record.topic)
            tp = (record.topic, record.partition)
            if tp not in partitions:
                partitions[tp] = _Partition(record.topic, record.partition, channel)
            partitions[tp].records.append(
                (record, self.decoder.decode_record(record.value, channel, now_micros))
            )
        return list(partitions.values())

    async def _register(self, partitions: Sequence[_Partition]) -> None:
        new = sorted({part.channel for part in partitions} - self._registered)
        if new:
            await self.store.register_channels(new)
            self._registered.update(new)

    async def _attempt(self, partitions: Sequence[_Partition]) -> list[_Partition]:
        """One read-fold-apply round; returns the partitions to try again (conflicts)."""
        started = time.perf_counter()
        reads = [self._read_request(part) for part in partitions]
        states = await self.store.read(reads)
        now_micros = int(self.clock() * MICROS_PER_SECOND)
        applies: list[tuple[_Partition, PartitionApply, list[tuple[Record, DecodedRecord]]]] = []
        for part, state in zip(partitions, states, strict=True):
            fresh = [
                (record, decoded)
                for record, decoded in part.records
                if state.watermark is None or record.offset > state.watermark
            ]
            if len(fresh) < len(part.records) and not part.counted_redelivery:
                part.counted_redelivery = True
                redelivered = len(part.records) - len(fresh)
                self.metrics.redelivered.labels(part.channel).inc(redelivered)
            if not fresh:
                self.applied_offsets[(part.topic, part.partition)] = part.records[-1][0].offset
                continue
            events = [event for _, decoded in fresh for event in decoded.events]
            delta = fold(events, state.states, state.seen, now_micros, self.max_lateness_micros)
            await self._send_dead_letters(part, fresh)
            request = PartitionApply(
                part.channel,
                part.topic,
                part.partition,
                state.watermark,
                fresh[-1][0].offset,
                delta,
                digests=state.digests,
            )
            applies.append((part, request, fresh))
        if not applies:
            return []
        results = await self.store.apply([request for _, request, _ in applies])
        retry = []
        for (part, request, fresh), applied in zip(applies, results, strict=True):
            if not applied:
                retry.append(part)
                continue
            self.applied_offsets[(part.topic, part.partition)] = request.new_watermark
            self._count(part.channel, request, fresh, now_micros)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        return retry

    @staticmethod
    def _read_request(part: _Partition) -> PartitionRead:
        conversations: dict[str, None] = {}
        marks: dict[tuple[str, str], None] = {}
        for _, decoded in part.records:
            for event in decoded.events:
                conversations[event.conversation_id] = None
                marks[(event.source, event.event_id)] = None
        return PartitionRead(
            part.channel, part.topic, part.partition, list(conversations), list(marks)
        )

    async def _send_dead_letters(
        self, part: _Partition, fresh: Sequence[tuple[Record, DecodedRecord]]
    ) -> None:
        letters = [
            DeadLetter(
                record.topic,
                record.partition,
                record.offset,
                record.key,
                rejection.reason,
                rejection.message,
                rejection.payload,
            )
            for record, decoded in fresh
            if record.offset > part.dead_lettered_through
            for rejection in decoded.rejections
        ]
        if letters:
            await self.dead_letters.send(letters)
        part.dead_lettered_through = max(part.dead_lettered_through, fresh[-1][0].offset)

    def _count(
        self,
        channel: str,
        request: PartitionApply,
        fresh: Sequence[tuple[Record, DecodedRecord]],
        now_micros: int,
    ) -> None:
        metrics = self.metrics
        for (_, outcome), count in request.delta.outcomes.items():
            metrics.outcome(channel, outcome, count)
        newest = self._newest_event_micros.get(channel)
        for _, decoded in fresh:
            metrics.outcome(channel, Outcome.IGNORED, decoded.ignored)
            metrics.outcome(channel, Outcome.DEAD_LETTERED, len(decoded.rejections))
            for rejection in decoded.rejections:
                metrics.dead_letters.labels(channel, rejection.reason.value).inc()
            for event in decoded.events:
                if not is_late(event.time_micros, now_micros, self.max_lateness_micros):
                    newest = max(newest or event.time_micros, event.time_micros)
        if newest is not None:
            self._newest_event_micros[channel] = newest
            metrics.last_event.labels(channel).set(newest / MICROS_PER_SECOND)

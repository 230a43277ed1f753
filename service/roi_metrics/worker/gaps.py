"""Records the consumer skipped, read again straight from Kafka.

A partition's watermark names the last offset applied; a batch must go on from the next one.
Faust can drop fetched records during a rebalance (its fetch loop stops at a flow stop or a
new generation, its stream skips events of an old generation, its read-offset filter drops
records below an offset it remembers) while aiokafka's position has already moved past
them: nothing would ever bring them back, and the next batch would move the watermark over
them. So when a batch's first fresh record is not the one after the watermark, the processor
asks a RangeReader for the records in between, a chunk at a time; and for the records
missing between two records of a batch. A gap with no records in
it is real (a transaction's marker, aborted or compacted records) and counts nothing; one
that retention deleted is reported (roi_metrics.worker.processor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError

from roi_metrics.worker.batch import Record, headers_of
from roi_metrics.worker.consumer import READ_COMMITTED

log = logging.getLogger(__name__)
READ_SECONDS: Final = 5.0
"""How long a read may go without its position moving before it gives up (the batch is
tried again later)."""
CHUNK_SECONDS: Final = 1.0
"""A chunk is handed over at least this often, records or not: the caller shows progress
and keeps what was read (a long range of aborted records is read once, not at every try)."""
POLL_MS: Final = 100
"""How long one fetch waits for records (a range of transaction markers has none)."""
FIRST_OFFSET_SECONDS: Final = 10.0
"""How long a partition's first offset is taken as known (it only grows)."""

UNDECODABLE: Final = (UnicodeError, UnsupportedCodecError, CorruptRecordException)
"""What aiokafka raises for one record it cannot decode (a header name that is not UTF-8, a
codec it lacks, a corrupt batch): stepped over, as the worker's consumer does."""


class RangeUnreadable(Exception):
    """Kafka did not hand over the range (retry the batch later)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    records: list[Record]
    """The records found, in offset order."""
    end: int
    """Every offset before this one is read (to the range's end at most)."""


class RangeReader:
    """A consumer of no group, started on first use, reading one partition range at a time
    (committed records only, as the worker's consumer reads them)."""

    def __init__(
        self,
        client_options: dict[str, Any],
        seconds: float = READ_SECONDS,
        max_records: int = 2_000,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.client_options = client_options
        self.seconds = seconds
        self.max_records = max_records
        self.max_bytes = max_bytes
        """A chunk holds at most max_records records and, past max_bytes of keys and
        values, no further record."""
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        """Held while a range is read (one position, one range at a time)."""
        self._starting = asyncio.Lock()
        self._firsts: dict[TopicPartition, tuple[int, float]] = {}
        self._ends: dict[TopicPartition, tuple[int, float]] = {}

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Every record of [start, end) at once (a short range: see each_chunk)."""
        found: list[Record] = []

        async def keep(chunk: Chunk) -> bool:
            found.extend(chunk.records)
            return True

        await self.each_chunk(topic, partition, start, end, keep)
        return found

    async def each_chunk(
        self,
        topic: str,
        partition: int,
        start: int,
        end: int,
        handle: Callable[[Chunk], Awaitable[bool]],
    ) -> None:
        """Hand the records of [start, end) to `handle` in chunks (at most max_records, about
        max_bytes, at least one every CHUNK_SECONDS) until it answers False; one seek for
        the whole range. A record this client cannot decode (the worker's consumer skips
        and dead-letters it) is stepped over. RangeUnreadable when Kafka stops handing the
        range over (its position still for `seconds`, or any other error); what `handle`
        raises passes through."""
        tp = TopicPartition(topic, partition)
        async with self._lock:
            while start < end:
                try:
                    chunk = await self._chunk(tp, start, end)
                except RangeUnreadable:
                    raise
                except Exception as error:
                    raise RangeUnreadable(
                        f"{topic}:{partition} offsets {start}..{end - 1}: {error}"
                    ) from error
                if not await handle(chunk):
                    return
                start = chunk.end

    async def first(self, topic: str, partition: int, fresh: bool = False) -> int:
        """The partition's first offset (where retention left it), as known for at most
        FIRST_OFFSET_SECONDS unless `fresh`. RangeUnreadable when Kafka does not say. Takes
        no lock: it may be asked while a chunk is handled."""
        return await self._known(self._firsts, "first", topic, partition, fresh)

    async def end(self, topic: str, partition: int, fresh: bool = False) -> int:
        """The partition's end offset (the next record's), as known for at most
        FIRST_OFFSET_SECONDS unless `fresh` (it only grows: a known one is a lower bound).
        RangeUnreadable when Kafka does not say. Takes no lock, as `first`."""
        return await self._known(self._ends, "end", topic, partition, fresh)

    async def _known(
        self,
        known: dict[TopicPartition, tuple[int, float]],
        which: str,
        topic: str,
        partition: int,
        fresh: bool,
    ) -> int:
        """The partition's first or end offset, from `known` while recent, else from Kafka."""
        tp = TopicPartition(topic, partition)
        held = known.get(tp)
        if not fresh and held is not None and time.monotonic() - held[1] < FIRST_OFFSET_SECONDS:
            return held[0]
        try:
            consumer = await self._started()
            ask = consumer.beginning_offsets if which == "first" else consumer.end_offsets
            offsets = await asyncio.wait_for(ask([tp]), self.seconds)
        except Exception as error:
            raise RangeUnreadable(f"{topic}:{partition}: no {which} offset: {error}") from error
        offset = int(offsets[tp])
        known[tp] = (offset, time.monotonic())
        return offset

    async def _chunk(self, tp: TopicPartition, start: int, end: int) -> Chunk:
        """The next chunk of [start, end). The consumer is sought only when it is not at
        `start` already (the chunk before ended there)."""
        consumer = await self._started()
        if consumer.assignment() != {tp}:
            consumer.assign([tp])
            consumer.seek(tp, start)
        elif await self._position(consumer, tp) != start:
            consumer.seek(tp, start)
        found: list[Record] = []
        size, position = 0, start
        moved = began = time.monotonic()
        one_by_one = False  # after a record failed to decode: find it, one record at a time
        while (now := await self._position(consumer, tp)) < end:
            if now != position:
                position, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.seconds:
                raise RangeUnreadable(f"no progress for {self.seconds:.0f} s at offset {position}")
            full = len(found) >= self.max_records or size >= self.max_bytes
            if full or (position > start and time.monotonic() - began >= CHUNK_SECONDS):
                return Chunk(found, position)
            wanted = 1 if one_by_one else self._wanted(end - position, len(found), size)
            try:
                fetched = await consumer.getmany(tp, timeout_ms=POLL_MS, max_records=wanted)
            except UNDECODABLE as error:  # the records fetched with it are lost: again
                consumer._fetcher._records.pop(tp, None)  # its iterator died with it
                if one_by_one:
                    log.error(
                        "%s:%d@%d cannot be read (%s)", tp.topic, tp.partition, position, error
                    )
                    consumer.seek(tp, position + 1)
                    one_by_one = False
                else:
                    consumer.seek(tp, position)
                    one_by_one = True
                continue
            for record in fetched.get(tp, []):
                if start <= record.offset < end:
                    found.append(
                        Record(
                            tp.topic,
                            tp.partition,
                            record.offset,
                            record.key,
                            record.value,
                            headers_of(record.headers),
                        )
                    )
                    size += len(record.key or b"") + len(record.value or b"")
        return Chunk(found, end)

    def _wanted(self, left: int, count: int, size: int) -> int:
        """How many records to take next: what fits under max_records and, at the average
        size so far, under max_bytes (one record first, to learn the size)."""
        room = min(left, self.max_records - count)
        if not count:
            return 1
        return max(1, min(room, (self.max_bytes - size) * count // size if size else room))

    async def _position(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        try:
            position: int = await asyncio.wait_for(consumer.position(tp), self.seconds)
        except TimeoutError:
            raise RangeUnreadable(f"no position in {self.seconds:.0f} s") from None
        return position

    async def _started(self) -> AIOKafkaConsumer:
        async with self._starting:
            if self._consumer is None:
                consumer = AIOKafkaConsumer(
                    enable_auto_commit=False,
                    isolation_level=READ_COMMITTED,
                    auto_offset_reset="earliest",
                    **self.client_options,
                )
                await consumer.start()
                self._consumer = consumer
            return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

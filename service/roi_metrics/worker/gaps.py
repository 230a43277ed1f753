"""Records the consumer skipped, read again straight from Kafka.

A partition's watermark names the last offset applied; a batch must go on from the next one.
Faust can drop fetched records during a rebalance (its fetch loop stops at a flow stop or a
new generation, its stream skips events of an old generation, its read-offset filter drops
records below an offset it remembers) while aiokafka's position has already moved past
them: nothing would ever bring them back, and the next batch would move the watermark over
them. So when a batch's first fresh record is not the one after the watermark, the processor
asks a RangeReader for the records in between. A gap with no records in it is real (a
transaction's marker, aborted or compacted records, retention) and counts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError

from roi_metrics.worker.batch import Record, headers_of
from roi_metrics.worker.consumer import READ_COMMITTED

log = logging.getLogger(__name__)
READ_SECONDS: Final = 5.0
"""How long one range may take to read before the batch is tried again later."""


UNDECODABLE: Final = (UnicodeError, UnsupportedCodecError, CorruptRecordException)
"""What aiokafka raises for one record it cannot decode (a header name that is not UTF-8, a
codec it lacks, a corrupt batch): stepped over, as the worker's consumer does."""


class RangeUnreadable(Exception):
    """Kafka did not hand over the range (retry the batch later)."""


class RangeReader:
    """A consumer of no group, started on first use, reading one partition range at a time
    (committed records only, as the worker's consumer reads them)."""

    def __init__(self, client_options: dict[str, Any], seconds: float = READ_SECONDS) -> None:
        self.client_options = client_options
        self.seconds = seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records of [start, end). A record this client cannot decode (the worker's
        consumer skips and dead-letters it) is stepped over. RangeUnreadable when Kafka does
        not hand the range over (no progress for `seconds`, or any other error)."""
        async with self._lock:
            try:
                return await self._read(TopicPartition(topic, partition), start, end)
            except RangeUnreadable:
                raise
            except Exception as error:
                raise RangeUnreadable(
                    f"{topic}:{partition} offsets {start}..{end - 1}: {error}"
                ) from error

    async def first(self, topic: str, partition: int) -> int:
        """The partition's first offset (where retention left it). RangeUnreadable when
        Kafka does not say."""
        async with self._lock:
            tp = TopicPartition(topic, partition)
            try:
                consumer = await self._started()
                offsets = await asyncio.wait_for(consumer.beginning_offsets([tp]), self.seconds)
            except Exception as error:
                raise RangeUnreadable(f"{topic}:{partition}: no first offset: {error}") from error
            return int(offsets[tp])

    async def _read(self, tp: TopicPartition, start: int, end: int) -> list[Record]:
        consumer = await self._started()
        consumer.assign([tp])
        consumer.seek(tp, start)
        found: list[Record] = []
        deadline = time.monotonic() + self.seconds
        one_by_one = False  # after a record failed to decode: find it, one record at a time
        while (position := await self._position(consumer, tp)) < end:
            if time.monotonic() > deadline:
                raise RangeUnreadable(f"no progress for {self.seconds:.0f} s at offset {position}")
            wanted = 1 if one_by_one else end - position
            try:
                fetched = await consumer.getmany(tp, timeout_ms=500, max_records=wanted)
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
            if fetched.get(tp):
                deadline = time.monotonic() + self.seconds
        return found

    async def _position(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        try:
            position: int = await asyncio.wait_for(consumer.position(tp), self.seconds)
        except TimeoutError:
            raise RangeUnreadable(f"no position in {self.seconds:.0f} s") from None
        return position

    async def _started(self) -> AIOKafkaConsumer:
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

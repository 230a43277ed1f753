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

from roi_metrics.worker.batch import Record, headers_of
from roi_metrics.worker.consumer import READ_COMMITTED

log = logging.getLogger(__name__)
READ_SECONDS: Final = 5.0
"""How long one range may take to read before the batch is tried again later."""


class RangeUnreadable(Exception):
    """Kafka did not hand over the range in time (retry the batch later)."""


class RangeReader:
    """A consumer of no group, started on first use, reading one partition range at a time
    (committed records only, as the worker's consumer reads them)."""

    def __init__(self, client_options: dict[str, Any], seconds: float = READ_SECONDS) -> None:
        self.client_options = client_options
        self.seconds = seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def read(self, topic: str, partition: int, start: int | None, end: int) -> list[Record]:
        """The records of [start, end) (start None: from the partition's first record).
        A record this client cannot read (the worker's consumer skips and dead-letters it)
        is stepped over. RangeUnreadable when Kafka does not hand the range over in time."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            if start is None:
                start = (await consumer.beginning_offsets([tp]))[tp]
            if start >= end:
                return []
            consumer.seek(tp, start)
            found: list[Record] = []
            deadline = time.monotonic() + self.seconds
            one_by_one = False  # after a failure: find the record that cannot be read
            while (position := await consumer.position(tp)) < end:
                if time.monotonic() > deadline:
                    raise RangeUnreadable(f"{topic}:{partition} offsets {start}..{end - 1}")
                wanted = 1 if one_by_one else end - position
                try:
                    fetched = await consumer.getmany(tp, timeout_ms=500, max_records=wanted)
                except Exception as error:  # the records fetched with it are lost: again
                    consumer._fetcher._records.pop(tp, None)  # its iterator died with it
                    if one_by_one:
                        log.error("%s:%d@%d cannot be read (%s)", topic, partition, position, error)
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
                                topic,
                                partition,
                                record.offset,
                                record.key,
                                record.value,
                                headers_of(record.headers),
                            )
                        )
            return found

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

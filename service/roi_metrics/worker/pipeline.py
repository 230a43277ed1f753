"""From Faust's stream to Redis, acknowledging only what was applied.

The agent pumps events into a Batcher (batches bounded by records, bytes and time); the
applier takes each batch, applies it, then acknowledges its events, so Faust never commits
an offset whose effect is not in Redis: a batch interrupted by a stop, a crash or a bug is
read again by the next worker and applied once thanks to the partition watermark.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from roi_metrics.ingest.binary import header_bytes
from roi_metrics.worker.batch import header_pairs, headers_of
from roi_metrics.worker.batching import Batcher
from roi_metrics.worker.liveness import Watch
from roi_metrics.worker.processor import BatchProcessor, Record

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS: Final = 30.0

Ack = Callable[[Any], Awaitable[Any]]


def records_of(events: Sequence[Any]) -> list[Record]:
    """Faust events as plain records."""
    return [
        Record(
            e.message.topic,
            e.message.partition,
            e.message.offset,
            e.message.key,
            e.message.value,
            headers_of(e.message.headers),
        )
        for e in events
    ]


def record_bytes(event: Any) -> int:
    """What one Faust event's record weighs in a batch: key, value and headers (read as
    they are: the pump weighs every event, and most have no headers)."""
    message = event.message
    size = len(message.value or b"") + len(message.key or b"")
    return size + (header_bytes(header_pairs(message.headers)) if message.headers else 0)


async def apply_then_ack(processor: BatchProcessor, events: Sequence[Any], ack: Ack) -> None:
    """Apply a batch, then acknowledge its events. While Redis is away the processor retries;
    a failure of another kind (Kafka refusing dead letters, a corrupt sum, a bug) is retried
    here with back-off while the partition waits: the watchdog (worker.liveness) stops the
    worker if it lasts. Cancelled before the apply returned, nothing is acknowledged."""
    prepared = processor.prepare(records_of(events))
    backoff = 1.0
    while True:
        try:
            await processor.apply(prepared)
            break
        except Exception as error:
            if backoff == 1.0:  # the first failure with its traceback, then one line each
                log.exception("batch failed; retrying in %.0f s", backoff)
            else:
                log.warning("batch failed (%s); retrying in %.0f s", _short(error), backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
    for event in events:
        await ack(event)


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


async def applier(batcher: Batcher[Any], processor: BatchProcessor, ack: Ack, watch: Watch) -> None:
    """Take batches from `batcher` and apply them, one after the other, forever."""
    while True:
        events = await batcher.take()
        watch.took(time.monotonic(), {(e.message.topic, e.message.partition) for e in events})
        await apply_then_ack(processor, events, ack)
        watch.applied(time.monotonic())

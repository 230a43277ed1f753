"""From a Faust batch to Redis, acknowledging only what was applied.

Events are acknowledged to Faust only after their batch is applied, so Faust never commits
an offset whose effect is not in Redis: a batch interrupted by a stop, a crash or a bug is
read again by the next worker and applied once thanks to the partition watermark.

Decoding the next batch while the previous one is applied was tried (a background applier
task): on 2 cores shared with Kafka and Redis it gained nothing and held more batches in
memory (docs/performance.md), so batches are applied one after the other, in the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from service.processor import BatchProcessor, Record

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS: Final = 30.0

Ack = Callable[[Any], Awaitable[Any]]


def records_of(events: Sequence[Any]) -> list[Record]:
    """Faust events as plain records."""
    return [
        Record(
            e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value
        )
        for e in events
    ]


async def apply_then_ack(processor: BatchProcessor, events: Sequence[Any], ack: Ack) -> None:
    """Apply a batch, then acknowledge its events. While Redis is away the processor retries;
    a failure of another kind (a bug) is retried here with back-off, the partition waiting and
    the worker reported not ready. Cancelled before the apply returned, nothing is
    acknowledged."""
    prepared = processor.prepare(records_of(events))
    backoff = 1.0
    while True:
        try:
            await processor.apply(prepared)
            break
        except Exception:
            log.exception("batch failed; retrying in %.0f s (the partition waits)", backoff)
            processor.ready = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
    for event in events:
        await ack(event)

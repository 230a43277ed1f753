"""Two stages between Faust and Redis: the agent decodes batch N+1 while batch N is applied.

Events are acknowledged to Faust only after their batch is applied, so Faust never commits
an offset whose effect is not in Redis: a batch interrupted by a stop, a crash or a bug is
read again by the next worker and applied once thanks to the partition watermark. Applies
run one at a time, in arrival order, which the watermarks require.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from service.processor import BatchProcessor, Prepared, Record

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


class ApplyPipeline:
    """Decode in the caller, apply in one background task, acknowledge after applying.

    `submit` returns once the batch is queued; at most `depth` batches wait behind the one
    being applied, so memory stays bounded while Redis is slow or away.
    """

    def __init__(self, processor: BatchProcessor, ack: Ack, depth: int = 1) -> None:
        self.processor = processor
        self.ack = ack
        self.queue: asyncio.Queue[tuple[Prepared, Sequence[Any]]] = asyncio.Queue(depth)
        self.task = asyncio.ensure_future(self._apply_forever())

    async def submit(self, events: Sequence[Any]) -> None:
        prepared = self.processor.prepare(records_of(events))
        await self.queue.put((prepared, events))

    async def close(self) -> None:
        """Stop applying; whatever was not applied stays unacknowledged, hence uncommitted."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _apply_forever(self) -> None:
        while True:
            prepared, events = await self.queue.get()
            await self._apply(prepared)
            for event in events:
                await self.ack(event)

    async def _apply(self, prepared: Prepared) -> None:
        """Apply, retrying a failure that is not Redis being away (a bug) with back-off: the
        partition waits, reported not ready, and nothing is lost."""
        backoff = 1.0
        while True:
            try:
                await self.processor.apply(prepared)
                return
            except Exception:
                log.exception("batch failed; retrying in %.0f s (the partition waits)", backoff)
                self.processor.ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

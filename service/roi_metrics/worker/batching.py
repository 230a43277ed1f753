"""Batches bounded by records, bytes and time, handed from the stream to the applier.

The agent pumps events in; the applier takes a batch when it holds `max_records` records
or `max_bytes` bytes (keys, values and headers), or `within` seconds after its first
record. While a full batch waits to be taken, the pump waits too, so at most two batches
are in memory at once: the one being applied and the one filling (plus the one record that
filled it, which may be larger than the rest: a single record is never split).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, max_records: int, max_bytes: int, within_seconds: float) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.within_seconds = within_seconds
        self._filling: list[T] = []
        self._bytes = 0
        self._first_at: float | None = None
        self._full = asyncio.Event()
        self._taken = asyncio.Event()
        self._taken.set()

    @property
    def filling(self) -> list[T]:
        """The records of the batch being filled (read only)."""
        return self._filling

    async def add(self, item: T, size: int) -> None:
        """Add one record of `size` bytes; waits while a full batch is not taken yet."""
        if not self._taken.is_set():
            await self._taken.wait()
        if self._first_at is None:
            self._first_at = asyncio.get_running_loop().time()
        self._filling.append(item)
        self._bytes += size
        if len(self._filling) >= self.max_records or self._bytes >= self.max_bytes:
            self._taken.clear()
            self._full.set()
            await self._taken.wait()

    async def take(self) -> list[T]:
        """The next batch: once full, or `within_seconds` after its first record."""
        loop = asyncio.get_running_loop()
        while True:
            first_at = self._first_at
            if first_at is not None and (
                self._full.is_set() or loop.time() - first_at >= self.within_seconds
            ):
                return self._swap()
            timeout = self.within_seconds
            if first_at is not None:
                timeout = max(0.0, first_at + self.within_seconds - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout)

    def _swap(self) -> list[T]:
        batch, self._filling = self._filling, []
        self._bytes, self._first_at = 0, None
        self._full.clear()
        self._taken.set()
        return batch

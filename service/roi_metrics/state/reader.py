"""The exporter's view of Redis: every channel's counters for every window.

A window sums the last N buckets of its resolution (CONTRACT.md §6). Buckets older than the
one before the current one are *closed*: only late events still write there, and every
apply that does replaces the channel's closed-writes token (roi_metrics/state/keys.py). So the
reader keeps each window's sum of closed buckets between scrapes and, per scrape and
channel, has Redis sum only the last HOT buckets of each window, plus the closed part of a
window that slid (a minute, hour or day turned) or of every window when the token changed
(roi_metrics/state/windows.lua). And a channel none of whose buckets was written since the
last scrape (the apply script replaces its bucket-writes token at every write), while no
window slid, costs one small reply: its sums stand. One pipelined round trip per scrape.

The exporter's and the workers' clocks may differ by up to one bucket of the finest
resolution (a minute) without a stale figure: a bucket closes for the reader two buckets
after its start, for a worker one bucket after.

Synchronous on purpose: prometheus-client calls collectors from its HTTP server's threads
(a lock serialises scrapes over the cache).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

import redis

from roi_metrics.domain.events import Counter
from roi_metrics.domain.report import Snapshot
from roi_metrics.domain.timebuckets import ROLLING_WINDOWS, RollingWindow, Window
from roi_metrics.state import keys
from roi_metrics.state.scripts import Script, execute_sync

WINDOWS: Final = Script(resources.files("roi_metrics.state").joinpath("windows.lua").read_text())
COUNTERS: Final = {counter.value: counter for counter in Counter}
FIELDS: Final = tuple(Counter)
HOT: Final = 3
"""Buckets of each resolution read at every scrape: the current one and the two before."""
Values = tuple[int, ...]
"""Counters in FIELDS order."""


@dataclass(frozen=True, slots=True)
class _Part:
    """A run of consecutive buckets of one resolution."""

    first: int
    count: int


Parts = dict[RollingWindow, tuple[_Part, _Part]]
"""Each window's hot and closed parts at a scrape's clock."""
Counts = dict[Window, dict[Counter, int]]


@dataclass(slots=True)
class _ChannelCache:
    closed_writes: bytes = b""
    closed: dict[Window, tuple[_Part, Values]] = field(default_factory=dict)
    bucket_writes: bytes = b""
    """The bucket-writes token `counts` were read at ('' = none)."""
    parts: Parts | None = None
    """The parts `counts` are sums of."""
    counts: Counts | None = None
    """The last scrape's sums of every window."""


def _values(raw: Sequence[bytes]) -> Values:
    return tuple(int(value) for value in raw)


def _counts(values: Sequence[int]) -> dict[Counter, int]:
    """Counters as a dict; zeros left out, as in a bucket hash."""
    return {counter: value for counter, value in zip(FIELDS, values, strict=True) if value}


def _parts(rolling: RollingWindow, now_seconds: int) -> tuple[_Part, _Part]:
    """The window's hot part (its last HOT buckets) and closed part (the older ones)."""
    starts = rolling.bucket_starts(now_seconds)
    closed = len(starts) - HOT
    return _Part(starts[closed], HOT), _Part(starts[0], closed)


class StateReader:
    def __init__(self, client: redis.Redis | redis.RedisCluster) -> None:
        self.client = client
        self._channels: list[str] = []
        self._caches: dict[str, _ChannelCache] = {}
        self._lock = threading.Lock()

    def snapshot(self, now_seconds: int) -> Snapshot:
        """Every channel's window sums at `now_seconds`: one round trip with the channels
        known from the last scrape (the channel set is read in the same pipeline), a second
        one only when a channel appeared or went."""
        with self._lock:
            parts = {rolling: _parts(rolling, now_seconds) for rolling in ROLLING_WINDOWS}
            known, counts = self._read(parts)
            if set(known) != set(self._channels):
                self._channels = sorted(known)
                self._caches = {c: self._caches.get(c, _ChannelCache()) for c in self._channels}
                known, counts = self._read(parts)
            return Snapshot(now_seconds, counts)

    def _read(self, parts: Parts) -> tuple[list[str], dict[str, Counts]]:
        commands = [("SMEMBERS", keys.CHANNELS)]
        for channel in self._channels:
            cache = self._caches[channel]
            prefix = keys.bucket_prefix(channel)
            seen = cache.bucket_writes if cache.parts == parts else b""
            args: list[Any] = [prefix, cache.closed_writes, seen, len(FIELDS), *FIELDS]
            for rolling, (hot, closed) in parts.items():
                kept = cache.closed.get(rolling.window)
                args += [
                    rolling.resolution.name,
                    rolling.resolution.seconds,
                    hot.first,
                    hot.count,
                    closed.first,
                    closed.count,
                    "0" if kept is not None and kept[0] == closed else "1",
                ]
            script_keys = [
                keys.bucket(channel, ("all", 0)),
                keys.closed_writes(channel),
                keys.bucket_writes(channel),
            ]
            commands.append(WINDOWS.command(script_keys, args))
        replies = execute_sync(self.client, commands, [WINDOWS])
        known = sorted(member.decode() for member in replies[0])
        counts = {
            channel: self._windows(self._caches[channel], parts, reply)
            for channel, reply in zip(self._channels, replies[1:], strict=True)
        }
        return known, counts

    @staticmethod
    def _windows(cache: _ChannelCache, parts: Parts, reply: list[Any]) -> Counts:
        if len(reply) == 2 and cache.counts is not None:  # no bucket written since: they stand
            return cache.counts
        writes, token, cumulative, *sums = reply
        if writes != cache.closed_writes:  # the script summed every closed part again
            cache.closed_writes = writes
            cache.closed = {}
        per_window: Counts = {}
        for index, (rolling, (_, closed)) in enumerate(parts.items()):
            hot, fresh = _values(sums[2 * index]), sums[2 * index + 1]
            if fresh:
                cache.closed[rolling.window] = (closed, _values(fresh))
            kept = cache.closed[rolling.window][1]
            per_window[rolling.window] = _counts([a + b for a, b in zip(hot, kept, strict=True)])
        flat = dict(zip(cumulative[::2], cumulative[1::2], strict=True))
        per_window[Window.ALL] = {
            COUNTERS[name]: int(value)
            for name, value in ((k.decode(), v) for k, v in flat.items())
            if name in COUNTERS and value.isdigit()  # anything else counts as 0, as in windows.lua
        }
        cache.bucket_writes, cache.parts, cache.counts = token, parts, per_window
        return per_window

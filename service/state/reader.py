"""The exporter's view of Redis: every channel's counters for every window, read in one
pipelined round trip per scrape (one small script per channel sums its buckets in Redis).

Synchronous on purpose: prometheus-client calls collectors from its HTTP server's threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

import redis

from service.domain.events import Counter
from service.domain.timebuckets import ROLLING_WINDOWS, Window
from service.state import keys

WINDOWS_SCRIPT: Final = resources.files("service.state").joinpath("windows.lua").read_text()
COUNTERS: Final = {counter.value: counter for counter in Counter}
FIELDS: Final = tuple(Counter)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters of every known channel in every window, at `now_seconds`."""

    now_seconds: int
    counts: dict[str, dict[Window, dict[Counter, int]]]


def _bucket_suffixes(now_seconds: int) -> list[str | int]:
    """The script's arguments after the prefix: the counters, then each window's buckets."""
    args: list[str | int] = [len(FIELDS), *FIELDS]
    for rolling in ROLLING_WINDOWS:
        starts = rolling.bucket_starts(now_seconds)
        args.append(len(starts))
        args.extend(f"{rolling.resolution.name}:{start}" for start in starts)
    return args


def _parse(totals: Sequence[bytes]) -> dict[Counter, int]:
    """The script's totals, in FIELDS order; zeros are left out, as in a bucket hash."""
    return {
        counter: int(total) for counter, total in zip(FIELDS, totals, strict=True) if total != b"0"
    }


class StateReader:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._windows = client.register_script(WINDOWS_SCRIPT)
        self._channels: list[str] = []

    def snapshot(self, now_seconds: int) -> Snapshot:
        """One round trip with the channels known from the last scrape (the channel set is
        read in the same pipeline); a second one only when a new channel appeared."""
        channels, sums = self._read(self._channels, now_seconds)
        if set(channels) != set(self._channels):
            self._channels = sorted(channels)
            channels, sums = self._read(self._channels, now_seconds)
        return Snapshot(now_seconds, sums)

    def _read(
        self, channels: list[str], now_seconds: int
    ) -> tuple[list[str], dict[str, dict[Window, dict[Counter, int]]]]:
        suffixes = _bucket_suffixes(now_seconds)
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.CHANNELS)
        for channel in channels:
            pipe.hgetall(keys.bucket(channel, ("all", 0)))
            self._windows(
                keys=[keys.bucket(channel, ("all", 0))],
                args=[f"roi:{{{channel}}}:b:", *suffixes],
                client=pipe,
            )
        replies = pipe.execute()
        known = sorted(member.decode() for member in replies[0])
        sums: dict[str, dict[Window, dict[Counter, int]]] = {}
        for index, channel in enumerate(channels):
            cumulative, windows = replies[1 + 2 * index], replies[2 + 2 * index]
            per_window = {
                rolling.window: _parse(flat)
                for rolling, flat in zip(ROLLING_WINDOWS, windows, strict=True)
            }
            per_window[Window.ALL] = {
                COUNTERS[k.decode()]: int(v)
                for k, v in cumulative.items()
                if k.decode() in COUNTERS
            }
            sums[channel] = per_window
        return known, sums

"""UTC-aligned buckets (1 minute, 1 hour, 1 day) and the rolling windows summed from them.

A window at clock t sums the last N buckets of one resolution, the bucket holding t included
(CONTRACT.md §6). Bucket starts are Unix seconds; every bucket is aligned to UTC because the
epoch is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Resolution:
    """A bucket size and how many buckets of it must be kept for the windows that read it."""

    name: str
    seconds: int
    retained_buckets: int

    def bucket_start(self, unix_seconds: int) -> int:
        """The start of the bucket that holds `unix_seconds` (floor, also for negatives)."""
        return unix_seconds - unix_seconds % self.seconds

    def expires_at(self, bucket_start: int) -> int:
        """Unix seconds after which no window can read the bucket any more."""
        return bucket_start + self.seconds * (self.retained_buckets + 1)


# Each ring keeps its longest window's buckets plus slack for clock skew between processes.
MINUTE = Resolution("m", 60, 60 + 5)
HOUR = Resolution("h", 3600, 24 + 1)
DAY = Resolution("d", 86400, 30 + 1)
RESOLUTIONS = (MINUTE, HOUR, DAY)


class Window(StrEnum):
    """The exported windows (CONTRACT.md §6)."""

    HOUR_1 = "1h"
    HOURS_24 = "24h"
    DAYS_7 = "7d"
    DAYS_30 = "30d"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class RollingWindow:
    """A window summed from the last `buckets` buckets of `resolution`."""

    window: Window
    resolution: Resolution
    buckets: int

    @property
    def nominal_seconds(self) -> int:
        """The length fixed costs are prorated by."""
        return self.resolution.seconds * self.buckets

    def bucket_starts(self, now_seconds: int) -> list[int]:
        """Starts of the buckets summed at `now_seconds`, oldest first, current one last."""
        current = self.resolution.bucket_start(now_seconds)
        step = self.resolution.seconds
        return [current - step * back for back in range(self.buckets - 1, -1, -1)]


ROLLING_WINDOWS = (
    RollingWindow(Window.HOUR_1, MINUTE, 60),
    RollingWindow(Window.HOURS_24, HOUR, 24),
    RollingWindow(Window.DAYS_7, DAY, 7),
    RollingWindow(Window.DAYS_30, DAY, 30),
)
ROLLING_BY_WINDOW = {rolling.window: rolling for rolling in ROLLING_WINDOWS}

"""Honest liveness: when the worker stops counting, it says so and exits.

A Faust agent that crashes leaves the process up and its web server answering, so
readiness cannot be "the process answers". The watchdog decides from what the agent
reports (a batch taken, a batch applied) and what the lag timer measures:

- the agent or its applier is no longer running (a bug escaped): stalled at once;
- the applier has held one batch for `stall_seconds` while Redis answers (the apply keeps
  failing: Redis out of memory, Kafka refusing dead letters, a corrupt sum);
- records wait in an assigned partition beyond what the consumer fetched, and nothing
  reached the applier for `stall_seconds` (the fetcher is stuck);
- the Kafka consumer has not answered the lag queries for `stall_seconds` plus
  QUERY_TIMEOUT_SECONDS (its thread is wedged). Answering with an error counts as an answer:
  Kafka being away is not a stall of this process.

While Redis is unreachable the worker is not ready but not stalled: it waits for Redis
(and `support_state_store_up` says so). A stalled worker answers 503 on /readyz, logs one
line and exits with EXIT_STALLED so that a supervisor restarts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

EXIT_STALLED: Final = 70
"""EX_SOFTWARE: the worker stopped counting and exited to be restarted."""
QUERY_TIMEOUT_SECONDS: Final = 20.0
"""Beyond the stall time, how long the consumer may take to answer the lag queries."""


@dataclass(slots=True)
class Watch:
    """What the watchdog knows; times are monotonic seconds."""

    stall_seconds: float
    started: float
    holding_since: float | None = None
    """When the applier took the batch it still holds (None: idle)."""
    holding: set[tuple[str, int]] = field(default_factory=set)
    """The (topic, partition) of the records of that batch."""
    last_progress: float = 0.0
    """The last batch taken or applied, the start, or the last rebalance."""
    behind_since: float | None = None
    """Since when some partition has records the consumer did not fetch."""
    last_answer: float = 0.0
    """The last time the consumer answered the lag queries (with figures or an error)."""
    stalled: str | None = None

    def __post_init__(self) -> None:
        self.last_progress = self.last_answer = self.started

    def answered(self, now: float) -> None:
        self.last_answer = now

    def took(self, now: float, partitions: set[tuple[str, int]]) -> None:
        self.holding_since, self.holding = now, partitions
        self.last_progress = now

    def progress(self, now: float) -> None:
        """Part of a long batch is done (dead letters sent): it is moving, not stalled."""
        if self.holding_since is not None:
            self.holding_since = now
        self.last_progress = now

    def applied(self, now: float) -> None:
        self.holding_since, self.holding = None, set()
        self.last_progress = now

    def rebalanced(self, now: float) -> None:
        """A rebalance pauses consumption; it is not a stall."""
        self.last_progress = now
        self.behind_since = None

    def check(self, now: float, *, running: bool, store_up: bool, fetch_behind: bool) -> str | None:
        """The reason the worker is stalled, or None; once stalled, it stays stalled."""
        if self.stalled is None:
            self.stalled = self._verdict(now, running, store_up, fetch_behind)
        return self.stalled

    def _verdict(self, now: float, running: bool, store_up: bool, fetch_behind: bool) -> str | None:
        if not running:
            return "the agent stopped consuming"
        silent = now - self.last_answer
        if silent > self.stall_seconds + QUERY_TIMEOUT_SECONDS:
            return f"the Kafka consumer has not answered for {silent:.0f} s"
        if self.holding_since is not None and store_up:
            held = now - self.holding_since
            if held > self.stall_seconds:
                return f"one batch has not been applied for {held:.0f} s"
        if not fetch_behind:
            self.behind_since = None
            return None
        if self.behind_since is None:
            self.behind_since = now
        idle = now - max(self.behind_since, self.last_progress)
        if self.holding_since is None and idle > self.stall_seconds:
            return f"records wait in assigned partitions but none was consumed for {idle:.0f} s"
        return None

"""Folding a batch of events into bucket increments, conversation states and dedup marks.

`fold` is pure: the worker reads the prior state for a batch, calls `fold`, and applies the
result atomically; offline replay calls it with state it keeps in memory. Events are taken in
arrival order, which is what the joins of CONTRACT.md §3 are defined by.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from service.domain.events import (
    MICROS_PER_SECOND,
    UNRESOLVED,
    ConversationState,
    Counter,
    SupportEvent,
    effect,
)
from service.domain.timebuckets import RESOLUTIONS

FUTURE_TOLERANCE_MICROS: Final = 5 * 60 * MICROS_PER_SECOND
ALL: Final = "all"
"""The resolution name of the cumulative bucket (its start is always 0)."""


class Outcome(StrEnum):
    """What became of an event; the `outcome` label of support_events_total."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    LATE = "late"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


BucketKey = tuple[str, int]
"""(resolution name, bucket start in Unix seconds); ("all", 0) is the cumulative total."""
CUMULATIVE: Final[BucketKey] = (ALL, 0)
ConversationKey = tuple[str, str]
"""(channel, conversation id): conversation state is kept per channel."""
DedupMark = tuple[str, str, str]
"""(channel, source, id): dedup marks are kept per channel, beside its other state."""


@dataclass(slots=True)
class BatchDelta:
    """Everything one batch changes. Applying it twice would count twice: the state layer
    applies it once, guarded by the partition's watermark."""

    increments: dict[tuple[str, BucketKey], dict[Counter, int]] = field(default_factory=dict)
    states: dict[ConversationKey, ConversationState] = field(default_factory=dict)
    dedup_marks: set[DedupMark] = field(default_factory=set)
    outcomes: Tally[tuple[str, Outcome]] = field(default_factory=Tally)

    def add(self, channel: str, bucket: BucketKey, increments: Mapping[Counter, int]) -> None:
        counters = self.increments.setdefault((channel, bucket), {})
        for counter, amount in increments.items():
            counters[counter] = counters.get(counter, 0) + amount


def is_future(time_micros: int, now_micros: int) -> bool:
    """True for an event more than 5 minutes ahead of the worker's clock (dead-lettered)."""
    return time_micros > now_micros + FUTURE_TOLERANCE_MICROS


def is_late(time_micros: int, now_micros: int, max_lateness_micros: int) -> bool:
    """True for an event older than `max_lateness` (exactly that old is not late)."""
    return time_micros < now_micros - max_lateness_micros


def bucket_targets(time_micros: int, now_micros: int) -> list[BucketKey]:
    """The minute, hour and day buckets an event at `time_micros` adds to, each only while a
    window can still read it at `now_micros`."""
    seconds = time_micros // MICROS_PER_SECOND
    now_seconds = now_micros // MICROS_PER_SECOND
    targets = []
    for resolution in RESOLUTIONS:
        start = resolution.bucket_start(seconds)
        if resolution.expires_at(start) > now_seconds:
            targets.append((resolution.name, start))
    return targets


def fold(
    events: Iterable[SupportEvent],
    states: Mapping[ConversationKey, ConversationState],
    seen: Container[DedupMark],
    now_micros: int,
    max_lateness_micros: int,
) -> BatchDelta:
    """Fold `events` (in arrival order) into one BatchDelta.

    `states` holds the prior state of the conversations the batch touches (absent means
    unresolved); `seen` the dedup marks already stored. A duplicate, in `seen` or earlier in
    the same batch, changes nothing but its outcome. A late event moves the cumulative
    counters and the conversation state, no bucket. The delta's `states` holds the final
    state of every conversation the batch touched, so their retention can be refreshed.
    """
    delta = BatchDelta()
    # Events of one channel and second share their buckets: sum them once per such group,
    # then spread each group over its buckets (far fewer dict updates than per event).
    groups: dict[tuple[str, int | None], dict[Counter, int]] = {}
    for event in events:
        channel = event.channel
        mark = (channel, event.source, event.event_id)
        if mark in delta.dedup_marks or mark in seen:
            delta.outcomes[(channel, Outcome.DUPLICATE)] += 1
            continue
        delta.dedup_marks.add(mark)
        key = (channel, event.conversation_id)
        prior = delta.states[key] if key in delta.states else states.get(key, UNRESOLVED)
        result = effect(event, prior)
        delta.states[key] = result.state
        late = is_late(event.time_micros, now_micros, max_lateness_micros)
        delta.outcomes[(channel, Outcome.LATE if late else Outcome.COUNTED)] += 1
        second = None if late else event.time_micros // MICROS_PER_SECOND
        group = groups.setdefault((channel, second), {})
        for counter, amount in result.increments.items():
            group[counter] = group.get(counter, 0) + amount
    for (channel, second), increments in groups.items():
        delta.add(channel, CUMULATIVE, increments)
        if second is not None:
            for bucket in bucket_targets(second * MICROS_PER_SECOND, now_micros):
                delta.add(channel, bucket, increments)
    return delta

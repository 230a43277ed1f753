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

from roi_metrics.domain.events import (
    MICROS_PER_SECOND,
    UNRESOLVED,
    ConversationState,
    Counter,
    SupportEvent,
    effect,
)
from roi_metrics.domain.recontact import Fact, Standing, facts_of, revocation
from roi_metrics.domain.timebuckets import RESOLUTIONS

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


INT64_MAX: Final = 2**63 - 1
"""The largest value of a Redis integer: no sum may pass it."""
SumKey = tuple[str, BucketKey, Counter]
"""(channel, bucket, counter): one stored sum."""


@dataclass(slots=True)
class BatchDelta:
    """Everything one batch changes. Applying it twice would count twice: the state layer
    applies it once, guarded by the partition's watermark."""

    increments: dict[tuple[str, BucketKey], dict[Counter, int]] = field(default_factory=dict)
    states: dict[ConversationKey, ConversationState] = field(default_factory=dict)
    dedup_marks: set[DedupMark] = field(default_factory=set)
    outcomes: Tally[tuple[str, Outcome]] = field(default_factory=Tally)
    failed: list[tuple[int, Exception]] = field(default_factory=list)
    """Events whose effect could not be computed (a bug): (position in the input, error).
    They changed nothing."""
    overflowed: list[int] = field(default_factory=list)
    """Positions of events that would have taken a sum past INT64_MAX; they changed nothing."""
    facts: list[tuple[int, Fact]] = field(default_factory=list)
    """What the counted events tell about their customers (CONTRACT.md §9), in order, each
    with the position of its event in the input."""

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


class _Headroom:
    """What is left under INT64_MAX of each stored sum, used up event by event."""

    def __init__(self, room: Mapping[SumKey, int], now_micros: int) -> None:
        self.room = dict(room)
        self.now_micros = now_micros

    def take(self, channel: str, second: int | None, increments: Mapping[Counter, int]) -> bool:
        """Use up room for one event's increments; False (nothing used) if any sum would
        pass INT64_MAX."""
        buckets = [CUMULATIVE]
        if second is not None:
            buckets += bucket_targets(second * MICROS_PER_SECOND, self.now_micros)
        wanted = [
            ((channel, bucket, counter), amount)
            for bucket in buckets
            for counter, amount in increments.items()
            if amount
        ]
        if any(amount > self.room.get(key, INT64_MAX) for key, amount in wanted):
            return False
        for key, amount in wanted:
            self.room[key] = self.room.get(key, INT64_MAX) - amount
        return True


def fold(  # noqa: PLR0917  (the fold's inputs, in the order the docstring tells them)
    events: Iterable[SupportEvent],
    states: Mapping[ConversationKey, ConversationState],
    seen: Container[DedupMark],
    now_micros: int,
    max_lateness_micros: int,
    headroom: Mapping[SumKey, int] | None = None,
) -> BatchDelta:
    """Fold `events` (in arrival order) into one BatchDelta.

    `states` holds the prior state of the conversations the batch touches (absent means
    unresolved); `seen` the dedup marks already stored. A duplicate, in `seen` or earlier in
    the same batch, changes nothing but its outcome. A late event moves the cumulative
    counters and the conversation state, no bucket. The delta's `states` holds the final
    state of every conversation the batch touched, so their retention can be refreshed.

    With `headroom` (what is left under INT64_MAX of the stored sums the batch touches;
    a sum not named has all of it), an event that would pass the limit changes nothing and
    is listed in `overflowed`. An event whose effect raises (a bug) changes nothing and is
    listed in `failed`: one event never stops the others.
    """
    delta = BatchDelta()
    room = None if headroom is None else _Headroom(headroom, now_micros)
    # Events of one channel and second share their buckets: sum them once per such group,
    # then spread each group over its buckets (far fewer dict updates than per event).
    groups: dict[tuple[str, int | None], dict[Counter, int]] = {}
    for position, event in enumerate(events):
        channel = event.channel
        mark = (channel, event.source, event.event_id)
        if mark in delta.dedup_marks or mark in seen:
            delta.outcomes[(channel, Outcome.DUPLICATE)] += 1
            continue
        key = (channel, event.conversation_id)
        prior = delta.states[key] if key in delta.states else states.get(key, UNRESOLVED)
        try:
            result = effect(event, prior)
            late = is_late(event.time_micros, now_micros, max_lateness_micros)
            second = None if late else event.time_micros // MICROS_PER_SECOND
            if room is not None and not room.take(channel, second, result.increments):
                delta.overflowed.append(position)
                continue
        except Exception as error:
            delta.failed.append((position, error))
            continue
        delta.dedup_marks.add(mark)
        delta.states[key] = result.state
        if result.state.customer is not None:
            delta.facts += [(position, fact) for fact in facts_of(event, prior, result.state)]
        delta.outcomes[(channel, Outcome.LATE if late else Outcome.COUNTED)] += 1
        group = groups.setdefault((channel, second), {})
        for counter, amount in result.increments.items():
            group[counter] = group.get(counter, 0) + amount
    for (channel, second), increments in groups.items():
        delta.add(channel, CUMULATIVE, increments)
        if second is not None:
            for bucket in bucket_targets(second * MICROS_PER_SECOND, now_micros):
                delta.add(channel, bucket, increments)
    return delta


def revoke(
    standing: Standing,
    state: ConversationState,
    time_micros: int,
    now_micros: int,
    max_lateness_micros: int,
) -> BatchDelta | None:
    """The delta of revoking `standing` (CONTRACT.md §9), its conversation being in `state`,
    because another conversation of its customer started at `time_micros`: counted in that
    start's buckets (only the cumulative one when it is late), the conversation left
    unresolved. None when the resolution no longer stands there."""
    result = revocation(standing, state)
    if result is None:
        return None
    delta = BatchDelta()
    delta.states[(standing.channel, standing.conversation)] = result.state
    delta.add(standing.channel, CUMULATIVE, result.increments)
    if not is_late(time_micros, now_micros, max_lateness_micros):
        for bucket in bucket_targets(time_micros, now_micros):
            delta.add(standing.channel, bucket, result.increments)
    return delta

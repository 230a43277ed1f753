"""Properties of the fold and the windows, checked by hypothesis.

Joins (reopen, csat, revenue) depend on the order of a conversation's own events, which Kafka
keeps (one key, one partition); so the order-independence properties permute what Kafka may
reorder: the interleaving of different conversations, and batch boundaries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from roi_metrics.domain.aggregate import BatchDelta, fold
from roi_metrics.domain.events import (
    Actor,
    Confirmation,
    ConversationState,
    CostCategory,
    EventType,
    SupportEvent,
)
from roi_metrics.domain.timebuckets import ROLLING_WINDOWS

NOW = 1_772_366_400 * 1_000_000  # 2026-03-01T12:00:00Z
SEVEN_DAYS = 7 * 86_400 * 1_000_000
SIX_DAYS = 6 * 86_400 * 1_000_000


@st.composite
def conversation(draw: Any, name: str) -> list[SupportEvent]:
    kinds = draw(st.lists(st.sampled_from(list(EventType)), min_size=1, max_size=8))
    times = sorted(
        draw(st.lists(st.integers(NOW - SIX_DAYS, NOW), min_size=len(kinds), max_size=len(kinds)))
    )
    channel = draw(st.sampled_from(["web", "slack"]))
    events = []
    for index, (kind, time) in enumerate(zip(kinds, times, strict=True)):
        events.append(
            SupportEvent(
                source=f"/{channel}",
                event_id=f"{name}-{index}",
                channel=channel,
                conversation_id=name,
                type=kind,
                time_micros=time,
                handled_by=draw(st.sampled_from(list(Actor))),
                resolved_by=draw(st.sampled_from(list(Actor))),
                confirmation=draw(st.sampled_from(list(Confirmation))),
                score=draw(st.integers(1, 5)),
                amount_micros=draw(st.integers(0, 10**9)),
                cost_category=draw(st.sampled_from(list(CostCategory))),
            )
        )
    return events


conversations = st.integers(1, 6).flatmap(
    lambda n: st.tuples(*(conversation(f"c{i}") for i in range(n)))
)


@st.composite
def interleaving(draw: Any, convs: Sequence[list[SupportEvent]]) -> list[SupportEvent]:
    """A merge of the conversations that keeps each one's own order."""
    schedule = draw(st.permutations([i for i, conv in enumerate(convs) for _ in conv]))
    cursors = [0] * len(convs)
    merged = []
    for index in schedule:
        merged.append(convs[index][cursors[index]])
        cursors[index] += 1
    return merged


def effects(delta: BatchDelta) -> tuple[object, object, object]:
    """What a fold changes: bucket increments, conversation states, outcomes."""
    return delta.increments, delta.states, delta.outcomes


def fold_in_batches(events: Sequence[SupportEvent], cuts: Iterable[int]) -> BatchDelta:
    """Fold batch by batch, carrying state and marks as the state store would."""
    total = BatchDelta()
    states: dict[tuple[str, str], ConversationState] = {}
    seen: set[tuple[str, str, str]] = set()
    bounds = [0, *sorted(set(cuts)), len(events)]
    for start, end in itertools.pairwise(bounds):
        delta = fold(events[start:end], states, seen, NOW, SEVEN_DAYS)
        for (channel, bucket), counters in delta.increments.items():
            total.add(channel, bucket, counters)
        states.update(delta.states)
        seen |= delta.dedup_marks
        total.outcomes.update(delta.outcomes)
    total.states = states
    return total


@settings(max_examples=200, deadline=None)
@given(data=st.data(), convs=conversations)
def test_interleaving_of_conversations_does_not_change_the_result(data: Any, convs: Any) -> None:
    first = data.draw(interleaving(convs))
    second = data.draw(interleaving(convs))
    assert effects(fold(first, {}, set(), NOW, SEVEN_DAYS)) == effects(
        fold(second, {}, set(), NOW, SEVEN_DAYS)
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data(), convs=conversations)
def test_batch_boundaries_do_not_change_the_result(data: Any, convs: Any) -> None:
    events = data.draw(interleaving(convs))
    cuts = data.draw(st.lists(st.integers(0, len(events))))
    whole = fold(events, {}, set(), NOW, SEVEN_DAYS)
    assert effects(fold_in_batches(events, cuts)) == effects(whole)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), convs=conversations)
def test_a_duplicate_changes_nothing(data: Any, convs: Any) -> None:
    events = data.draw(interleaving(convs))
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=5))
    once = fold(events, {}, set(), NOW, SEVEN_DAYS)
    with_duplicates = fold([*events, *repeats], {}, set(), NOW, SEVEN_DAYS)
    assert with_duplicates.increments == once.increments
    assert with_duplicates.states == once.states
    # the same batch folded again against the marks it stored counts nothing
    again = fold(events, once.states, once.dedup_marks, NOW, SEVEN_DAYS)
    assert again.increments == {}
    assert sum(again.outcomes.values()) == len(events)


@settings(deadline=None)
@given(
    now=st.integers(0, 4_000_000_000),
    offset=st.integers(-40 * 86_400, 86_400),
)
def test_window_edges_land_where_the_contract_says(now: int, offset: int) -> None:
    """A time is in a window iff its bucket is one of the last N buckets, the current one
    included (computed here from integer division, independently of bucket_starts)."""
    time = now + offset
    for rolling in ROLLING_WINDOWS:
        size = rolling.resolution.seconds
        starts = rolling.bucket_starts(now)
        assert len(starts) == rolling.buckets
        assert all(start % size == 0 for start in starts)
        assert starts[-1] <= now < starts[-1] + size
        buckets_back = now // size - time // size
        expected = 0 <= buckets_back < rolling.buckets
        assert (rolling.resolution.bucket_start(time) in starts) is expected

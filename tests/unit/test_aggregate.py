"""Folding batches: dedup, lateness, bucket targets, joins across a batch."""

from roi_metrics.domain.aggregate import CUMULATIVE, Outcome, bucket_targets, fold, is_future
from roi_metrics.domain.events import UNRESOLVED, Actor, ConversationState, Counter

from tests.unit.helpers import DAY, HOUR, T0, csat, reopened, resolved, started

SEVEN_DAYS = 7 * DAY
MINUTE_S, HOUR_S, DAY_S = 60, 3600, 86400
T0_S = T0 // 1_000_000  # 2026-03-01T12:00:00Z


def test_a_fresh_event_adds_to_every_resolution_and_the_cumulative_total() -> None:
    first = started()
    delta = fold([first], {}, set(), T0, SEVEN_DAYS)
    expected = {Counter.CONVERSATIONS: 1, Counter.AI_CONVERSATIONS: 1}
    assert delta.increments == {
        ("web", CUMULATIVE): expected,
        ("web", ("m", T0_S)): expected,
        ("web", ("h", T0_S)): expected,
        ("web", ("d", T0_S - 12 * HOUR_S)): expected,
    }
    assert delta.outcomes == {("web", Outcome.COUNTED): 1}
    assert delta.dedup_marks == {("web", "/web/test", first.event_id)}


def test_duplicates_within_a_batch_and_against_stored_marks_change_nothing() -> None:
    first = started("c1")
    second = started("c2")
    delta = fold(
        [first, first, second], {}, {("web", second.source, second.event_id)}, T0, SEVEN_DAYS
    )
    assert delta.outcomes == {("web", Outcome.COUNTED): 1, ("web", Outcome.DUPLICATE): 2}
    assert delta.increments[("web", CUMULATIVE)] == {
        Counter.CONVERSATIONS: 1,
        Counter.AI_CONVERSATIONS: 1,
    }
    assert delta.dedup_marks == {("web", first.source, first.event_id)}


def test_a_late_event_moves_only_the_cumulative_total_and_the_state() -> None:
    old = T0 - SEVEN_DAYS - 1
    delta = fold([resolved(time_micros=old)], {}, set(), T0, SEVEN_DAYS)
    assert delta.outcomes == {("web", Outcome.LATE): 1}
    assert list(delta.increments) == [("web", CUMULATIVE)]
    assert delta.states[("web", "c1")] == ConversationState(Actor.AI, old)
    exactly_max = fold([resolved(time_micros=T0 - SEVEN_DAYS)], {}, set(), T0, SEVEN_DAYS)
    assert exactly_max.outcomes == {("web", Outcome.COUNTED): 1}


def test_buckets_no_window_can_read_are_not_written() -> None:
    two_hours_ago = T0 - 2 * HOUR
    # the minute ring keeps 65 buckets past the current one: two hours back is gone
    assert bucket_targets(two_hours_ago, T0) == [
        ("h", T0_S - 2 * HOUR_S),
        ("d", T0_S - 12 * HOUR_S),
    ]
    assert bucket_targets(T0 - 64 * 60 * 1_000_000, T0)[0] == ("m", T0_S - 64 * MINUTE_S)


def test_joins_use_the_state_built_earlier_in_the_same_batch() -> None:
    delta = fold(
        [resolved("c1", time_micros=T0), reopened("c1", time_micros=T0 + HOUR), csat(3, "c1")],
        {},
        set(),
        T0 + 2 * HOUR,
        SEVEN_DAYS,
    )
    assert delta.increments[("web", CUMULATIVE)] == {
        Counter.AI_RESOLUTIONS_ASSUMED: 1,
        Counter.AI_REOPENS: 1,
        Counter.CSAT_COUNT_NONE: 1,
        Counter.CSAT_SUM_NONE: 3,
    }
    assert delta.states[("web", "c1")] == UNRESOLVED


def test_joins_use_the_stored_state_of_earlier_batches() -> None:
    states = {("web", "c9"): ConversationState(Actor.AI, T0 - DAY)}
    delta = fold([reopened("c9", time_micros=T0)], states, set(), T0, SEVEN_DAYS)
    assert delta.increments[("web", CUMULATIVE)] == {Counter.AI_REOPENS: 1}


def test_future_tolerance_is_five_minutes() -> None:
    assert not is_future(T0 + 300 * 1_000_000, T0)
    assert is_future(T0 + 300 * 1_000_000 + 1, T0)

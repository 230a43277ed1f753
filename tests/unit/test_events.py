"""The effect of each event type (CONTRACT.md §3), joins included."""

from roi_metrics.domain.events import (
    UNRESOLVED,
    Actor,
    Confirmation,
    ConversationState,
    CostCategory,
    Counter,
    EventType,
    effect,
)

from tests.unit.helpers import (
    DAY,
    HOUR,
    T0,
    cost,
    csat,
    event,
    reopened,
    resolved,
    revenue,
    started,
)

AI_RESOLVED = ConversationState(Actor.AI, T0)
HUMAN_RESOLVED = ConversationState(Actor.HUMAN, T0)


def test_started_counts_conversations_and_ai_conversations() -> None:
    assert effect(started(by=Actor.AI), UNRESOLVED).increments == {
        Counter.CONVERSATIONS: 1,
        Counter.AI_CONVERSATIONS: 1,
    }
    assert effect(started(by=Actor.HUMAN), UNRESOLVED).increments == {Counter.CONVERSATIONS: 1}


def test_escalation() -> None:
    result = effect(event(EventType.ESCALATED), AI_RESOLVED)
    assert result.increments == {Counter.ESCALATIONS: 1}
    assert result.state == AI_RESOLVED


def test_resolutions_by_actor_and_confirmation() -> None:
    assumed = effect(resolved(by=Actor.AI, time_micros=T0), UNRESOLVED)
    assert assumed.increments == {Counter.AI_RESOLUTIONS_ASSUMED: 1}
    assert assumed.state == ConversationState(Actor.AI, T0)
    confirmed = effect(resolved(confirmation=Confirmation.CONFIRMED), UNRESOLVED)
    assert confirmed.increments == {Counter.AI_RESOLUTIONS_CONFIRMED: 1}
    human = effect(resolved(by=Actor.HUMAN, time_micros=T0 + 5), AI_RESOLVED)
    assert human.increments == {Counter.HUMAN_RESOLUTIONS: 1}
    assert human.state == ConversationState(Actor.HUMAN, T0 + 5)


def test_a_confirmed_ai_resolution_reopened_counts_as_revoked_confirmed() -> None:
    confirmed = effect(resolved(confirmation=Confirmation.CONFIRMED, time_micros=T0), UNRESOLVED)
    assert confirmed.state == ConversationState(Actor.AI, T0, confirmed=True)
    result = effect(reopened(time_micros=T0 + DAY), confirmed.state)
    assert result.increments == {Counter.AI_REOPENS: 1, Counter.AI_REVOKED_CONFIRMED: 1}
    assert result.state == UNRESOLVED
    late = effect(reopened(time_micros=T0 + 7 * DAY + 1), confirmed.state)
    assert late.increments == {}  # past 7 days: not revoked, nothing unearned
    assert effect(reopened(time_micros=T0 + DAY), AI_RESOLVED).increments == {
        Counter.AI_REOPENS: 1  # an assumed one: revoked, not a confirmed one
    }
    human = effect(resolved(by=Actor.HUMAN, time_micros=T0 + 5), confirmed.state)
    assert not human.state.confirmed  # the confirmation was the AI's resolution's


def test_reopen_within_7_days_of_an_ai_resolution_counts_and_clears() -> None:
    result = effect(reopened(time_micros=T0 + 7 * DAY), AI_RESOLVED)  # the edge is inside
    assert result.increments == {Counter.AI_REOPENS: 1}
    assert result.state == UNRESOLVED


def test_reopen_outside_the_window_or_after_a_person_only_clears() -> None:
    late = effect(reopened(time_micros=T0 + 7 * DAY + 1), AI_RESOLVED)
    early = effect(reopened(time_micros=T0 - 1), AI_RESOLVED)
    human = effect(reopened(time_micros=T0 + HOUR), HUMAN_RESOLVED)
    unresolved = effect(reopened(), UNRESOLVED)
    for result in (late, early, human, unresolved):
        assert result.increments == {}
        assert result.state == UNRESOLVED


def test_csat_goes_under_who_resolved_the_conversation() -> None:
    assert effect(csat(4), AI_RESOLVED).increments == {
        Counter.CSAT_COUNT_AI: 1,
        Counter.CSAT_SUM_AI: 4,
    }
    assert effect(csat(2), HUMAN_RESOLVED).increments == {
        Counter.CSAT_COUNT_HUMAN: 1,
        Counter.CSAT_SUM_HUMAN: 2,
    }
    assert effect(csat(5), UNRESOLVED).increments == {
        Counter.CSAT_COUNT_NONE: 1,
        Counter.CSAT_SUM_NONE: 5,
    }


def test_costs_by_category() -> None:
    for category in (CostCategory.AI_USAGE, CostCategory.PLATFORM_FEE, CostCategory.OTHER):
        assert effect(cost(250_000, category), UNRESOLVED).increments == {
            Counter.AI_COST_MICROS: 250_000
        }
    assert effect(cost(4_000_000, CostCategory.HUMAN_HANDLING), AI_RESOLVED).increments == {
        Counter.HUMAN_COST_MICROS: 4_000_000
    }


def test_revenue_within_72_hours_of_an_ai_resolution_is_ai_revenue() -> None:
    inside = effect(revenue(30_000_000, time_micros=T0 + 72 * HOUR), AI_RESOLVED)
    assert inside.increments == {Counter.AI_REVENUE_MICROS: 30_000_000}
    outside = effect(revenue(30_000_000, time_micros=T0 + 72 * HOUR + 1), AI_RESOLVED)
    assert outside.increments == {Counter.HUMAN_REVENUE_MICROS: 30_000_000}
    before = effect(revenue(1, time_micros=T0 - 1), AI_RESOLVED)
    assert before.increments == {Counter.HUMAN_REVENUE_MICROS: 1}
    after_person = effect(revenue(1, time_micros=T0 + HOUR), HUMAN_RESOLVED)
    assert after_person.increments == {Counter.HUMAN_REVENUE_MICROS: 1}

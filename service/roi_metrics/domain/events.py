"""Domain events and the counters they move (CONTRACT.md §3).

`effect` is the single place where an event becomes counter increments and a new
per-conversation state; the streaming worker, offline replay and the tests all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

MICROS_PER_SECOND: Final = 1_000_000
REOPEN_WINDOW_MICROS: Final = 7 * 86_400 * MICROS_PER_SECOND
REVENUE_WINDOW_MICROS: Final = 72 * 3_600 * MICROS_PER_SECOND


class EventType(StrEnum):
    STARTED = "support.conversation.started"
    ESCALATED = "support.conversation.escalated"
    RESOLVED = "support.conversation.resolved"
    REOPENED = "support.conversation.reopened"
    CSAT = "support.csat.recorded"
    COST = "support.cost.recorded"
    REVENUE = "support.revenue.attributed"


class Actor(StrEnum):
    AI = "ai"
    HUMAN = "human"


class Confirmation(StrEnum):
    ASSUMED = "assumed"
    CONFIRMED = "confirmed"


class CostCategory(StrEnum):
    AI_USAGE = "ai_usage"
    PLATFORM_FEE = "platform_fee"
    HUMAN_HANDLING = "human_handling"
    OTHER = "other"


class Counter(StrEnum):
    """Every counter kept per channel and bucket. Money counters are in micro-units."""

    CONVERSATIONS = "conversations"
    AI_CONVERSATIONS = "ai_conversations"
    ESCALATIONS = "escalations"
    AI_RESOLUTIONS_ASSUMED = "ai_resolutions_assumed"
    AI_RESOLUTIONS_CONFIRMED = "ai_resolutions_confirmed"
    AI_REOPENS = "ai_reopens"
    AI_RECONTACTS = "ai_recontacts"
    """AI resolutions revoked because the customer came back (CONTRACT.md §9)."""
    AI_REVOKED_CONFIRMED = "ai_revoked_confirmed"
    """Confirmed AI resolutions revoked (reopened within 7 days, or by a re-contact): what a
    vendor that bills confirmed resolutions only billed for nothing (CONTRACT.md §13)."""
    HUMAN_RESOLUTIONS = "human_resolutions"
    AI_COST_MICROS = "ai_cost_micros"
    HUMAN_COST_MICROS = "human_cost_micros"
    AI_REVENUE_MICROS = "ai_revenue_micros"
    HUMAN_REVENUE_MICROS = "human_revenue_micros"
    CSAT_COUNT_AI = "csat_count_ai"
    CSAT_SUM_AI = "csat_sum_ai"
    CSAT_COUNT_HUMAN = "csat_count_human"
    CSAT_SUM_HUMAN = "csat_sum_human"
    CSAT_COUNT_NONE = "csat_count_none"
    CSAT_SUM_NONE = "csat_sum_none"


CSAT_COUNTERS: Final = {
    "ai": (Counter.CSAT_COUNT_AI, Counter.CSAT_SUM_AI),
    "human": (Counter.CSAT_COUNT_HUMAN, Counter.CSAT_SUM_HUMAN),
    "none": (Counter.CSAT_COUNT_NONE, Counter.CSAT_SUM_NONE),
}


@dataclass(frozen=True, slots=True)
class SupportEvent:
    """One validated event. `time_micros` is its `time` as Unix microseconds (UTC)."""

    source: str
    event_id: str
    channel: str
    conversation_id: str
    type: EventType
    time_micros: int
    handled_by: Actor | None = None
    resolved_by: Actor | None = None
    confirmation: Confirmation = Confirmation.ASSUMED
    score: int | None = None
    amount_micros: int = 0
    cost_category: CostCategory | None = None
    customer: str | None = None
    """The `customer` attribute (CONTRACT.md §9): read from a conversation's started event."""

    @property
    def identity(self) -> tuple[str, str]:
        """Two events with the same identity are the same event (CONTRACT.md §2)."""
        return (self.source, self.event_id)


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Who resolved the conversation last and when; both None while it is unresolved."""

    resolved_by: Actor | None = None
    resolved_at_micros: int | None = None
    confirmed: bool = False
    """The AI's resolution was confirmed (by the customer or a check): a vendor that bills
    confirmed resolutions only billed it (CONTRACT.md §13)."""
    customer: str | None = None
    """The customer of the conversation, from its started event (CONTRACT.md §9); kept
    through resolutions and reopens."""

    def unresolved(self) -> ConversationState:
        """The conversation unresolved, still its customer's."""
        return ConversationState(customer=self.customer) if self.customer else UNRESOLVED


UNRESOLVED: Final = ConversationState()


@dataclass(frozen=True, slots=True)
class Effect:
    """What one event does: counter increments and the conversation's state afterwards."""

    increments: dict[Counter, int] = field(default_factory=dict)
    state: ConversationState = UNRESOLVED


def _within(state: ConversationState, time_micros: int, horizon_micros: int) -> bool:
    """True when the latest resolution was by the AI and `time_micros` lies in
    [resolution time, resolution time + horizon]."""
    if state.resolved_by is not Actor.AI or state.resolved_at_micros is None:
        return False
    return state.resolved_at_micros <= time_micros <= state.resolved_at_micros + horizon_micros


def _started(event: SupportEvent, state: ConversationState) -> Effect:
    """Counts a conversation; its first started event with a customer names its customer."""
    increments = {Counter.CONVERSATIONS: 1}
    if event.handled_by is Actor.AI:
        increments[Counter.AI_CONVERSATIONS] = 1
    if event.customer is not None and state.customer is None:
        state = replace(state, customer=event.customer)
    return Effect(increments, state)


def _escalated(event: SupportEvent, state: ConversationState) -> Effect:
    return Effect({Counter.ESCALATIONS: 1}, state)


def _resolved(event: SupportEvent, state: ConversationState) -> Effect:
    customer = state.customer
    if event.resolved_by is not Actor.AI:
        human = ConversationState(event.resolved_by, event.time_micros, customer=customer)
        return Effect({Counter.HUMAN_RESOLUTIONS: 1}, human)
    if event.confirmation is Confirmation.CONFIRMED:
        confirmed = ConversationState(Actor.AI, event.time_micros, True, customer)
        return Effect({Counter.AI_RESOLUTIONS_CONFIRMED: 1}, confirmed)
    assumed = ConversationState(Actor.AI, event.time_micros, customer=customer)
    return Effect({Counter.AI_RESOLUTIONS_ASSUMED: 1}, assumed)


def _reopened(event: SupportEvent, state: ConversationState) -> Effect:
    """Any reopen clears the resolution; it counts as an AI reopen only within 7 days of an
    AI resolution (and as a revoked confirmed one when that resolution was confirmed)."""
    if not _within(state, event.time_micros, REOPEN_WINDOW_MICROS):
        return Effect({}, state.unresolved())
    if state.confirmed:
        return Effect({Counter.AI_REOPENS: 1, Counter.AI_REVOKED_CONFIRMED: 1}, state.unresolved())
    return Effect({Counter.AI_REOPENS: 1}, state.unresolved())


def _csat(event: SupportEvent, state: ConversationState) -> Effect:
    resolved_by = state.resolved_by.value if state.resolved_by else "none"
    count, total = CSAT_COUNTERS[resolved_by]
    return Effect({count: 1, total: event.score or 0}, state)


def _cost(event: SupportEvent, state: ConversationState) -> Effect:
    human = event.cost_category is CostCategory.HUMAN_HANDLING
    counter = Counter.HUMAN_COST_MICROS if human else Counter.AI_COST_MICROS
    return Effect({counter: event.amount_micros}, state)


def _revenue(event: SupportEvent, state: ConversationState) -> Effect:
    to_ai = _within(state, event.time_micros, REVENUE_WINDOW_MICROS)
    counter = Counter.AI_REVENUE_MICROS if to_ai else Counter.HUMAN_REVENUE_MICROS
    return Effect({counter: event.amount_micros}, state)


_EFFECTS: Final = {
    EventType.STARTED: _started,
    EventType.ESCALATED: _escalated,
    EventType.RESOLVED: _resolved,
    EventType.REOPENED: _reopened,
    EventType.CSAT: _csat,
    EventType.COST: _cost,
    EventType.REVENUE: _revenue,
}


def effect(event: SupportEvent, state: ConversationState) -> Effect:
    """The counters `event` moves given the conversation's `state` before it, and the new state.

    >>> ev = SupportEvent("/s", "1", "web", "c1", EventType.ESCALATED, 0)
    >>> effect(ev, UNRESOLVED).increments
    {<Counter.ESCALATIONS: 'escalations'>: 1}
    """
    return _EFFECTS[event.type](event, state)

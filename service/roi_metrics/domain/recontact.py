"""Cross-channel re-contact (CONTRACT.md §9): a customer who comes back soon after an AI
resolution, on any channel, was not resolved.

The fold turns each counted event of a conversation with a customer into a `Fact` about
that customer: a conversation started, resolved by the AI, or cleared (reopened, or resolved
by a person). `join` keeps, per customer, the latest AI resolution still standing and says
which one a new conversation revokes; `revocation` is what that does to the resolved
conversation. The worker sends the facts through a topic keyed by customer to the customer
agent (roi_metrics.worker.customers), `replay` joins them in memory: the same functions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from roi_metrics.domain.events import (
    Actor,
    ConversationState,
    Counter,
    Effect,
    EventType,
    SupportEvent,
)

RECONTACT_WINDOW_SECONDS: Final = 7 * 86_400
"""The default re-contact window (the `recontact_window_seconds` setting)."""


class FactKind(StrEnum):
    STARTED = "started"
    """One of the customer's conversations started (at the fact's time)."""
    RESOLVED = "resolved"
    """The AI resolved one of the customer's conversations (at the fact's time)."""
    CLEARED = "cleared"
    """A conversation's resolution no longer stands: it was reopened or a person resolved it."""


@dataclass(frozen=True, slots=True)
class Fact:
    """What one counted event tells about its conversation's customer."""

    id: str
    """The event's identity, hashed: the same event gives the same fact (sent again after a
    crash, it is recognised)."""
    kind: FactKind
    customer: str
    channel: str
    conversation: str
    time_micros: int
    confirmed: bool = False
    """For RESOLVED: the resolution was confirmed."""


@dataclass(frozen=True, slots=True)
class Standing:
    """A customer's latest AI resolution still standing."""

    channel: str
    conversation: str
    resolved_micros: int
    confirmed: bool


def fact_id(channel: str, source: str, event_id: str) -> str:
    """A short, stable name of one event (its channel and CloudEvents identity)."""
    text = f"{channel}\x1f{source}\x1f{event_id}".encode()
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def facts_of(
    event: SupportEvent, before: ConversationState, after: ConversationState
) -> list[Fact]:
    """The facts a counted event gives, its conversation's state being `before` it and
    `after`; none for a conversation without a customer or an event that says nothing of
    it. A started event that names the customer of a conversation the AI resolved already
    (its resolution was processed first: published out of order) also tells that
    resolution, so it takes part as if it had come in order."""
    customer = after.customer
    if customer is None:
        return []
    identity = fact_id(event.channel, event.source, event.event_id)

    def fact(kind: FactKind, time_micros: int, confirmed: bool = False, suffix: str = "") -> Fact:
        name = (
            identity
            if not suffix
            else fact_id(event.channel, event.source, event.event_id + suffix)
        )
        return Fact(
            name, kind, customer, event.channel, event.conversation_id, time_micros, confirmed
        )

    if event.type is EventType.STARTED:
        found = [fact(FactKind.STARTED, event.time_micros)]
        resolved_at = after.resolved_at_micros
        if before.customer is None and after.resolved_by is Actor.AI and resolved_at is not None:
            found.append(fact(FactKind.RESOLVED, resolved_at, after.confirmed, "\x1fresolved"))
        return found
    if event.type is EventType.RESOLVED:
        if event.resolved_by is Actor.AI:
            return [fact(FactKind.RESOLVED, event.time_micros, after.confirmed)]
        return [fact(FactKind.CLEARED, event.time_micros)]
    if event.type is EventType.REOPENED:
        return [fact(FactKind.CLEARED, event.time_micros)]
    return []


@dataclass(frozen=True, slots=True)
class Start:
    """A conversation of the customer that started, remembered for the window: a resolution
    joined after it (another channel lagging) is still revoked by it."""

    channel: str
    conversation: str
    time_micros: int


@dataclass(frozen=True, slots=True)
class Customer:
    """What the service keeps of one customer (CONTRACT.md §9)."""

    standing: Standing | None = None
    """The latest (in event time) AI resolution still standing."""
    starts: tuple[Start, ...] = ()
    """The latest starts of the customer's conversations, within the window of the newest."""


@dataclass(frozen=True, slots=True)
class Revocation:
    resolution: Standing
    at_micros: int
    """When the conversation that revokes it started: where the revocation is counted."""


MAX_STARTS: Final = 16
"""Starts remembered per customer at most (the latest)."""
NOBODY: Final = Customer()


def _other(standing: Standing, channel: str, conversation: str) -> bool:
    return (standing.channel, standing.conversation) != (channel, conversation)


def join(customer: Customer, fact: Fact, window_micros: int) -> tuple[Customer, Revocation | None]:
    """The customer after `fact`, and the revocation it makes (None: none).

    A conversation other than the resolved one that starts from an AI resolution's time to
    `window_micros` after it (both ends included) revokes that resolution, once. Facts are
    joined in the order the worker applied their events, but across channels that order can
    differ from the events' own (a channel lags): a start joined before the resolution it
    follows is remembered and revokes it when it comes, and a resolution joined after a
    later one does not replace it as the standing one. So the join gives the same result for
    the usual journeys (a resolution, then the customer back elsewhere) in any order. A
    start revokes at most one resolution."""
    if fact.kind is FactKind.RESOLVED:
        resolution = Standing(fact.channel, fact.conversation, fact.time_micros, fact.confirmed)
        for start in customer.starts:
            after = start.time_micros - resolution.resolved_micros
            if (
                _other(resolution, start.channel, start.conversation)
                and 0 <= after <= window_micros
            ):
                # a start revokes one resolution: it is used up
                rest = tuple(other for other in customer.starts if other is not start)
                return Customer(customer.standing, rest), Revocation(resolution, start.time_micros)
        standing = customer.standing
        if standing is None or standing.resolved_micros <= resolution.resolved_micros:
            standing = resolution
        return Customer(standing, customer.starts), None
    standing = customer.standing
    if fact.kind is FactKind.CLEARED:
        if standing is not None and not _other(standing, fact.channel, fact.conversation):
            return Customer(None, customer.starts), None
        return customer, None
    if (
        standing is not None
        and _other(standing, fact.channel, fact.conversation)
        and 0 <= fact.time_micros - standing.resolved_micros <= window_micros
    ):  # it revokes the standing resolution: used up, not remembered
        return Customer(None, customer.starts), Revocation(standing, fact.time_micros)
    start = Start(fact.channel, fact.conversation, fact.time_micros)
    newest = max([fact.time_micros, *(s.time_micros for s in customer.starts)])
    kept = [s for s in (*customer.starts, start) if s.time_micros >= newest - window_micros]
    return Customer(standing, tuple(kept[-MAX_STARTS:])), None


def revocation(standing: Standing, state: ConversationState) -> Effect | None:
    """What revoking `standing` does to its conversation, whose state is `state`: counted in
    ai_recontacts (and ai_revoked_confirmed for a confirmed one), the conversation left
    unresolved, as after a reopen. None when the resolution no longer stands there (the
    conversation was reopened or resolved again since): nothing to revoke."""
    if state.resolved_by is not Actor.AI or state.resolved_at_micros != standing.resolved_micros:
        return None
    increments = {Counter.AI_RECONTACTS: 1}
    if state.confirmed:
        increments[Counter.AI_REVOKED_CONFIRMED] = 1
    return Effect(increments, state.unresolved())

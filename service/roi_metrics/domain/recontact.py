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
from collections.abc import Callable, Container
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

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

    resolutions: tuple[Standing, ...] = ()
    """The customer's recent AI resolutions still standing, one per conversation (the
    latest 16 within the window of the newest): a start revokes the latest one at or before
    its time, so one joined late (its channel lagging) still takes part."""
    starts: tuple[Start, ...] = ()
    """The latest starts of the customer's conversations, within the window of the newest,
    that revoked nothing."""

    @property
    def standing(self) -> Standing | None:
        """The latest (in event time) AI resolution still standing."""
        return max(self.resolutions, key=lambda r: r.resolved_micros, default=None)


@dataclass(frozen=True, slots=True)
class Revocation:
    resolution: Standing
    at_micros: int
    """When the conversation that revokes it started: where the revocation is counted."""


T = TypeVar("T")
MAX_KEPT: Final = 16
"""Resolutions and starts remembered per customer at most (the latest)."""
NOBODY: Final = Customer()


def _other(standing: Standing, channel: str, conversation: str) -> bool:
    return (standing.channel, standing.conversation) != (channel, conversation)


def _revokes(start: Start, resolution: Standing, window_micros: int) -> bool:
    """A start of another conversation from the resolution's time to the window after it
    (both ends included)."""
    return (
        _other(resolution, start.channel, start.conversation)
        and 0 <= start.time_micros - resolution.resolved_micros <= window_micros
    )


def _recent(
    items: tuple[T, ...], newest: int, window_micros: int, time: Callable[[T], int]
) -> tuple[T, ...]:
    """The latest MAX_KEPT of `items` (oldest first) within the window of `newest`."""
    kept = [item for item in items if time(item) >= newest - window_micros]
    return tuple(kept[-MAX_KEPT:])


def join(
    customer: Customer,
    fact: Fact,
    window_micros: int,
    failed: Container[Standing] = (),
) -> tuple[Customer, Revocation | None]:
    """The customer after `fact`, and the revocation it makes (None: none).

    A conversation other than the resolved one that starts from an AI resolution's time to
    `window_micros` after it (both ends included) revokes that resolution, once. Facts are
    joined in the order the worker applied their events, but across channels that order can
    differ from the events' own (a channel lags), so the join leans on event time where it
    can without taking anything back: a start revokes the latest resolution at or before
    it (those before that one no longer stand: superseded); a start that revoked nothing is
    remembered and revokes the first resolution joined later that it follows (the earliest
    such start does); a resolution of a conversation replaces that conversation's earlier
    one whatever their times. A start revokes at most one resolution.

    `failed`: resolutions whose revocation was found not to apply (their conversation was
    reopened or resolved again since, which its own facts say): the fact is joined again
    without them, so that a start is not used up for nothing."""
    if fact.kind is FactKind.RESOLVED:
        resolution = Standing(fact.channel, fact.conversation, fact.time_micros, fact.confirmed)
        others = tuple(
            r for r in customer.resolutions if _other(r, fact.channel, fact.conversation)
        )
        if resolution in failed:
            return Customer(others, customer.starts), None
        waiting = [s for s in customer.starts if _revokes(s, resolution, window_micros)]
        if waiting:  # revoked at once by the first start after it
            first = min(waiting, key=lambda s: (s.time_micros, s.channel, s.conversation))
            rest = tuple(s for s in customer.starts if s is not first)
            return Customer(others, rest), Revocation(resolution, first.time_micros)
        ordered = tuple(sorted((*others, resolution), key=lambda r: r.resolved_micros))
        kept = _recent(ordered, ordered[-1].resolved_micros, window_micros, _resolved_micros)
        return Customer(kept, customer.starts), None
    if fact.kind is FactKind.CLEARED:
        others = tuple(
            r for r in customer.resolutions if _other(r, fact.channel, fact.conversation)
        )
        return Customer(others, customer.starts), None
    start = Start(fact.channel, fact.conversation, fact.time_micros)
    standing = tuple(r for r in customer.resolutions if r not in failed)
    candidates = [r for r in standing if _revokes(start, r, window_micros)]
    if candidates:  # the latest at or before the start; those before it were superseded
        latest = max(candidates, key=_resolved_micros)
        kept = tuple(
            r for r in standing if r is not latest and r.resolved_micros >= latest.resolved_micros
        )
        return Customer(kept, customer.starts), Revocation(latest, fact.time_micros)
    newest = max([fact.time_micros, *(s.time_micros for s in customer.starts)])
    starts = _recent((*customer.starts, start), newest, window_micros, _start_micros)
    return Customer(standing, starts), None


def _resolved_micros(resolution: Standing) -> int:
    return resolution.resolved_micros


def _start_micros(start: Start) -> int:
    return start.time_micros


def revocation(standing: Standing, state: ConversationState) -> Effect | None:
    """What revoking `standing` does to its conversation, whose state is `state`: counted in
    ai_recontacts (and ai_revoked_confirmed for a confirmed one), the conversation left
    unresolved, as after a reopen. None when the resolution no longer
    stands there (the conversation was reopened or resolved again since): nothing to
    revoke."""
    if state.resolved_by is not Actor.AI or state.resolved_at_micros != standing.resolved_micros:
        return None
    increments = {Counter.AI_RECONTACTS: 1}
    if state.confirmed:
        increments[Counter.AI_REVOKED_CONFIRMED] = 1
    return Effect(increments, state.unresolved())

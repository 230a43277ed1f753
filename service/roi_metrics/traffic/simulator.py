"""Realistic support traffic for demos and tests (`roi-metrics simulate`).

Conversations start on several channels, get answered by the AI or a person, escalate,
resolve (assumed or confirmed), reopen, get CSAT scores, cost AI money and bring revenue.
The AI's resolution rate on each channel follows a ramp-up curve over the first months after
go-live: `rate(day) = best - (best - first) * exp(-day / 35)` (95 % of the way after about
3.5 months). `time_scale` plays simulated time faster than real time, so the ramp-up fits in
minutes; event times are always real (the live windows show them).

Every run draws the same conversations for the same seed; event and conversation ids carry
a run id (random unless given) so that a second run is not dropped as duplicates.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from roi_metrics.domain.costcard import ChannelRamp, ramp_point
from roi_metrics.domain.events import MICROS_PER_SECOND

DEFAULT_CHANNELS: Final = ("whatsapp", "slack", "discord", "web", "email")
RAMP_DAYS: Final = 35.0
DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class Profile:
    """How one channel behaves."""

    share: float  # relative traffic
    ai_share: float  # conversations the AI answers first
    first_resolution: float  # AI resolution rate at go-live
    best_resolution: float  # after the ramp-up
    escalation: float  # share of AI conversations it cannot resolve that go to a person
    confirmed: float  # AI resolutions the customer confirms
    ai_cost: tuple[float, float]  # per AI conversation, currency units
    human_cost: float  # per conversation a person resolves
    revenue_chance: float  # AI resolutions that lead to a sale within 72 h
    reopen_chance: float  # AI resolutions reopened within minutes
    vs_ramp: float = 1.0
    """Against the cost card's expected learning curve (with Options.ramps): 1 on it, above
    1 ahead of it, below 1 behind it."""


PROFILES: Final = {
    "whatsapp": Profile(3.0, 0.85, 0.35, 0.72, 0.8, 0.30, (0.15, 0.70), 5.0, 0.06, 0.04, 1.3),
    "slack": Profile(1.5, 0.75, 0.30, 0.65, 0.9, 0.45, (0.25, 1.10), 7.5, 0.02, 0.05),
    "discord": Profile(1.0, 0.90, 0.40, 0.70, 0.7, 0.20, (0.10, 0.50), 4.0, 0.03, 0.06),
    "web": Profile(2.5, 0.80, 0.30, 0.68, 0.85, 0.35, (0.20, 0.90), 6.5, 0.08, 0.04),
    "email": Profile(1.2, 0.60, 0.20, 0.55, 0.9, 0.50, (0.30, 1.20), 8.0, 0.04, 0.03, 0.4),
}
DEFAULT_PROFILE: Final = Profile(1.0, 0.75, 0.30, 0.65, 0.85, 0.35, (0.20, 0.90), 6.5, 0.04, 0.04)
RETURN_CHANCE: Final = 0.06
"""Conversations started by a customer whose recent AI resolution did not help (§9)."""
RETURN_AFTER: Final = 1.0
"""Seconds from the end of a conversation (its last event) to the earliest return of its
customer: they come back once it is over, so each customer's conversations follow one
another (the order CONTRACT.md §9 joins them in)."""
RECENT_RESOLUTIONS: Final = 200
EVENTS_PER_CONVERSATION: Final = 4.1  # measured on the profiles above (see the tests)
REVENUE: Final = ("19.00", "49.50", "120.25", "9.99")


def resolution_rate(profile: Profile, day: float) -> float:
    """The AI's resolution rate `day` days after go-live (the ramp-up curve)."""
    progress = 1.0 - math.exp(-max(0.0, day) / RAMP_DAYS)
    return profile.best_resolution - (profile.best_resolution - profile.first_resolution) * (
        1.0 - progress
    )


@dataclass(frozen=True, slots=True)
class Planned:
    """One event to send `offset` seconds after its conversation starts."""

    offset: float
    kind: str
    data: dict[str, Any]


def conversation(
    rng: random.Random,
    profile: Profile,
    day: float,
    degraded: bool,
    currency: str,
    *,
    resolution: float | None = None,
) -> list[Planned]:
    """The events of one conversation, in order, with their delays (seconds); the AI
    resolves with probability `resolution`, by default its ramp-up curve's at `day`."""
    ai = rng.random() < profile.ai_share
    planned = [Planned(0.0, "conversation.started", {"handled_by": "ai" if ai else "human"})]
    at = 0.0

    def add(delay: float, kind: str, **data: Any) -> None:
        nonlocal at
        at += delay
        planned.append(Planned(at, kind, data))

    def human_resolution() -> None:
        add(
            rng.uniform(2, 8),
            "conversation.resolved",
            resolved_by="human",
            confirmation="confirmed",
        )
        add(0.1, "cost.recorded", **_money(profile.human_cost, currency, "human_handling"))
        if rng.random() < 0.4:
            add(rng.uniform(1, 3), "csat.recorded", score=rng.choice((3, 4, 4, 5, 5)))

    if not ai:
        human_resolution()
        return planned
    low, high = profile.ai_cost
    add(0.5, "cost.recorded", **_money(rng.uniform(low, high), currency, "ai_usage"))
    if resolution is None:
        resolution = resolution_rate(profile, day)
    resolves = rng.random() < (0.02 if degraded else resolution)
    if not resolves:
        if rng.random() < (0.97 if degraded else profile.escalation):
            add(rng.uniform(1, 4), "conversation.escalated", reason="customer asked for a person")
            human_resolution()
        return planned
    confirmation = "confirmed" if rng.random() < profile.confirmed else "assumed"
    add(rng.uniform(2, 10), "conversation.resolved", resolved_by="ai", confirmation=confirmation)
    if rng.random() < profile.reopen_chance:
        add(rng.uniform(5, 15), "conversation.reopened")
        add(rng.uniform(1, 3), "conversation.escalated", reason="reopened by the customer")
        human_resolution()
        return planned
    if rng.random() < 0.5:
        add(rng.uniform(1, 3), "csat.recorded", score=rng.choice((3, 4, 5, 5, 5)))
    if rng.random() < profile.revenue_chance:
        add(rng.uniform(2, 6), "revenue.attributed", amount=rng.choice(REVENUE), currency=currency)
    return planned


def _money(amount: float, currency: str, category: str) -> dict[str, str]:
    value = Decimal(f"{amount:.4f}")
    return {"amount": str(value), "currency": currency, "category": category}


@dataclass
class Options:
    channels: list[str] = field(default_factory=lambda: list(DEFAULT_CHANNELS))
    rate: float = 20.0  # events per second
    seed: int = 42
    time_scale: float = 1.0  # simulated seconds per real second
    start_day: float = 0.0  # simulated days since go-live when the run starts
    degrade: str | None = None  # channel whose AI stops resolving
    degrade_after: float = 30.0  # seconds into the run
    add_channel: str | None = None
    add_after: float = 60.0
    backfill_days: float = 0.0  # history published first, up to 7 days back
    backfill_per_day: int = 150  # conversations per channel and day of history
    returning: float = RETURN_CHANCE  # conversations by a customer back after an AI resolution
    currency: str = "USD"
    run_id: str = ""
    ramps: dict[str, ChannelRamp] | None = None
    """The cost card's expected learning curves (CONTRACT.md §11): when given, each
    channel's AI resolves as its curve expects at the conversation's time, times its
    profile's vs_ramp, and not as the simulator's own ramp-up (so the figures sit on,
    above or below the curve the exporter draws)."""


@dataclass(order=True)
class _Due:
    due: float
    sequence: int
    channel: str = field(compare=False)
    conversation: str = field(compare=False)
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False)
    customer: str | None = field(default=None, compare=False)
    """The `customer` attribute (CONTRACT.md §9), on the started event."""


class Simulator:
    """Draws conversations and hands out their events when they are due."""

    def __init__(self, options: Options, started: float | None = None) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.run_id = options.run_id or f"{random.getrandbits(32):08x}"
        self.started = time.time() if started is None else started
        self.channels = list(options.channels)
        self.pending: list[_Due] = []
        self.sequence = 0
        self.conversations = 0
        self.customers = 0
        self.resolved: list[tuple[float, str]] = []
        """(time from which they may come back, customer) of recent conversations the AI
        resolved, some of whose customers come back."""
        self.next_start = self.started

    def day(self, now: float) -> float:
        """Simulated days since go-live at real time `now`."""
        return self.options.start_day + (now - self.started) * self.options.time_scale / DAY

    def expected_resolution(self, channel: str, profile: Profile, at: float) -> float | None:
        """With the card's curves: the chance that the AI resolves a conversation of
        `channel` started at `at` (None: the simulator's own ramp-up): the resolution ratio
        (AI resolutions / AI conversations) the curve expects, times vs_ramp."""
        ramps = self.options.ramps
        ramp = None if ramps is None else ramps.get(channel)
        point = None if ramp is None else ramp_point(ramp, at)
        if point is None:
            return None
        return min(0.97, point.expected * profile.vs_ramp)

    def degraded(self, channel: str, now: float) -> bool:
        return channel == self.options.degrade and now - self.started >= self.options.degrade_after

    def _pick_channel(self) -> str:
        weights = [PROFILES.get(c, DEFAULT_PROFILE).share for c in self.channels]
        return self.rng.choices(self.channels, weights)[0]

    def _customer(self, start: float) -> str:
        """Who starts a conversation at `start`: now and then (RETURN_CHANCE) a customer whose
        AI resolution did not help, coming back on any channel a moment after that
        conversation ended (CONTRACT.md §9), else a new one. Ids are opaque hashes, as
        publishers are asked to send."""
        if self.resolved and self.rng.random() < self.options.returning:
            ready = [i for i, (due, _) in enumerate(self.resolved) if due <= start]
            if ready:
                return self.resolved.pop(self.rng.choice(ready))[1]
        self.customers += 1
        text = f"{self.run_id}/{self.customers}".encode()
        return hashlib.blake2b(text, digest_size=8).hexdigest()

    def _plan(self, channel: str, start: float, day: float, degraded: bool) -> None:
        profile = PROFILES.get(channel, DEFAULT_PROFILE)
        self.conversations += 1
        name = f"{channel}-{self.run_id}-{self.conversations}"
        customer = self._customer(start)
        plan = conversation(
            self.rng,
            profile,
            day,
            degraded,
            self.options.currency,
            resolution=self.expected_resolution(channel, profile, start),
        )
        for planned in plan:
            self.sequence += 1
            heapq.heappush(
                self.pending,
                _Due(
                    start + planned.offset,
                    self.sequence,
                    channel,
                    name,
                    planned.kind,
                    planned.data,
                    customer if planned.kind == "conversation.started" else None,
                ),
            )
        kinds = [planned.kind for planned in plan]
        by_ai = [p.offset for p in plan if p.data.get("resolved_by") == "ai"]
        if by_ai and "conversation.reopened" not in kinds:
            self.resolved.append((start + plan[-1].offset + RETURN_AFTER, customer))
            del self.resolved[:-RECENT_RESOLUTIONS]  # the latest only

    def backfill(self, now: float) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """History over the last `backfill_days` (at most 7: older events would be late),
        in time order, AI quality as it was on each day."""
        days = min(self.options.backfill_days, 7.0)
        if days <= 0:
            return
        count = int(days * self.options.backfill_per_day * len(self.channels))
        first = now - days * DAY + 600  # keep clear of the 7-day lateness edge
        starts = sorted(self.rng.uniform(first, now - 120) for _ in range(count))
        for start in starts:
            day = self.options.start_day - (now - start) / DAY
            self._plan(self._pick_channel(), start, day, degraded=False)
        yield from self.due(now)

    def due(self, now: float) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Start the conversations due by `now`, then yield (channel, key, CloudEvent) for
        every event due by `now`, stamped with its due time."""
        added = self.options.add_channel
        mean_gap = EVENTS_PER_CONVERSATION / self.options.rate
        while self.next_start <= now:
            plugged = self.next_start - self.started >= self.options.add_after
            if added and plugged and added not in self.channels:  # from its first start on
                self.channels.append(added)
            channel = self._pick_channel()
            self._plan(
                channel,
                self.next_start,
                self.day(self.next_start),
                self.degraded(channel, self.next_start),
            )
            self.next_start += self.rng.expovariate(1.0 / mean_gap)
        while self.pending and self.pending[0].due <= now:
            item = heapq.heappop(self.pending)
            yield item.channel, item.conversation, self._event(item)

    def drain(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every event still planned, at its own (near future) time: started conversations
        finish instead of being cut off when a run stops."""
        while self.pending:
            item = heapq.heappop(self.pending)
            yield item.channel, item.conversation, self._event(item)

    def _event(self, item: _Due) -> dict[str, Any]:
        micros = int(item.due * MICROS_PER_SECOND)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(micros // MICROS_PER_SECOND))
        body = {
            "specversion": "1.0",
            "id": f"{item.conversation}-{item.sequence}",
            "source": f"/simulator/{item.channel}",
            "type": f"support.{item.kind}",
            "time": f"{stamp}.{micros % MICROS_PER_SECOND:06d}Z",
            "subject": item.conversation,
            "datacontenttype": "application/json",
            "data": {"channel": item.channel, **item.data},
        }
        if item.customer is not None:
            body["customer"] = item.customer
        return body

"""Seeded traffic with known answers, and an oracle that recomputes the Redis state from it.

The oracle is written from CONTRACT.md, independently of service/: its own join state, its
own dedup set, its own bucket arithmetic. It relies on the generator's labels for validity
(the generator knows which records it broke, and how).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.cloudevents import encode, event

DAY = 86_400
BUCKETS = {"m": (60, 65), "h": (3600, 25), "d": (DAY, 31)}
"""Bucket size and how many past buckets a ring keeps (docs/metrics.md, item 10)."""
MAX_LATENESS = 7 * DAY


@dataclass
class Labelled:
    channel: str
    body: dict[str, Any]
    valid: bool


@dataclass
class Traffic:
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    """(channel, key, value) in publish order."""
    events: list[Labelled] = field(default_factory=list)
    """Every event the records carry, in publish order, labelled valid or not."""

    @property
    def event_count(self) -> int:
        return len(self.events)


RECONTACT_WINDOW = 7 * DAY
"""The worker's default ROI_RECONTACT_WINDOW_SECONDS."""


class Generator:
    def __init__(self, seed: int, now: int, channels: list[str], customers: bool = False) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.channels = channels
        self.serial = 0
        self.customers = customers
        """Every conversation names a customer, and some customers come back on another
        channel soon after an AI resolution (CONTRACT.md §9)."""

    def next_id(self) -> str:
        self.serial += 1
        return f"ev-{self.serial}"

    def _times(self, start_at: float | None) -> tuple[float, float]:
        """A conversation's start and resolution times."""
        rng = self.rng
        kind = rng.random()
        if start_at is not None:
            return start_at, start_at + rng.randint(5, 60)
        if kind < 0.04:
            return self.now - 4 * DAY, self.now - 4 * DAY + 60  # old, not late
        if kind < 0.08:
            return self.now - 8 * DAY, self.now - 8 * DAY + 60  # late
        start = self.now - rng.randint(70, 1200)  # the last event is at most ~3 s ahead
        return start, start + rng.randint(5, 60)

    def conversation(
        self, channel: str, name: str, start_at: float | None = None
    ) -> list[dict[str, Any]]:
        """One conversation's events, in time order (starting at `start_at` when given)."""
        rng, source = self.rng, f"/{channel}/acme"
        start, resolved_at = self._times(start_at)
        ai = rng.random() < 0.8
        events = [
            event(
                "conversation.started",
                self.next_id(),
                name,
                start,
                source,
                handled_by="ai" if ai else "human",
            )
        ]
        if self.customers:
            events[0]["customer"] = f"cust/{channel}/{name}"  # ids are opaque: any text

        def add(kind: str, at: float, **data: Any) -> None:
            events.append(event(kind, self.next_id(), name, at, source, **data))

        if ai:
            add(
                "cost.recorded",
                start + 1,
                amount=f"{rng.randint(1, 90000) / 1e6:.6f}",
                currency="USD",
                category="ai_usage",
            )
            if rng.random() < 0.15:
                add("conversation.escalated", start + 2, reason="asked for a person")
        if rng.random() < 0.85:
            by = "ai" if ai and rng.random() < 0.75 else "human"
            confirmation = rng.choice(["assumed", "confirmed"])
            add("conversation.resolved", resolved_at, resolved_by=by, confirmation=confirmation)
            if by == "human":
                add(
                    "cost.recorded",
                    resolved_at,
                    amount=str(rng.randint(2, 9)),
                    currency="USD",
                    category="human_handling",
                )
        at = max(resolved_at, self.now - 30) + 1 if start < self.now - DAY else resolved_at + 1
        if rng.random() < 0.1:
            add("conversation.reopened", at)
        if rng.random() < 0.5:
            add("csat.recorded", at + 1, score=rng.randint(1, 5))
        if rng.random() < 0.2:
            add(
                "revenue.attributed",
                at + 2,
                amount=rng.choice([19, 49.5, "120.25", "0.99"]),
                currency="USD",
            )
        if rng.random() < 0.05:
            add(
                "cost.recorded",
                at + 3,
                amount="0.5",
                currency="USD",
                category=rng.choice(["platform_fee", "other"]),
            )
        return events

    def invalid(self, channel: str, traffic: Traffic) -> None:
        """One record of every kind the worker must reject or ignore."""
        key = f"bad-{self.next_id()}"

        def good(**over: Any) -> dict[str, Any]:
            started = event(
                "conversation.started",
                self.next_id(),
                key,
                self.now - 5,
                f"/{channel}/acme",
                handled_by="ai",
            )
            return {**started, **over}

        no_subject = good()
        del no_subject["subject"]
        singles: list[tuple[bytes, list[tuple[dict[str, Any], bool]]]] = [
            (b"{not json", []),
            (encode(no_subject), [(no_subject, False)]),
        ]
        for body in (
            {**good(), "type": "support.csat.recorded", "data": {"score": 9}},
            {**good(), "data": {"handled_by": "ai", "channel": "elsewhere"}},
            {
                **good(),
                "type": "support.revenue.attributed",
                "data": {"amount": "5", "currency": "EUR"},
            },
            good(time=event("x", "", "", self.now + 3600)["time"]),
            {**good(), "type": "support.conversation.transferred"},
        ):
            singles.append((encode(body), [(body, False)]))
        oversize = good(padding="x" * (1024 * 1024))
        singles.append((encode(oversize), [(oversize, False)]))
        too_many = [good() for _ in range(1001)]
        singles.append((encode(too_many), [(body, False) for body in too_many]))
        counted = {**good(), "subject": key}
        mixed = [
            counted,
            {**good(), "data": {"handled_by": "robot"}},
            {**good(), "type": "support.x"},
        ]
        singles.append((encode(mixed), [(mixed[0], True), (mixed[1], False), (mixed[2], False)]))
        for value, labelled in singles:
            traffic.records.append((channel, key.encode(), value))
            traffic.events.extend(Labelled(channel, body, valid) for body, valid in labelled)

    def _return(
        self, channel: str, events: list[dict[str, Any]]
    ) -> list[list[tuple[str, bytes, list[dict[str, Any]]]]]:
        """A third of the customers whose conversation ended with an AI resolution come
        back on another channel 5 seconds later (one record per event, as a queue)."""
        last = events[-1]
        if not (
            self.customers
            and last["type"] == "support.conversation.resolved"
            and last["data"]["resolved_by"] == "ai"
            and self.rng.random() < 0.33
        ):
            return []
        other = self.rng.choice([c for c in self.channels if c != channel])
        name = f"{other}-back-{self.next_id()}"
        came_back = self.conversation(other, name, start_at=_micros(last["time"]) / 1e6 + 5)
        came_back[0]["customer"] = events[0]["customer"]
        return [[(other, name.encode(), [e]) for e in came_back]]

    def traffic(self, conversations_per_channel: int, duplicate_share: float = 0.02) -> Traffic:
        queues: list[list[tuple[str, bytes, list[dict[str, Any]]]]] = []
        for channel in self.channels:
            for number in range(conversations_per_channel):
                name = f"{channel}-conv-{number}"
                events = self.conversation(channel, name)
                for again in self._return(channel, events):
                    queues.append(again)
                key = name.encode()
                if self.rng.random() < 0.3:
                    queue = [(channel, key, events)]  # one batch record
                else:
                    queue = [(channel, key, [e]) for e in events]
                for original in list(events):
                    if self.rng.random() < duplicate_share:
                        queue.insert(
                            self.rng.randint(len(queue) // 2, len(queue)),
                            (channel, key, [original]),
                        )
                queues.append(queue)
        traffic = Traffic()
        order = [index for index, queue in enumerate(queues) for _ in queue]
        self.rng.shuffle(order)
        cursors = [0] * len(queues)
        for index in order:
            channel, key, events = queues[index][cursors[index]]
            cursors[index] += 1
            value = encode(events if len(events) > 1 or self.rng.random() < 0.1 else events[0])
            traffic.records.append((channel, key, value))
            traffic.events.extend(Labelled(channel, e, True) for e in events)
        for channel in self.channels:
            self.invalid(channel, traffic)
        return traffic


TIME = re.compile(r"(.{10})[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def _micros(text: str) -> int:
    """Unix microseconds of an RFC 3339 time as docs/metrics.md reads it: fraction digits
    past the microsecond cut, a leap second (:60) as the minute's last microsecond."""
    match = TIME.fullmatch(text)
    assert match is not None, text
    date, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "")[:6].ljust(6, "0"))
    if second == "60":
        second, micros = "59", 999_999
    zone = "+00:00" if zone in "Zz" else zone
    moment = dt.datetime.fromisoformat(f"{date}T{hour}:{minute}:{second}{zone}")
    whole = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(seconds=1)
    return whole * 1_000_000 + micros


def _money(amount: Any) -> int:
    return int(Decimal(str(amount)) * 1_000_000)


Join = tuple[str, int, bool] | None
"""Who resolved the conversation last, when (Unix microseconds) and whether it was a
confirmed resolution, or None."""


def _moved(
    kind: str, data: dict[str, Any], previous: Join, time_us: int
) -> tuple[dict[str, int], Join]:
    """The counters one event moves and the conversation's join state after it."""
    ai_since = previous[1] if previous and previous[0] == "ai" else None
    if kind == "support.conversation.started":
        ai = data["handled_by"] == "ai"
        return (
            {"conversations": 1, "ai_conversations": 1} if ai else {"conversations": 1}
        ), previous
    if kind == "support.conversation.escalated":
        return {"escalations": 1}, previous
    if kind == "support.conversation.resolved":
        who = data["resolved_by"]
        counter = (
            f"ai_resolutions_{data.get('confirmation', 'assumed')}"
            if who == "ai"
            else "human_resolutions"
        )
        confirmed = data.get("confirmation") == "confirmed"
        return {counter: 1}, (who, time_us, confirmed)
    if kind == "support.conversation.reopened":
        reopened = ai_since is not None and ai_since <= time_us <= ai_since + 7 * DAY * 10**6
        if not reopened:
            return {}, None
        # a vendor that bills confirmed resolutions only billed this one for nothing (§13)
        if previous and previous[2]:
            return {"ai_reopens": 1, "ai_revoked_confirmed": 1}, None
        return {"ai_reopens": 1}, None
    if kind == "support.csat.recorded":
        who = previous[0] if previous else "none"
        return {f"csat_count_{who}": 1, f"csat_sum_{who}": data["score"]}, previous
    amount = _money(data["amount"])
    if kind == "support.cost.recorded":
        human = data["category"] == "human_handling"
        return {"human_cost_micros" if human else "ai_cost_micros": amount}, previous
    within = ai_since is not None and ai_since <= time_us <= ai_since + 72 * 3600 * 10**6
    return {"ai_revenue_micros" if within else "human_revenue_micros": amount}, previous


def _bucket_keys(channel: str, time_us: int, now: int) -> list[str]:
    keys = [f"roi:{{{channel}}}:b:all:0"]
    seconds = time_us // 10**6
    if seconds >= now - MAX_LATENESS:
        for name, (size, kept) in BUCKETS.items():
            start = seconds - seconds % size
            if start + size * (kept + 1) > now:
                keys.append(f"roi:{{{channel}}}:b:{name}:{start}")
    return keys


def recompute(traffic: Traffic, now: int) -> dict[str, dict[str, int]]:
    """Every bucket hash the worker should have written: key -> {counter: value}."""
    joins: dict[tuple[str, str], Join] = {}
    seen: set[tuple[str, str, str]] = set()
    buckets: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    customers: dict[tuple[str, str], str] = {}
    starts: dict[str, list[tuple[tuple[str, str], int]]] = defaultdict(list)
    for item in traffic.events:
        body, channel = item.body, item.channel
        identity = (channel, body["source"], body["id"])
        if not item.valid or identity in seen:
            continue
        seen.add(identity)
        conversation = (channel, body["subject"])
        time_us = _micros(body["time"])
        if body["type"] == "support.conversation.started" and "customer" in body:
            customers.setdefault(conversation, body["customer"])
            starts[body["customer"]].append((conversation, time_us))
        moved, joins[conversation] = _moved(
            body["type"], body["data"], joins.get(conversation), time_us
        )
        for key in _bucket_keys(channel, time_us, now):
            for counter, amount in moved.items():
                buckets[key][counter] += amount
    # CONTRACT.md §9, for the generator's journeys (a customer's AI resolution that ends its
    # conversation, then maybe another conversation of theirs 5 s later): the resolution
    # still standing at the end is revoked by the first other conversation of its customer
    # that starts from its time to the window after, counted at that start's time.
    for conversation, join_state in joins.items():
        customer = customers.get(conversation)
        if customer is None or join_state is None or join_state[0] != "ai":
            continue
        resolved = join_state[1]
        later = sorted(
            at
            for other, at in starts[customer]
            if other != conversation and 0 <= at - resolved <= RECONTACT_WINDOW * 10**6
        )
        if later:
            moved = {"ai_recontacts": 1}
            if join_state[2]:
                moved["ai_revoked_confirmed"] = 1
            for key in _bucket_keys(conversation[0], later[0], now):
                for counter, amount in moved.items():
                    buckets[key][counter] += amount
    return {key: {c: v for c, v in counters.items() if v} for key, counters in buckets.items()}

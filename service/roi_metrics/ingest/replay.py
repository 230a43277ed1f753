"""Offline replay: the figures of an NDJSON export of events, without Kafka or Redis.

Each line is what a record of a channel topic holds: one CloudEvent or a JSON array of them.
The channel of a line is its events' `data.channel`, else the `--channel` given. Lines go
through the worker's decoder and fold in file order, with the same dedup, joins and
lateness, all at one clock (`at`); state is kept in memory. The result is a Snapshot, so the
figures come from the same code the exporter uses (roi_metrics.domain.report).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from roi_metrics.domain.aggregate import (
    CUMULATIVE,
    BatchDelta,
    BucketKey,
    ConversationKey,
    DedupMark,
    Outcome,
    fold,
    revoke,
)
from roi_metrics.domain.channels import is_channel_name
from roi_metrics.domain.events import MICROS_PER_SECOND, UNRESOLVED, ConversationState, Counter
from roi_metrics.domain.recontact import (
    NOBODY,
    RECONTACT_WINDOW_SECONDS,
    Customer,
    Standing,
    join,
)
from roi_metrics.domain.report import Snapshot
from roi_metrics.domain.timebuckets import ROLLING_WINDOWS, Window
from roi_metrics.ingest import jsonstrict
from roi_metrics.ingest.contract import DeadLetterReason, rfc3339_micros
from roi_metrics.ingest.decode import MAX_BATCH_EVENTS, Decoder, unexpected

MAX_EXAMPLES = 20


@dataclass(frozen=True, slots=True)
class Refused:
    line: int
    reason: str
    message: str


@dataclass
class Replay:
    """Feed lines, then take the snapshot at `at_micros`."""

    currency: str
    at_micros: int
    max_lateness_seconds: int
    default_channel: str | None = None
    buckets: dict[tuple[str, BucketKey], dict[Counter, int]] = field(default_factory=dict)
    states: dict[ConversationKey, ConversationState] = field(default_factory=dict)
    seen: set[DedupMark] = field(default_factory=set)
    outcomes: Tally[tuple[str, Outcome]] = field(default_factory=Tally)
    refused: Tally[str] = field(default_factory=Tally)
    examples: list[Refused] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)
    recontact_window_seconds: int = RECONTACT_WINDOW_SECONDS
    customers: dict[str, Customer] = field(default_factory=dict)
    """What is kept of each customer (CONTRACT.md §9), joined as the agent joins."""

    def __post_init__(self) -> None:
        self.decoder = Decoder(self.currency)

    def outcome_counts(self) -> dict[str, int]:
        """Events by outcome over every channel (`counted 15, duplicate 1` …), sorted."""
        totals: Tally[str] = Tally()
        for (_, outcome), count in self.outcomes.items():
            totals[outcome.value] += count
        return dict(sorted(totals.items()))

    def refused_counts(self) -> dict[str, int]:
        """Refused lines and events by reason, sorted."""
        return dict(sorted(self.refused.items()))

    def _refuse(self, number: int, reason: str, message: str) -> None:
        self.refused[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(Refused(number, reason, message))

    def _channel_of(self, line: bytes) -> str | None:
        """The channel the line's events name (or --channel); "" when the line is no JSON
        at all (the decoder then says why, whatever the channel)."""
        try:
            values = jsonstrict.parse(line, MAX_BATCH_EVENTS).values
        except jsonstrict.JsonError:
            return self.default_channel or ""
        first = values[0] if values else None
        data = first.get("data") if isinstance(first, dict) else None
        named = data.get("channel") if isinstance(data, dict) else None
        return named if isinstance(named, str) else self.default_channel

    def feed(self, lines: Iterable[tuple[int, bytes]]) -> None:
        """Decode and fold numbered lines (blank ones are skipped), in order."""
        for number, raw in lines:
            line = raw.strip()
            if not line:
                continue
            channel = self._channel_of(line)
            if channel is None:
                self._refuse(number, "no_channel", "no data.channel; pass --channel")
                continue
            if channel == "":
                for rejection in self.decoder.decode_record(line, "", self.at_micros).rejections:
                    self._refuse(number, rejection.reason.value, rejection.message)
                continue
            if not is_channel_name(channel):
                self._refuse(number, "invalid_channel", f"{channel!r} is not a channel name")
                continue
            decoded = self.decoder.decode_record(line, channel, self.at_micros)
            for rejection in decoded.rejections:
                self._refuse(number, rejection.reason.value, rejection.message)
                self.outcomes[(channel, Outcome.DEAD_LETTERED)] += 1
            if decoded.ignored:
                self.outcomes[(channel, Outcome.IGNORED)] += decoded.ignored
            self._fold(number, channel, decoded.events)

    def _fold(self, number: int, channel: str, events: list[Any]) -> None:
        if not events:
            return
        delta = fold(
            events,
            self.states,
            self.seen,
            self.at_micros,
            self.max_lateness_seconds * MICROS_PER_SECOND,
        )
        self._add(delta)
        self.seen |= delta.dedup_marks
        self.outcomes.update(delta.outcomes)
        self._join(delta)
        for _, error in delta.failed:
            self._refuse(number, DeadLetterReason.UNPROCESSABLE.value, unexpected(error))
            self.outcomes[(channel, Outcome.DEAD_LETTERED)] += 1
        if delta.dedup_marks:  # a channel is known from its first counted event
            self.channels.add(channel)

    def _add(self, delta: BatchDelta) -> None:
        for key, increments in delta.increments.items():
            counters = self.buckets.setdefault(key, {})
            for counter, amount in increments.items():
                counters[counter] = counters.get(counter, 0) + amount
        self.states.update(delta.states)

    def _join(self, delta: BatchDelta) -> None:
        """The batch's customer facts, joined in order as the customer agent joins them; a
        revocation applied to the resolved conversation at once."""
        window = self.recontact_window_seconds * MICROS_PER_SECOND
        lateness = self.max_lateness_seconds * MICROS_PER_SECOND
        for _, fact in delta.facts:
            failed: set[Standing] = set()
            while True:  # again without a resolution found not to stand, as the agent does
                customer, revoked = join(
                    self.customers.get(fact.customer, NOBODY), fact, window, failed
                )
                if revoked is None:
                    break
                resolution = revoked.resolution
                state = self.states.get((resolution.channel, resolution.conversation), UNRESOLVED)
                revocation = revoke(resolution, state, revoked.at_micros, self.at_micros, lateness)
                if revocation is not None:
                    self._add(revocation)
                    break
                failed.add(resolution)
            self.customers[fact.customer] = customer

    def snapshot(self) -> Snapshot:
        """Every channel's window sums at the replay clock, as the exporter reads Redis."""
        now = self.at_micros // MICROS_PER_SECOND
        counts: dict[str, dict[Window, dict[Counter, int]]] = {}
        for channel in sorted(self.channels):
            per_window: dict[Window, dict[Counter, int]] = {}
            for rolling in ROLLING_WINDOWS:
                total: dict[Counter, int] = {}
                for start in rolling.bucket_starts(now):
                    for counter, amount in self.buckets.get(
                        (channel, (rolling.resolution.name, start)), {}
                    ).items():
                        total[counter] = total.get(counter, 0) + amount
                per_window[rolling.window] = total
            per_window[Window.ALL] = dict(self.buckets.get((channel, CUMULATIVE), {}))
            counts[channel] = per_window
        return Snapshot(now, counts)


def newest_time_micros(lines: Iterable[bytes]) -> int | None:
    """The newest `time` among the lines' events (unparseable ones are skipped), for a
    replay "as of the end of the export"."""
    newest = None
    for line in lines:
        try:
            values = jsonstrict.parse(line, MAX_BATCH_EVENTS).values
        except jsonstrict.JsonError:
            continue
        for item in values:
            stamp = item.get("time") if isinstance(item, dict) else None
            if not isinstance(stamp, str):
                continue
            try:
                micros = rfc3339_micros(stamp)
            except ValueError:
                continue
            newest = micros if newest is None else max(newest, micros)
    return newest

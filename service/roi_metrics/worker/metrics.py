"""The worker's own metrics (CONTRACT.md §8), in a registry of its own."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from roi_metrics.domain.aggregate import Outcome
from roi_metrics.ingest.contract import DeadLetterReason
from roi_metrics.telemetry import runtime_registry

UNREGISTERED: Final = "_unregistered"
"""The channel label of a topic that is not a known channel (yet): its dead letters are
counted under this one label, so garbage topics cannot multiply the series. Channel names
never start with '_'."""

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only add noise to these gauges and counters


FACT_OUTCOMES: Final = ("joined", "seen", "revoked", "invalid", "deferred")


class WorkerMetrics:
    """Process metrics of one worker. Labels are bounded: channel, outcome, reason, topic,
    partition; never conversation, customer or event ids."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or runtime_registry()  # with process and build info
        self.events = Counter(
            "support_events",
            "Events by what became of them (counted, duplicate, late, ignored, dead_lettered).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "support_dead_letters",
            "Records or events sent to the dead-letter topic, by reason.",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.redelivered = Counter(
            "support_redelivered_records",
            "Records delivered again (after a crash or rebalance) and skipped: already applied.",
            ["channel"],
            registry=self.registry,
        )
        self.recovered = Counter(
            "support_recovered_records",
            "Records the consumer dropped in a rebalance, read again from Kafka and applied.",
            ["channel"],
            registry=self.registry,
        )
        self.unread = Counter(
            "support_unread_offsets",
            "Offsets of a channel topic Kafka deleted (retention) before the worker applied "
            "them: whatever records they held are not counted.",
            ["channel"],
            registry=self.registry,
        )
        self.last_event = Gauge(
            "support_last_event_timestamp_seconds",
            "Newest event time counted on the channel (Unix seconds).",
            ["channel"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "support_batch_apply_seconds",
            "Time to read, fold and apply one batch to the state store.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Gauge(
            "support_consumer_lag",
            "Records in the partition after the last one applied.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.applied_offset = Gauge(
            "support_applied_offset",
            "Last offset applied to the state store, per assigned partition (-1: none yet).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.state_store_up = Gauge(
            "support_state_store_up",
            "1 when the last state store operation succeeded, else 0.",
            registry=self.registry,
        )
        self.channels = Gauge(
            "support_worker_channels",
            "Channel topics this worker is subscribed to.",
            registry=self.registry,
        )
        self.not_channels = Gauge(
            "support_worker_ignored_topics",
            "Topics under the topic prefix whose name is not a channel name: nothing reads them "
            "(the worker log names them).",
            registry=self.registry,
        )
        self.undeliverable = Counter(
            "support_dead_letters_undeliverable",
            "Dead letters the broker refused even without key and payload (see the worker log);"
            " the record stays at its origin offset.",
            registry=self.registry,
        )
        self.facts = Counter(
            "support_customer_facts",
            "Customer facts (CONTRACT.md §9) the customer agent took, by what became of them: "
            "joined, seen (sent again, joined before), revoked (it revoked an AI resolution), "
            "deferred (handed over while the joiner was behind: read again from Kafka later, "
            "and counted again then), "
            "invalid (not a fact this service writes, or one that met a corrupt state: skipped).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in FACT_OUTCOMES:
            self.facts.labels(outcome)
        self.facts_lag = Gauge(
            "support_customer_facts_lag",
            "Customer facts in this worker's partitions of the customer topic not joined yet "
            "(their end offset against the joiner's progress mark), as of the joiner's last look "
            "at their end (every 10 s at most).",
            registry=self.registry,
        )
        self.facts_pending = Gauge(
            "support_customer_facts_pending",
            "Customer facts handed over and waiting for the joiner (at most "
            "FACT_QUEUE_SIZE; beyond, they are deferred).",
            registry=self.registry,
        )
        self.facts_sent = Counter(
            "support_customer_facts_sent",
            "Customer facts the worker sent to the customer topic (CONTRACT.md §9).",
            registry=self.registry,
        )
        self.state_store_up.set(1)
        self.known_channels: set[str] = set()
        self.channel_known(UNREGISTERED)

    def channel_known(self, channel: str) -> None:
        """Start the channel's counters at 0, so that rate() and increase() see its first
        events and dead letters (a series born at 1 shows no increase)."""
        if channel in self.known_channels:
            return
        self.known_channels.add(channel)
        for outcome in Outcome:
            self.events.labels(channel, outcome.value)
        for reason in DeadLetterReason:
            self.dead_letters.labels(channel, reason.value)
        self.redelivered.labels(channel)
        self.recovered.labels(channel)
        self.unread.labels(channel)

    def label(self, channel: str) -> str:
        """The channel label of a channel's metrics: its name once known (registered),
        else UNREGISTERED, so that unbounded names never become label values."""
        return channel if channel in self.known_channels else UNREGISTERED

    def outcome(self, channel: str, outcome: Outcome, count: int = 1) -> None:
        if count:
            self.events.labels(channel, outcome.value).inc(count)

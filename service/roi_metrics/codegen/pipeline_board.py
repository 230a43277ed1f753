"""The "Pipeline health" dashboard: is every event counted, how fast, how far behind."""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard

from roi_metrics.codegen.panels import (
    APPLY_LATENCY,
    AT_LEAST_ONE,
    LAG,
    NONE_WANTED,
    Scale,
    new_board,
    series_panel,
    stat_panel,
    with_datasource,
)
from roi_metrics.codegen.promql import EXPORTER_JOB, WORKER_JOB
from roi_metrics.codegen.rules import DEFAULT_THRESHOLDS, load_thresholds

APPLY_RATE: Final = "sum by (le) (rate(support_batch_apply_seconds_bucket[5m]))"
# Per partition, whichever worker holds it (rulegen's recording rule): offsets only grow, so
# rate() reads records passed per second, and a recreated topic reads as a counter reset.
APPLIED: Final = "topic_partition:support_applied_offset:max"


def _silence() -> Scale:
    """Time since a channel's last event: yellow from half the silent-channel alert's
    threshold, red from it (thresholds.toml)."""
    values = load_thresholds(DEFAULT_THRESHOLDS).values["SupportChannelSilent"]
    seconds = float(values["silence_seconds"])
    return Scale("green", ((seconds / 2, "yellow"), (seconds, "red")))


def pipeline_health() -> dashboard.Dashboard:
    board = new_board(
        "roi-pipeline",
        "Pipeline health",
        "Is every event counted, once and on time? Throughput, lag and progress, dead "
        "letters, apply latency and the state of workers, exporter and Redis (memory too).",
    )
    board = with_datasource(board)
    for panel in [
        stat_panel(
            "Workers up",
            "Workers Prometheus scrapes successfully.",
            "none",
            (f'sum (up{{job="{WORKER_JOB}"}})', "workers"),
            scale=AT_LEAST_ONE,
            alerts=("SupportWorkerDown",),
        ),
        stat_panel(
            "Exporters up",
            "Exporters Prometheus scrapes successfully.",
            "none",
            (f'sum (up{{job="{EXPORTER_JOB}"}})', "exporters"),
            scale=AT_LEAST_ONE,
            alerts=("SupportExporterDown",),
        ),
        stat_panel(
            "State store reachable",
            "Share of the processes reporting that reached Redis on their last try: below "
            "100 % one cannot reach it. No value: no process reports.",
            "percentunit",
            ("sum (support_state_store_up) / count (support_state_store_up)", "reachable"),
            scale=AT_LEAST_ONE,
            alerts=("SupportStateStoreDown",),
        ),
        stat_panel(
            "Channel topics",
            "Channel topics the workers subscribe to (the largest count any worker reports).",
            "none",
            ("max (support_worker_channels)", "topics"),
        ),
        series_panel(
            "Events by outcome",
            "Events per second per channel and outcome: counted, duplicate, late, ignored, "
            "dead_lettered.",
            "ops",
            ("channel_outcome:support_events:rate5m", "{{channel}} {{outcome}}"),
        ),
        series_panel(
            "Consumer lag",
            "Records waiting per channel topic (all partitions), as the workers see them.",
            "short",
            ("topic:support_consumer_lag:sum", "{{topic}}"),
            scale=LAG,
            alerts=("SupportConsumerLagGrowing",),
        ),
        series_panel(
            "Consumer progress",
            "Records per second the workers move past per channel topic (applied offsets "
            "advancing: counted, duplicate, late, ignored and dead-lettered records alike). "
            "Lag above 0 with a flat line here is a stalled consumer.",
            "ops",
            (f"sum by (topic) (rate({APPLIED}[5m]))", "{{topic}}"),
            alerts=("SupportConsumerStalled",),
        ),
        series_panel(
            "Customer facts waiting",
            "Customer facts (CONTRACT.md §9) not joined yet, per worker: its customer "
            "partitions' end against its joiner's progress mark. Re-contacts are late by them.",
            "short",
            ("sum by (instance) (support_customer_facts_lag)", "{{instance}}"),
            scale=LAG,
            alerts=("SupportCustomerFactsBehind",),
        ),
        series_panel(
            "Dead letters (5 min)",
            "Records or events sent to the dead-letter topic in the last 5 minutes, by "
            "channel and reason.",
            "short",
            ("channel_reason:support_dead_letters:increase5m", "{{channel}} {{reason}}"),
            scale=NONE_WANTED,
            alerts=("SupportDeadLetters",),
        ),
        series_panel(
            "Undeliverable dead letters (10 min)",
            "Dead letters the broker refused even without key and payload in the last 10 "
            "minutes, per worker: those records reached no dead-letter topic and stay only at "
            "their origin offset (the worker log names each). Anything above 0 alerts.",
            "short",
            (
                "sum by (instance) (increase(support_dead_letters_undeliverable_total[10m]))",
                "{{instance}}",
            ),
            scale=NONE_WANTED,
            alerts=("SupportDeadLettersUndeliverable",),
        ),
        series_panel(
            "Batch apply latency",
            "Time to read, fold and apply one batch to Redis: median, 99th percentile.",
            "s",
            (f"histogram_quantile(0.5, {APPLY_RATE})", "p50"),
            (f"histogram_quantile(0.99, {APPLY_RATE})", "p99"),
            scale=APPLY_LATENCY,
        ),
        series_panel(
            "Time since last event",
            "Seconds since the newest event counted per channel (event time); the silent "
            "channel alert fires past its threshold.",
            "s",
            ("time() - channel:support_last_event_timestamp_seconds:max1d", "{{channel}}"),
            scale=_silence(),
            alerts=("SupportChannelSilent",),
        ),
        series_panel(
            "Redelivered and recovered records",
            "Redelivered: records delivered again after a crash or rebalance and skipped "
            "because they were already applied. Recovered: records a rebalance dropped after "
            "the consumer fetched them, read again from Kafka and applied (each is also a "
            "warning in the worker's log). Unread: offsets Kafka deleted (retention) before "
            "the worker applied them, not counted (an error in the worker's log). Per second.",
            "ops",
            ("sum by (channel) (rate(support_redelivered_records_total[5m]))", "{{channel}}"),
            (
                "sum by (channel) (rate(support_recovered_records_total[5m]))",
                "{{channel}} recovered",
            ),
            (
                "sum by (channel) (rate(support_unread_offsets_total[5m]))",
                "{{channel}} unread (deleted by retention)",
            ),
        ),
        series_panel(
            "Redis memory",
            "Memory Redis uses and its maxmemory, from INFO memory at each exporter scrape. "
            "With noeviction Redis refuses writes at maxmemory and the workers stop applying; "
            "the alert fires at 80 %. A limit of 0 means none: Redis grows until the host "
            "runs out.",
            "bytes",
            ("support_state_store_memory_used_bytes:max", "used"),
            ("support_state_store_memory_max_bytes:max", "maxmemory (0: no limit)"),
            span=24,
            alerts=("SupportStateStoreMemoryHigh",),
        ),
    ]:
        board = board.with_panel(panel)
    return board

"""The PromQL the rules and the dashboards share: the job names, the de-duplication of
exporter replicas and the recording rules."""

from __future__ import annotations

from typing import Final

EXPORTER_JOB: Final = "roi-exporter"
WORKER_JOB: Final = "roi-worker"

# Exporter replicas give identical figures: `max without (instance, job)` keeps one copy.
DEDUP: Final = "max without (instance, job)"
RECORDING: Final = [
    ("window:support_program_roi_ratio:max", f"{DEDUP} (support_program_roi_ratio)"),
    (
        "window:support_program_net_value:max",
        f"{DEDUP} (support_program_net_value)",
    ),
    ("support_target_roi_ratio:max", "max (support_target_roi_ratio)"),
    ("channel_window:support_resolution_ratio:max", f"{DEDUP} (support_resolution_ratio)"),
    (
        "channel_window:support_resolution_ratio_upper:max",
        f"{DEDUP} (support_resolution_ratio_upper)",
    ),
    ("channel_window:support_escalation_ratio:max", f"{DEDUP} (support_escalation_ratio)"),
    (
        "channel:support_expected_resolution_ratio:max",
        f"{DEDUP} (support_expected_resolution_ratio)",
    ),
    ("channel:support_ramp_progress_ratio:max", f"{DEDUP} (support_ramp_progress_ratio)"),
    ("support_ramp_tolerance_ratio:max", "max (support_ramp_tolerance_ratio)"),
    ("channel_window:support_cost_per_resolution:max", f"{DEDUP} (support_cost_per_resolution)"),
    ("channel_window:support_ai_conversations:max", f"{DEDUP} (support_ai_conversations)"),
    # Over a day, so that a restarted worker (its gauge starts empty) keeps the channel known.
    (
        "channel:support_last_event_timestamp_seconds:max1d",
        "max by (channel) (max_over_time(support_last_event_timestamp_seconds[1d]))",
    ),
    # A partition belongs to one worker at a time, but a rebalance moves it to another
    # (another instance label), and both may report it for a scrape: the per-partition series
    # drop instance and job, so that changes() and the topic sum see one continuous series.
    ("topic_partition:support_consumer_lag:max", f"{DEDUP} (support_consumer_lag)"),
    ("topic_partition:support_applied_offset:max", f"{DEDUP} (support_applied_offset)"),
    ("topic:support_consumer_lag:sum", "sum by (topic) (topic_partition:support_consumer_lag:max)"),
    (
        "channel_reason:support_dead_letters:increase5m",
        "sum by (channel, reason) (increase(support_dead_letters_total[5m]))",
    ),
    (
        "channel_outcome:support_events:rate5m",
        "sum by (channel, outcome) (rate(support_events_total[5m]))",
    ),
    # Exporter replicas read the same Redis.
    (
        "support_state_store_memory_used_bytes:max",
        f"{DEDUP} (support_state_store_memory_used_bytes)",
    ),
    ("support_state_store_memory_max_bytes:max", f"{DEDUP} (support_state_store_memory_max_bytes)"),
]

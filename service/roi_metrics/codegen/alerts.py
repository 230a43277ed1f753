"""The alerts: each one's expression, parameters (from deploy/prometheus/thresholds.toml),
summary and description. roi_metrics.codegen.rules turns them into Prometheus rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from roi_metrics.codegen.promql import EXPORTER_JOB, WORKER_JOB


@dataclass(frozen=True)
class AlertSpec:
    name: str
    # "business" or "pipeline": Alertmanager inhibits business alerts when the pipeline is down
    component: str
    expr: str  # %(param)s placeholders from thresholds.toml
    summary: str
    description: str
    params: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()  # params (among `params`) used as a range: [%(param)ss]


# `ignoring (window)` drops the window label from a comparison's result, so the guards that
# follow match on `ignoring (window)` too.
VOLUME_GUARD: Final = (
    "ignoring (window)"
    ' channel_window:support_ai_conversations:max{window="1h"} >= %(min_ai_conversations_1h)s'
)
RAMPING: Final = "channel:support_ramp_progress_ratio:max < 0.95"
"""A channel still on its ramp (CONTRACT.md §11: until 95 % of the way to its target)."""
ALERTS: Final = [
    AlertSpec(
        "SupportProgrammeRoiBelowTarget",
        "business",
        'window:support_program_roi_ratio:max{window="24h"}\n'
        "  < on () group_left () support_target_roi_ratio:max",
        "Programme ROI (24h) is {{ $value | humanizePercentage }}, below the cost card's target",
        "The fully loaded ROI of the whole programme over the last 24 hours (fixed and one-off "
        "costs included) is below target_roi in the cost card.",
    ),
    AlertSpec(
        "SupportChannelResolutionRateDrop",
        "business",
        'channel_window:support_resolution_ratio_upper:max{window="1h"}\n'
        "  < ignoring (window) %(drop_ratio)s"
        ' * channel_window:support_resolution_ratio:max{window="7d"}\n'
        f"and {VOLUME_GUARD}\n"
        f"unless on (channel) {RAMPING}",
        "{{ $labels.channel }}: AI resolution rate fell to at most "
        "{{ $value | humanizePercentage }} in the last hour",
        "Even the upper bound of the 95 %% interval of the AI's resolution rate on "
        "{{ $labels.channel }} in the last hour, {{ $value | humanizePercentage }}, is under "
        "%(drop_ratio)s x its own 7-day rate: not noise of a few conversations.",
        ("drop_ratio",),
    ),
    AlertSpec(
        "SupportChannelBelowRamp",
        "business",
        'channel_window:support_resolution_ratio_upper:max{window="24h"}\n'
        "  < ignoring (window) channel:support_expected_resolution_ratio:max\n"
        "    * on () group_left () (1 - support_ramp_tolerance_ratio:max)\n"
        f"and ignoring (window) {RAMPING}",
        "{{ $labels.channel }}: the AI resolves at most {{ $value | humanizePercentage }}, "
        "below its ramp",
        "While {{ $labels.channel }} ramps up, even the upper bound of the 95 %% interval of "
        "its AI resolution rate over 24 hours, {{ $value | humanizePercentage }}, is below what "
        "the cost card's [ramp] expects at this point, less its tolerance.",
    ),
    AlertSpec(
        "SupportChannelEscalationRateSpike",
        "business",
        'channel_window:support_escalation_ratio:max{window="1h"}\n'
        "  > ignoring (window) %(spike_ratio)s"
        ' * channel_window:support_escalation_ratio:max{window="7d"}\n'
        'and ignoring (window) channel_window:support_escalation_ratio:max{window="1h"}'
        " > %(min_rate)s\n"
        f"and {VOLUME_GUARD}",
        "{{ $labels.channel }}: escalations jumped to {{ $value | humanizePercentage }} "
        "of AI conversations",
        "The AI handed {{ $value | humanizePercentage }} of its conversations on "
        "{{ $labels.channel }} to people in the last hour, over %(spike_ratio)s x its 7-day rate "
        "and over %(min_rate)s.",
        ("spike_ratio", "min_rate"),
    ),
    AlertSpec(
        "SupportChannelCostPerResolutionSpike",
        "business",
        'channel_window:support_cost_per_resolution:max{window="1h"}\n'
        "  > ignoring (window) %(spike_ratio)s"
        ' * channel_window:support_cost_per_resolution:max{window="7d"}\n'
        f"and {VOLUME_GUARD}",
        "{{ $labels.channel }}: cost per resolution rose to {{ $value | humanize }}",
        "An AI resolution on {{ $labels.channel }} cost {{ $value | humanize }} (currency "
        "units) in the last hour, over %(spike_ratio)s x its 7-day figure.",
        ("spike_ratio",),
    ),
    AlertSpec(
        "SupportChannelSilent",
        "pipeline",
        "time() - channel:support_last_event_timestamp_seconds:max1d > %(silence_seconds)s",
        "{{ $labels.channel }}: no event for {{ $value | humanizeDuration }}",
        "The worker has counted no event on {{ $labels.channel }} for over %(silence_seconds)s "
        "seconds (by event time): the platform stopped publishing, or its topic is not read.",
        ("silence_seconds",),
    ),
    AlertSpec(
        "SupportConsumerLagGrowing",
        "pipeline",
        "topic:support_consumer_lag:sum > %(min_records)s\n"
        "and deriv(topic:support_consumer_lag:sum[10m]) > 0",
        "{{ $labels.topic }}: consumer lag is {{ $value }} records and growing",
        "The workers fall behind on {{ $labels.topic }}: over %(min_records)s records wait "
        "and the backlog grew over the last 10 minutes. Figures are late by as much.",
        ("min_records",),
    ),
    AlertSpec(
        "SupportCustomerFactsBehind",
        "pipeline",
        "sum(support_customer_facts_lag) > %(min_facts)s\n"
        "and sum(deriv(support_customer_facts_lag[10m])) > 0",
        "{{ $value }} customer facts wait to be joined, and more each minute",
        "The workers' joiners fall behind on the customer facts (CONTRACT.md §9): over "
        "%(min_facts)s wait and the backlog grew over the last 10 minutes. Re-contacts, and the "
        "figures built on them, are late by as much.",
        ("min_facts",),
    ),
    # Range functions, not instant values, so that a worker that keeps stalling, exiting and
    # restarting (its series come and go between scrapes) still fires, and a partition that
    # moves to another worker is one series (the recording rules drop instance and job).
    # Only over a range Prometheus watched whole (the partition was there the range before):
    # a Prometheus just started sees a few samples, no change among them, and is not sure.
    AlertSpec(
        "SupportConsumerStalled",
        "pipeline",
        "last_over_time(topic_partition:support_consumer_lag:max[%(no_progress_seconds)ss])\n"
        "  and on (topic, partition)"
        " min_over_time(topic_partition:support_consumer_lag:max[%(no_progress_seconds)ss]) > 0\n"
        "  and on (topic, partition)"
        " changes(topic_partition:support_applied_offset:max[%(no_progress_seconds)ss]) == 0\n"
        "  and on (topic, partition) present_over_time("
        "topic_partition:support_applied_offset:max[%(no_progress_seconds)ss]"
        " offset %(no_progress_seconds)ss)",
        "{{ $labels.topic }} partition {{ $labels.partition }}: stalled, "
        "{{ $value }} records wait and none is applied",
        "Records have waited in partition {{ $labels.partition }} of {{ $labels.topic }} for "
        "over %(no_progress_seconds)s seconds and its applied offset has not moved: no worker "
        "counts them ({{ $value }} records wait now). The channel's figures miss them until "
        "the partition moves again.",
        ("no_progress_seconds",),
        ("no_progress_seconds",),
    ),
    AlertSpec(
        "SupportDeadLetters",
        "pipeline",
        "channel_reason:support_dead_letters:increase5m > %(min_increase)s",
        "{{ $labels.channel }}: dead letters keep coming ({{ $labels.reason }})",
        "Records or events on {{ $labels.channel }} keep being refused with reason "
        "{{ $labels.reason }} ({{ $value | humanize }} in the last 5 minutes) and go to the "
        "dead-letter topic; they are not counted.",
        ("min_increase",),
    ),
    AlertSpec(
        "SupportStateStoreDown",
        "pipeline",
        "support_state_store_up == 0",
        "{{ $labels.job }} {{ $labels.instance }} cannot reach Redis",
        "The state store (Redis) does not answer {{ $labels.job }} at {{ $labels.instance }}: "
        "the worker holds its batches and the exporter exports no figures.",
    ),
    # `max > 0` drops the ratio when Redis has no limit (max 0): no division by zero.
    AlertSpec(
        "SupportStateStoreMemoryHigh",
        "pipeline",
        "support_state_store_memory_used_bytes:max\n"
        "  / (support_state_store_memory_max_bytes:max > 0)\n"
        "> %(max_ratio)s",
        "Redis uses {{ $value | humanizePercentage }} of its maxmemory",
        "The state store (Redis) uses {{ $value | humanizePercentage }} of its maxmemory, over "
        "%(max_ratio)s. At the limit it refuses writes (noeviction): the workers stop applying "
        "and every figure stops.",
        ("max_ratio",),
    ),
    AlertSpec(
        "SupportDeadLettersUndeliverable",
        "pipeline",
        "increase(support_dead_letters_undeliverable_total[10m]) > 0",
        "{{ $labels.instance }}: dead letters refused by the broker, not kept",
        "The broker refused dead letters of worker {{ $labels.instance }} even without key and "
        "payload in the last 10 minutes: those records are in no dead-letter topic, only at "
        "their origin offset (the worker log names each), until the topic's retention "
        "deletes them.",
    ),
    AlertSpec(
        "SupportExporterDown",
        "pipeline",
        f'up{{job="{EXPORTER_JOB}"}} == 0 or absent(up{{job="{EXPORTER_JOB}"}})',
        "The ROI exporter is down or not scraped",
        "Prometheus cannot scrape the exporter (job " + EXPORTER_JOB + "): no business figure "
        "is current and the business alerts are blind.",
    ),
    AlertSpec(
        "SupportWorkerDown",
        "pipeline",
        f'up{{job="{WORKER_JOB}"}} == 0 or absent(up{{job="{WORKER_JOB}"}})',
        "An ROI worker is down or not scraped",
        "Prometheus cannot scrape a worker (job " + WORKER_JOB + "): events may not be "
        "counted; the figures stop moving until a worker runs.",
    ),
]


def runbook_url(base: str, alert: str) -> str:
    """Where an alert's runbook is: the base (thresholds.toml's runbook_url), then the
    alert's anchor in the runbooks page (its name in lower case)."""
    return f"{base}#{alert.lower()}"


ALERT_NAMES: Final = frozenset(spec.name for spec in ALERTS)

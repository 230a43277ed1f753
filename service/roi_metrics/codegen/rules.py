"""Generates the Prometheus rules, deploy/prometheus/rules/roi.yml, from the thresholds in
deploy/prometheus/thresholds.toml: recording rules that dashboards and alerts share, and the
alerts. `python -m roi_metrics.codegen.rules --check` fails when the committed rules are stale.

`--for-scale` multiplies every alert's `for` (a test or a demo shortens them this way,
without editing the rules); the committed file always uses scale 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from roi_metrics.codegen import PROJECT_ROOT

ROOT: Final = PROJECT_ROOT
DEFAULT_THRESHOLDS: Final = ROOT / "deploy" / "prometheus" / "thresholds.toml"
DEFAULT_RULES: Final = ROOT / "deploy" / "prometheus" / "rules" / "roi.yml"
EXPORTER_JOB: Final = "roi-exporter"
WORKER_JOB: Final = "roi-worker"
SEVERITIES: Final = ("critical", "warning", "info")
DURATION: Final = re.compile(r"^(\d+)(s|m|h|d)$")
UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_WINDOW: Final = 60  # a range over fewer seconds may hold a single scrape

# Exporter replicas give identical figures: `max without (instance, job)` keeps one copy.
DEDUP: Final = "max without (instance, job)"
RECORDING: Final = [
    ("window:support_program_roi_ratio:max", f"{DEDUP} (support_program_roi_ratio)"),
    (
        "window:support_program_net_value:max",
        f"{DEDUP} (support_program_value - support_program_cost)",
    ),
    ("support_target_roi_ratio:max", "max (support_target_roi_ratio)"),
    ("channel_window:support_resolution_rate:max", f"{DEDUP} (support_resolution_rate)"),
    ("channel_window:support_escalation_rate:max", f"{DEDUP} (support_escalation_rate)"),
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
        'channel_window:support_resolution_rate:max{window="1h"}\n'
        "  < ignoring (window) %(drop_ratio)s"
        ' * channel_window:support_resolution_rate:max{window="7d"}\n'
        f"and {VOLUME_GUARD}",
        "{{ $labels.channel }}: AI resolution rate fell to {{ $value | humanizePercentage }} "
        "in the last hour",
        "The AI resolved {{ $value | humanizePercentage }} of its conversations on "
        "{{ $labels.channel }} in the last hour, under %(drop_ratio)s x its own 7-day rate.",
        ("drop_ratio",),
    ),
    AlertSpec(
        "SupportChannelEscalationRateSpike",
        "business",
        'channel_window:support_escalation_rate:max{window="1h"}\n'
        "  > ignoring (window) %(spike_ratio)s"
        ' * channel_window:support_escalation_rate:max{window="7d"}\n'
        'and ignoring (window) channel_window:support_escalation_rate:max{window="1h"}'
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
    # Range functions, not instant values, so that a worker that keeps stalling, exiting and
    # restarting (its series come and go between scrapes) still fires, and a partition that
    # moves to another worker is one series (the recording rules drop instance and job).
    AlertSpec(
        "SupportConsumerStalled",
        "pipeline",
        "last_over_time(topic_partition:support_consumer_lag:max[%(no_progress_seconds)ss])\n"
        "  and on (topic, partition)"
        " min_over_time(topic_partition:support_consumer_lag:max[%(no_progress_seconds)ss]) > 0\n"
        "  and on (topic, partition)"
        " changes(topic_partition:support_applied_offset:max[%(no_progress_seconds)ss]) == 0",
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


class ThresholdsError(ValueError):
    """A bad thresholds file; the message names the file, the field and the problem."""


@dataclass(frozen=True)
class Thresholds:
    runbook_url: str
    values: dict[str, dict[str, Any]]  # alert name -> for, severity and parameters
    min_ai_conversations_1h: int


def _seconds(duration: str) -> int:
    match = DURATION.match(duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration like 90s, 15m, 1h")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def load_thresholds(path: Path) -> Thresholds:
    """Read and check thresholds.toml: every alert present, known keys, sane values."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ThresholdsError(f"{path}: {error}") from None

    def fail(field: str, problem: str) -> ThresholdsError:
        return ThresholdsError(f"{path}: {field}: {problem}")

    unknown = set(doc) - {"runbook_url", "min_ai_conversations_1h", "alerts"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key")
    minimum = doc.get("min_ai_conversations_1h")
    if not isinstance(minimum, int) or minimum < 1:
        raise fail("min_ai_conversations_1h", "must be a whole number >= 1")
    alerts = doc.get("alerts", {})
    stray = set(alerts) - {spec.name for spec in ALERTS}
    if stray:
        raise fail(f"alerts.{sorted(stray)[0]}", "no such alert")
    values: dict[str, dict[str, Any]] = {}
    for spec in ALERTS:
        problem = _alert_problem(spec, alerts.get(spec.name))
        if problem:
            raise fail(f"alerts.{spec.name}{problem[0]}", problem[1])
        values[spec.name] = alerts[spec.name]
    return Thresholds(str(doc.get("runbook_url", "docs/runbooks.md")), values, minimum)


def _alert_problem(spec: AlertSpec, section: object) -> tuple[str, str] | None:
    """(".field", problem) for a bad alert section, None when it is fine."""
    if not isinstance(section, dict):
        return "", "missing"
    extra = set(section) - {"for", "severity", *spec.params}
    if extra:
        return f".{sorted(extra)[0]}", "unknown key"
    try:
        _seconds(str(section.get("for", "")))
    except ValueError as error:
        return ".for", str(error)
    if section.get("severity") not in SEVERITIES:
        return ".severity", f"must be one of {', '.join(SEVERITIES)}"
    for param in spec.params:
        problem = _param_problem(section.get(param), window=param in spec.windows)
        if problem:
            return f".{param}", problem
    return None


def _param_problem(value: object, *, window: bool) -> str | None:
    """What is wrong with an alert parameter; a window is a range, `[...s]`, in PromQL."""
    if window:
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_WINDOW:
            return f"must be a whole number of seconds >= {MIN_WINDOW}"
    elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return "must be a number >= 0"
    return None


def _scaled(duration: str, scale: float) -> str:
    if scale == 1:
        return duration
    return f"{max(1, round(_seconds(duration) * scale))}s"


def rules(thresholds: Thresholds, for_scale: float = 1.0) -> dict[str, Any]:
    """The rules document Prometheus loads."""
    alerts = []
    for spec in ALERTS:
        section = thresholds.values[spec.name]
        params = {
            "min_ai_conversations_1h": thresholds.min_ai_conversations_1h,
            **{param: section[param] for param in spec.params},
        }
        alerts.append(
            {
                "alert": spec.name,
                "expr": spec.expr % params,
                "for": _scaled(section["for"], for_scale),
                "labels": {"severity": section["severity"], "component": spec.component},
                "annotations": {
                    "summary": spec.summary,
                    "description": spec.description % params,
                    "runbook_url": f"{thresholds.runbook_url}#{spec.name.lower()}",
                },
            }
        )
    return {
        "groups": [
            {
                "name": "roi-recording",
                "rules": [{"record": name, "expr": expr} for name, expr in RECORDING],
            },
            {"name": "roi-alerts", "rules": alerts},
        ]
    }


class _Literal(str):
    """A multi-line string written as a YAML block."""


class _Dumper(yaml.SafeDumper):
    """Writes _Literal strings as YAML blocks."""


_Dumper.add_representer(
    _Literal,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|"),
)


def render(thresholds: Thresholds, for_scale: float = 1.0) -> str:
    document = rules(thresholds, for_scale)
    for group in document["groups"]:
        for rule in group["rules"]:
            if "\n" in rule["expr"]:
                rule["expr"] = _Literal(rule["expr"])
    header = (
        "# Generated by `python -m roi_metrics.codegen.rules`"
        " from deploy/prometheus/thresholds.toml.\n"
        "# Do not edit: change thresholds.toml and run `make rules`.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m roi_metrics.codegen.rules", description=__doc__
    )
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    parser.add_argument("--out", type=Path, default=DEFAULT_RULES, help="rules file to write")
    parser.add_argument(
        "--for-scale", type=float, default=1.0, help="multiply every alert's `for` (default 1)"
    )
    parser.add_argument("--check", action="store_true", help="fail if --out is stale")
    args = parser.parse_args(argv)
    if args.for_scale <= 0:
        parser.error("--for-scale must be > 0")
    try:
        text = render(load_thresholds(args.thresholds), args.for_scale)
    except ThresholdsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"error: {args.out} is stale: run `make rules`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

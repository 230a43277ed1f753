"""Generates the Grafana dashboards, grafana/dashboards/*.json, with grafana-foundation-sdk:
"AI support ROI", "Channel detail" and "Pipeline health". Every panel has a description and
a unit; queries read the recording rules the alerts use where they share an expression.
`python -m roi_metrics.codegen.dashboards --check` fails when the committed JSON is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    VariableOption,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from roi_metrics.codegen import PROJECT_ROOT

DEFAULT_DIR: Final = PROJECT_ROOT / "grafana" / "dashboards"
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="roi-prometheus")
WINDOWS: Final = "1h,24h,7d,30d,all"
DEDUP: Final = "max without (instance, job)"
APPLY_RATE: Final = "sum by (le) (rate(support_batch_apply_seconds_bucket[5m]))"
# Per partition, whichever worker holds it (rulegen's recording rule): offsets only grow, so
# rate() reads records passed per second, and a recreated topic reads as a counter reset.
APPLIED: Final = "topic_partition:support_applied_offset:max"
Query = tuple[str, str]  # (PromQL, legend)
Builder = stat.Panel | timeseries.Panel | table.Panel


def _targets(panel: Any, queries: tuple[Query, ...], instant: bool = False) -> Any:
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
        if instant:
            target = target.instant().format(PromQueryFormat.TABLE)
        panel = panel.with_target(target)
    return panel


def _common(panel: Any, title: str, description: str, unit: str, *, span: int, height: int) -> Any:
    """What every panel has: title, description, unit, the datasource and a size."""
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(span)
        .height(height)
    )


def _stat(title: str, description: str, unit: str, *queries: Query, span: int = 6) -> Builder:
    panel = (
        _common(stat.Panel(), title, description, unit, span=span, height=5)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    return _targets(panel, queries)  # type: ignore[no-any-return]


def _series(title: str, description: str, unit: str, *queries: Query, span: int = 12) -> Builder:
    panel = _common(timeseries.Panel(), title, description, unit, span=span, height=8).legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    return _targets(panel, queries)  # type: ignore[no-any-return]


def _variables(board: dashboard.Dashboard, channel_multi: bool) -> dashboard.Dashboard:
    channel = (
        dashboard.QueryVariable("channel")
        .label("Channel")
        .description("Support channels (one Kafka topic each) with at least one counted event.")
        .datasource(DATASOURCE)
        .query("label_values(support_conversations, channel)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(1)  # type: ignore[arg-type]
        .multi(channel_multi)
        .include_all(channel_multi)
    )
    window = (
        dashboard.CustomVariable("window")
        .label("Window")
        .description("Rolling window the figures cover; `all` is since go-live.")
        .values(WINDOWS)
        .current(VariableOption(selected=True, text="24h", value="24h"))
    )
    return board.with_variable(channel).with_variable(window)


def _board(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["roi-metrics"])
        .refresh("30s")
        .time("now-24h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .editable()
    )


def overview() -> dashboard.Dashboard:
    w = 'window="$window"'
    c = 'channel=~"$channel"'
    board = _variables(
        _board(
            "roi-overview",
            "AI support ROI",
            "Does the AI support programme pay for itself? Fully loaded ROI, payback, cost per "
            "resolution, rates and CSAT, per channel and for the whole programme "
            "(definitions: docs/metrics.md).",
        ),
        channel_multi=True,
    )
    board = board.with_row(dashboard.Row("Programme"))
    for panel in [
        _stat(
            "Programme ROI (fully loaded)",
            "(value - AI cost - fixed cost) / (AI cost + fixed cost) over the window, all "
            "channels, subscription, optimisation and amortised one-offs included. "
            "Absent without cost.",
            "percentunit",
            (f"window:support_program_roi_ratio:max{{{w}}}", "ROI"),
            ("support_target_roi_ratio:max", "target"),
        ),
        _stat(
            "Payback: net position since go-live",
            "Value minus cost since go-live, one-off costs counted in full (cash view). "
            "Negative until the programme has paid for itself. In the cost card's currency.",
            "short",
            ('window:support_program_net_value:max{window="all"}', "net"),
        ),
        _stat(
            "Programme cost per resolution",
            "(AI cost + fixed cost) / net AI resolutions over the window, in the cost card's "
            "currency. Absent without resolutions.",
            "short",
            (f"{DEDUP} (support_program_cost_per_resolution{{{w}}})", "cost per resolution"),
        ),
        _stat(
            "Automation rate",
            "Net AI resolutions / all conversations over the window, all channels.",
            "percentunit",
            (
                f"(sum ({DEDUP} (support_ai_resolutions{{{w}}}))"
                f" - sum ({DEDUP} (support_ai_reopens{{{w}}})))"
                f" / sum ({DEDUP} (support_conversations{{{w}}}))",
                "automation",
            ),
        ),
        _series(
            "Value vs cost",
            "Programme value (costs avoided + AI revenue) against its full cost (AI + fixed) "
            "over the window, in the cost card's currency.",
            "short",
            (f"{DEDUP} (support_program_value{{{w}}})", "value"),
            (f"{DEDUP} (support_program_cost{{{w}}})", "cost"),
            (f"{DEDUP} (support_fixed_cost{{{w}}})", "of which fixed"),
        ),
        _series(
            "Programme ROI by window",
            "Fully loaded ROI over each window, with the cost card's target. AI support needs "
            "3-4 months to reach its best: read the 30d and since-go-live lines for the trend.",
            "percentunit",
            ("window:support_program_roi_ratio:max", "{{window}}"),
            ("support_target_roi_ratio:max", "target"),
        ),
    ]:
        board = board.with_panel(panel)
    board = board.with_row(dashboard.Row("Channels"))
    for panel in [
        _series(
            "Cost per resolution",
            "AI cost / net AI resolutions per channel over the window, in the cost card's "
            "currency. Absent for a channel without resolutions.",
            "short",
            (f"channel_window:support_cost_per_resolution:max{{{c},{w}}}", "{{channel}}"),
        ),
        _series(
            "Contribution ROI",
            "(value - AI cost) / AI cost per channel over the window; fixed costs are in the "
            "programme ROI only.",
            "percentunit",
            (f"{DEDUP} (support_channel_roi_ratio{{{c},{w}}})", "{{channel}}"),
        ),
        _series(
            "Resolution rate",
            "AI resolutions / AI conversations per channel over the window.",
            "percentunit",
            (f"channel_window:support_resolution_rate:max{{{c},{w}}}", "{{channel}}"),
            span=8,
        ),
        _series(
            "Escalation rate",
            "Handoffs to a person / AI conversations per channel over the window.",
            "percentunit",
            (f"channel_window:support_escalation_rate:max{{{c},{w}}}", "{{channel}}"),
            span=8,
        ),
        _series(
            "Automation rate",
            "Net AI resolutions (reopens deducted) / all conversations per channel.",
            "percentunit",
            (f"{DEDUP} (support_automation_rate{{{c},{w}}})", "{{channel}}"),
            span=8,
        ),
        _series(
            "CSAT: AI vs human",
            "Mean customer satisfaction score (1-5) of conversations resolved by the AI and "
            "by people, per channel over the window.",
            "none",
            (f"{DEDUP} (support_csat_mean{{{c},{w}}})", "{{channel}} {{resolved_by}}"),
        ),
        _series(
            "Value vs AI cost per channel",
            "Costs avoided + AI revenue against AI cost per channel over the window, in the "
            "cost card's currency.",
            "short",
            (
                f"{DEDUP} (support_cost_avoided{{{c},{w}}} + support_ai_revenue{{{c},{w}}})",
                "{{channel}} value",
            ),
            (f"{DEDUP} (support_ai_cost{{{c},{w}}})", "{{channel}} AI cost"),
        ),
        _channel_table(c, w),
    ]:
        board = board.with_panel(panel)
    return board


def _channel_table(c: str, w: str) -> Builder:
    columns = [
        ("support_conversations", "Conversations"),
        ("channel_window:support_resolution_rate:max", "Resolution rate"),
        ("channel_window:support_escalation_rate:max", "Escalation rate"),
        ("channel_window:support_cost_per_resolution:max", "Cost per resolution"),
        ("support_channel_roi_ratio", "Contribution ROI"),
    ]
    queries = tuple(
        (
            f"{DEDUP} ({name}{{{c},{w}}})" if ":" not in name else f"{name}{{{c},{w}}}",
            label,
        )
        for name, label in columns
    )
    renames = {f"Value #{ref}": label for ref, (_, label) in zip("ABCDE", columns, strict=True)}
    panel = (
        _common(
            table.Panel(),
            "Channels",
            "One row per channel over the window: volume, rates, cost per resolution (cost "
            "card currency) and contribution ROI. An empty cell has no sample.",
            "none",
            span=24,
            height=8,
        )
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "window": True},
                    "renameByName": {"channel": "Channel", **renames},
                },
            )
        )
    )
    for name in ("Resolution rate", "Escalation rate", "Contribution ROI"):
        panel = panel.override_by_name(
            name,
            [{"id": "unit", "value": "percentunit"}],
        )
    return _targets(panel, queries, instant=True)  # type: ignore[no-any-return]


def channel_detail() -> dashboard.Dashboard:
    s = 'channel="$channel",window="$window"'
    board = _variables(
        _board(
            "roi-channel",
            "Channel detail",
            "One channel in depth: volumes, resolutions, costs, value, rates and CSAT over "
            "the chosen window.",
        ),
        channel_multi=False,
    )
    for panel in [
        _stat(
            "Contribution ROI",
            "(value - AI cost) / AI cost over the window.",
            "percentunit",
            (f"{DEDUP} (support_channel_roi_ratio{{{s}}})", "ROI"),
        ),
        _stat(
            "Cost per resolution",
            "AI cost / net AI resolutions, in the cost card's currency.",
            "short",
            (f"channel_window:support_cost_per_resolution:max{{{s}}}", "cost"),
        ),
        _stat(
            "Resolution rate",
            "AI resolutions / AI conversations over the window.",
            "percentunit",
            (f"channel_window:support_resolution_rate:max{{{s}}}", "resolution"),
        ),
        _stat(
            "Escalation rate",
            "Handoffs to a person / AI conversations over the window.",
            "percentunit",
            (f"channel_window:support_escalation_rate:max{{{s}}}", "escalation"),
        ),
        _series(
            "Conversations",
            "Conversations started, those the AI started, handoffs to people and human "
            "resolutions over the window.",
            "short",
            (f"{DEDUP} (support_conversations{{{s}}})", "all"),
            (f"channel_window:support_ai_conversations:max{{{s}}}", "AI"),
            (f"{DEDUP} (support_escalations{{{s}}})", "escalated"),
            (f"{DEDUP} (support_human_resolutions{{{s}}})", "resolved by people"),
        ),
        _series(
            "AI resolutions",
            "AI resolutions by confirmation (assumed after silence, or confirmed by the "
            "customer) and reopens within 7 days, over the window.",
            "short",
            (f"{DEDUP} (support_ai_resolutions{{{s}}})", "{{confirmation}}"),
            (f"{DEDUP} (support_ai_reopens{{{s}}})", "reopened"),
        ),
        _series(
            "Costs and value",
            "AI cost, human handling cost, costs avoided and AI revenue over the window, in "
            "the cost card's currency.",
            "short",
            (f"{DEDUP} (support_ai_cost{{{s}}})", "AI cost"),
            (f"{DEDUP} (support_human_cost{{{s}}})", "human cost"),
            (f"{DEDUP} (support_cost_avoided{{{s}}})", "costs avoided"),
            (f"{DEDUP} (support_ai_revenue{{{s}}})", "AI revenue"),
        ),
        _series(
            "Rates",
            "Resolution, escalation and automation rates over the window.",
            "percentunit",
            (f"channel_window:support_resolution_rate:max{{{s}}}", "resolution"),
            (f"channel_window:support_escalation_rate:max{{{s}}}", "escalation"),
            (f"{DEDUP} (support_automation_rate{{{s}}})", "automation"),
        ),
        _series(
            "CSAT: AI vs human",
            "Mean customer satisfaction score (1-5) by who resolved, over the window.",
            "none",
            (f"{DEDUP} (support_csat_mean{{{s}}})", "{{resolved_by}}"),
        ),
        _series(
            "Resolution rate: last hour vs 7 days",
            "What the resolution-rate alert compares: the last hour against the channel's "
            "own 7-day level.",
            "percentunit",
            ('channel_window:support_resolution_rate:max{channel="$channel",window="1h"}', "1h"),
            ('channel_window:support_resolution_rate:max{channel="$channel",window="7d"}', "7d"),
        ),
    ]:
        board = board.with_panel(panel)
    return board


def pipeline_health() -> dashboard.Dashboard:
    board = _board(
        "roi-pipeline",
        "Pipeline health",
        "Is every event counted, once and on time? Throughput, lag and progress, dead "
        "letters, apply latency and the state of workers, exporter and Redis (memory too).",
    )
    for panel in [
        _stat(
            "Workers up",
            "Workers Prometheus scrapes successfully.",
            "none",
            ('sum (up{job="roi-worker"})', "workers"),
        ),
        _stat(
            "Exporters up",
            "Exporters Prometheus scrapes successfully.",
            "none",
            ('sum (up{job="roi-exporter"})', "exporters"),
        ),
        _stat(
            "State store",
            "Processes that reached Redis on their last try, out of those reporting.",
            "none",
            ("sum (support_state_store_up)", "up"),
            ("count (support_state_store_up)", "reporting"),
        ),
        _stat(
            "Channel topics",
            "Channel topics the workers subscribe to (the largest count any worker reports).",
            "none",
            ("max (support_worker_channels)", "topics"),
        ),
        _series(
            "Events by outcome",
            "Events per second per channel and outcome: counted, duplicate, late, ignored, "
            "dead_lettered.",
            "ops",
            ("channel_outcome:support_events:rate5m", "{{channel}} {{outcome}}"),
        ),
        _series(
            "Consumer lag",
            "Records waiting per channel topic (all partitions), as the workers see them.",
            "short",
            ("topic:support_consumer_lag:sum", "{{topic}}"),
        ),
        _series(
            "Consumer progress",
            "Records per second the workers move past per channel topic (applied offsets "
            "advancing: counted, duplicate, late, ignored and dead-lettered records alike). "
            "Lag above 0 with a flat line here is a stalled consumer.",
            "ops",
            (f"sum by (topic) (rate({APPLIED}[5m]))", "{{topic}}"),
        ),
        _series(
            "Dead letters (5 min)",
            "Records or events sent to the dead-letter topic in the last 5 minutes, by "
            "channel and reason.",
            "short",
            ("channel_reason:support_dead_letters:increase5m", "{{channel}} {{reason}}"),
        ),
        _series(
            "Undeliverable dead letters (10 min)",
            "Dead letters the broker refused even without key and payload in the last 10 "
            "minutes, per worker: those records reached no dead-letter topic and stay only at "
            "their origin offset (the worker log names each). Anything above 0 alerts.",
            "short",
            (
                "sum by (instance) (increase(support_dead_letters_undeliverable_total[10m]))",
                "{{instance}}",
            ),
        ),
        _series(
            "Batch apply latency",
            "Time to read, fold and apply one batch to Redis: median, 99th percentile.",
            "s",
            (f"histogram_quantile(0.5, {APPLY_RATE})", "p50"),
            (f"histogram_quantile(0.99, {APPLY_RATE})", "p99"),
        ),
        _series(
            "Time since last event",
            "Seconds since the newest event counted per channel (event time); the silent "
            "channel alert fires past its threshold.",
            "s",
            ("time() - channel:support_last_event_timestamp_seconds:max1d", "{{channel}}"),
        ),
        _series(
            "Redelivered records",
            "Records delivered again after a crash or rebalance and skipped because they "
            "were already applied, per second.",
            "ops",
            ("sum by (channel) (rate(support_redelivered_records_total[5m]))", "{{channel}}"),
        ),
        _series(
            "Redis memory",
            "Memory Redis uses and its maxmemory, from INFO memory at each exporter scrape. "
            "With noeviction Redis refuses writes at maxmemory and the workers stop applying; "
            "the alert fires at 80 %. A limit of 0 means none: Redis grows until the host "
            "runs out.",
            "bytes",
            ("support_state_store_memory_used_bytes:max", "used"),
            ("support_state_store_memory_max_bytes:max", "maxmemory (0: no limit)"),
            span=24,
        ),
    ]:
        board = board.with_panel(panel)
    return board


DASHBOARDS: Final = {
    "roi-overview.json": overview,
    "roi-channel.json": channel_detail,
    "roi-pipeline.json": pipeline_health,
}


def render(name: str) -> str:
    built = DASHBOARDS[name]().build()
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def expressions(document: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression of a dashboard's panels."""
    for panel in document.get("panels", []):
        for target in panel.get("targets", []):
            yield target["expr"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m roi_metrics.codegen.dashboards", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="folder to write")
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"error: stale: {', '.join(stale)}: run `make dashboards`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

from grafana_foundation_sdk.builders import dashboard, table
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
)

from roi_metrics.codegen import PROJECT_ROOT
from roi_metrics.codegen.panels import (
    AUTOMATION,
    CSAT,
    ESCALATION,
    MONEY,
    RESOLUTION,
    ROI,
    SIGN,
    Builder,
    new_board,
    series_panel,
    stat_panel,
    with_common,
    with_targets,
    with_variables,
)
from roi_metrics.codegen.pipeline_board import pipeline_health
from roi_metrics.codegen.promql import DEDUP
from roi_metrics.codegen.rules import ThresholdsError

DEFAULT_DIR: Final = PROJECT_ROOT / "grafana" / "dashboards"


def overview() -> dashboard.Dashboard:
    w = 'window="$window"'
    c = 'channel=~"$channel"'
    board = with_variables(
        new_board(
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
        stat_panel(
            "Programme ROI (fully loaded)",
            "(value - AI cost - fixed cost) / (AI cost + fixed cost) over the window, all "
            "channels, subscription, optimisation and amortised one-offs included. "
            "Absent without cost.",
            "percentunit",
            (f"window:support_program_roi_ratio:max{{{w}}}", "ROI"),
            scale=ROI,
            alerts=("SupportProgrammeRoiBelowTarget",),
        ),
        stat_panel(
            "Payback: net position since go-live",
            "Value minus cost since go-live, one-off costs counted in full (cash view). "
            "Negative until the programme has paid for itself. In the cost card's currency.",
            MONEY,
            ('window:support_program_net_value:max{window="all"}', "net"),
            scale=SIGN,
        ),
        stat_panel(
            "Programme cost per resolution",
            "(AI cost + fixed cost) / net AI resolutions over the window, in the cost card's "
            "currency. Absent without resolutions.",
            MONEY,
            (f"{DEDUP} (support_program_cost_per_resolution{{{w}}})", "cost per resolution"),
        ),
        stat_panel(
            "Automation rate",
            "Net AI resolutions / all conversations over the window, all channels.",
            "percentunit",
            (f"{DEDUP} (support_program_automation_ratio{{{w}}})", "automation"),
            scale=AUTOMATION,
        ),
        series_panel(
            "Value vs cost",
            "Programme value (costs avoided + AI revenue) against its full cost (AI + fixed) "
            "over the window, in the cost card's currency.",
            MONEY,
            (f"{DEDUP} (support_program_value{{{w}}})", "value"),
            (f"{DEDUP} (support_program_cost{{{w}}})", "cost"),
            (f"{DEDUP} (support_fixed_cost{{{w}}})", "of which fixed"),
        ),
        series_panel(
            "Programme ROI by window",
            "Fully loaded ROI over each window, with the cost card's target. AI support needs "
            "3-4 months to reach its best: read the 30d and since-go-live lines for the trend.",
            "percentunit",
            ("window:support_program_roi_ratio:max", "{{window}}"),
            ("support_target_roi_ratio:max", "target"),
            scale=ROI,
            alerts=("SupportProgrammeRoiBelowTarget",),
        ),
        series_panel(
            "Net value by window",
            "Programme value minus its full cost in each window (CONTRACT.md §14), in the cost "
            "card's currency. The 30-day line is the pace the payback forecast "
            "(support_payback_remaining_seconds, shown by `roi-metrics top`) extrapolates.",
            MONEY,
            ("window:support_program_net_value:max", "{{window}}"),
            span=8,
            scale=SIGN,
        ),
        series_panel(
            "Revenue per conversation",
            "Revenue per conversation (AI and other revenue over all conversations) and AI "
            "revenue per AI conversation, over the window, in the cost card's currency "
            "(CONTRACT.md §10): what an interaction earns, not how many there are.",
            MONEY,
            (f"{DEDUP} (support_program_revenue_per_conversation{{{w}}})", "programme"),
            (f"{DEDUP} (support_ai_revenue_per_conversation{{{c},{w}}})", "{{channel}} AI"),
            span=8,
        ),
        series_panel(
            "AI vendor's bill",
            "What an AI vendor that bills per resolution charges over the window, and the part "
            "of it paid for resolutions that did not hold (reopened within 7 days), in the cost "
            "card's currency (CONTRACT.md §13; the card's [vendor]). A view to reconcile the "
            "invoice: it is not added to the costs.",
            MONEY,
            (f"{DEDUP} (support_program_vendor_bill{{{w}}})", "bill"),
            (f"{DEDUP} (support_program_vendor_unearned_cost{{{w}}})", "unearned"),
            span=8,
        ),
    ]:
        board = board.with_panel(panel)
    board = board.with_row(dashboard.Row("Channels"))
    for panel in [
        series_panel(
            "Cost per resolution",
            "AI cost / net AI resolutions per channel over the window, in the cost card's "
            "currency. Absent for a channel without resolutions.",
            MONEY,
            (f"channel_window:support_cost_per_resolution:max{{{c},{w}}}", "{{channel}}"),
            alerts=("SupportChannelCostPerResolutionSpike",),
        ),
        series_panel(
            "Contribution ROI",
            "(value - AI cost) / AI cost per channel over the window; fixed costs are in the "
            "programme ROI only.",
            "percentunit",
            (f"{DEDUP} (support_channel_roi_ratio{{{c},{w}}})", "{{channel}}"),
            scale=ROI,
        ),
        series_panel(
            "Resolution rate",
            "AI resolutions / AI conversations per channel over the window.",
            "percentunit",
            (f"channel_window:support_resolution_ratio:max{{{c},{w}}}", "{{channel}}"),
            span=8,
            scale=RESOLUTION,
            alerts=("SupportChannelResolutionRateDrop",),
        ),
        series_panel(
            "Escalation rate",
            "Handoffs to a person / AI conversations per channel over the window.",
            "percentunit",
            (f"channel_window:support_escalation_ratio:max{{{c},{w}}}", "{{channel}}"),
            span=8,
            scale=ESCALATION,
            alerts=("SupportChannelEscalationRateSpike",),
        ),
        series_panel(
            "Automation rate",
            "Net AI resolutions (reopens deducted) / all conversations per channel.",
            "percentunit",
            (f"{DEDUP} (support_automation_ratio{{{c},{w}}})", "{{channel}}"),
            span=8,
            scale=AUTOMATION,
        ),
        series_panel(
            "CSAT: AI vs human",
            "Mean customer satisfaction score (1-5) of conversations resolved by the AI and "
            "by people, per channel over the window.",
            "none",
            (f"{DEDUP} (support_csat_mean{{{c},{w}}})", "{{channel}} {{resolved_by}}"),
            scale=CSAT,
        ),
        series_panel(
            "Value vs AI cost per channel",
            "Costs avoided + AI revenue against AI cost per channel over the window, in the "
            "cost card's currency.",
            MONEY,
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
        ("channel_window:support_resolution_ratio:max", "Resolution rate"),
        ("channel_window:support_escalation_ratio:max", "Escalation rate"),
        ("channel_window:support_cost_per_resolution:max", "Cost per resolution"),
        ("support_channel_roi_ratio", "Contribution ROI"),
    ]
    # Every column through an aggregation, recording rules too: it drops `__name__`, which
    # Grafana's merge would otherwise match on, splitting each channel into one partial row
    # per rule (shown with @grafana/data's own merge: rows web|10|0.5|, then web|||0.1).
    queries = tuple((f"{DEDUP} ({name}{{{c},{w}}})", label) for name, label in columns)
    renames = {f"Value #{ref}": label for ref, (_, label) in zip("ABCDE", columns, strict=True)}
    panel = (
        with_common(
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
    # the rates and ROI coloured by their own scales, as on the other panels
    for name, scale in (
        ("Resolution rate", RESOLUTION),
        ("Escalation rate", ESCALATION),
        ("Contribution ROI", ROI),
    ):
        panel = panel.override_by_name(
            name,
            [
                {"id": "unit", "value": "percentunit"},
                {"id": "thresholds", "value": scale.override()},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
            ],
        )
    panel = panel.override_by_name("Cost per resolution", [{"id": "unit", "value": MONEY}])
    return with_targets(panel, queries, instant=True)  # type: ignore[no-any-return]


def channel_detail() -> dashboard.Dashboard:
    s = 'channel="$channel",window="$window"'
    board = with_variables(
        new_board(
            "roi-channel",
            "Channel detail",
            "One channel in depth: volumes, resolutions, costs, value, rates and CSAT over "
            "the chosen window.",
        ),
        channel_multi=False,
    )
    for panel in [
        stat_panel(
            "Contribution ROI",
            "(value - AI cost) / AI cost over the window.",
            "percentunit",
            (f"{DEDUP} (support_channel_roi_ratio{{{s}}})", "ROI"),
            scale=ROI,
        ),
        stat_panel(
            "Cost per resolution",
            "AI cost / net AI resolutions, in the cost card's currency.",
            MONEY,
            (f"channel_window:support_cost_per_resolution:max{{{s}}}", "cost"),
            alerts=("SupportChannelCostPerResolutionSpike",),
        ),
        stat_panel(
            "Resolution rate",
            "AI resolutions / AI conversations over the window.",
            "percentunit",
            (f"channel_window:support_resolution_ratio:max{{{s}}}", "resolution"),
            scale=RESOLUTION,
            alerts=("SupportChannelResolutionRateDrop",),
        ),
        stat_panel(
            "Escalation rate",
            "Handoffs to a person / AI conversations over the window.",
            "percentunit",
            (f"channel_window:support_escalation_ratio:max{{{s}}}", "escalation"),
            scale=ESCALATION,
            alerts=("SupportChannelEscalationRateSpike",),
        ),
        series_panel(
            "Conversations",
            "Conversations started, those the AI started, handoffs to people and human "
            "resolutions over the window.",
            "short",
            (f"{DEDUP} (support_conversations{{{s}}})", "all"),
            (f"channel_window:support_ai_conversations:max{{{s}}}", "AI"),
            (f"{DEDUP} (support_escalations{{{s}}})", "escalated"),
            (f"{DEDUP} (support_human_resolutions{{{s}}})", "resolved by people"),
        ),
        series_panel(
            "AI resolutions",
            "AI resolutions by confirmation (assumed after silence, or confirmed by the "
            "customer) and reopens within 7 days, over the window.",
            "short",
            (f"{DEDUP} (support_ai_resolutions{{{s}}})", "{{confirmation}}"),
            (f"{DEDUP} (support_ai_reopens{{{s}}})", "reopened"),
        ),
        series_panel(
            "Costs and value",
            "AI cost, human handling cost, costs avoided and AI revenue over the window, in "
            "the cost card's currency.",
            MONEY,
            (f"{DEDUP} (support_ai_cost{{{s}}})", "AI cost"),
            (f"{DEDUP} (support_human_cost{{{s}}})", "human cost"),
            (f"{DEDUP} (support_cost_avoided{{{s}}})", "costs avoided"),
            (f"{DEDUP} (support_ai_revenue{{{s}}})", "AI revenue"),
        ),
        series_panel(
            "Rates",
            "Resolution, escalation and automation rates over the window.",
            "percentunit",
            (f"channel_window:support_resolution_ratio:max{{{s}}}", "resolution"),
            (f"channel_window:support_escalation_ratio:max{{{s}}}", "escalation"),
            (f"{DEDUP} (support_automation_ratio{{{s}}})", "automation"),
        ),
        series_panel(
            "CSAT: AI vs human",
            "Mean customer satisfaction score (1-5) by who resolved, over the window.",
            "none",
            (f"{DEDUP} (support_csat_mean{{{s}}})", "{{resolved_by}}"),
            scale=CSAT,
        ),
        series_panel(
            "Resolution rate: last hour vs 7 days",
            "What the resolution-rate alert compares: the upper bound of the last hour's 95 % "
            "interval (the band's top; the band is narrow when conversations are many) against "
            "the channel's own 7-day level.",
            "percentunit",
            ('channel_window:support_resolution_ratio:max{channel="$channel",window="1h"}', "1h"),
            (
                'channel_window:support_resolution_ratio_upper:max{channel="$channel",window="1h"}',
                "1h, upper bound (95 %)",
            ),
            (
                f'{DEDUP} (support_resolution_ratio_lower{{channel="$channel",window="1h"}})',
                "1h, lower bound (95 %)",
            ),
            ('channel_window:support_resolution_ratio:max{channel="$channel",window="7d"}', "7d"),
            scale=RESOLUTION,
            alerts=("SupportChannelResolutionRateDrop",),
        ),
        series_panel(
            "Resolution rate against its ramp",
            "Only with the cost card's [ramp]: the 24h resolution rate and the upper bound of "
            "its 95 % interval, against what the ramp expects by now and the alert's floor "
            "(expected x (1 - tolerance)); the alert waits once the ramp passes 95 %.",
            "percentunit",
            ('channel_window:support_resolution_ratio:max{channel="$channel",window="24h"}', "24h"),
            (
                'channel_window:support_resolution_ratio_upper:max{channel="$channel",window="24h"}',
                "24h, upper bound (95 %)",
            ),
            ('channel:support_expected_resolution_ratio:max{channel="$channel"}', "expected"),
            (
                'channel:support_expected_resolution_ratio:max{channel="$channel"}'
                " * on () group_left () (1 - support_ramp_tolerance_ratio:max)",
                "alert floor",
            ),
            ('channel:support_ramp_progress_ratio:max{channel="$channel"}', "ramp progress"),
            scale=RESOLUTION,
            alerts=("SupportChannelBelowRamp",),
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
        try:
            text = render(name)
        except ThresholdsError as error:  # the runbook links' base
            print(f"error: {error}", file=sys.stderr)
            return 2
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

"""Panel and dashboard builders every generated dashboard uses (grafana-foundation-sdk):
each panel with a title, a description, a unit, the pinned datasource and a size."""

from __future__ import annotations

from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from roi_metrics.domain.timebuckets import Window

DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="roi-prometheus")
WINDOWS: Final = ",".join(window.value for window in Window)
Query = tuple[str, str]  # (PromQL, legend)
Builder = stat.Panel | timeseries.Panel | table.Panel


def with_targets(panel: Any, queries: tuple[Query, ...], instant: bool = False) -> Any:
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        target = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
        if instant:
            target = target.instant().format(PromQueryFormat.TABLE)
        panel = panel.with_target(target)
    return panel


def with_common(
    panel: Any, title: str, description: str, unit: str, *, span: int, height: int
) -> Any:
    """What every panel has: title, description, unit, the datasource and a size."""
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(span)
        .height(height)
    )


def stat_panel(title: str, description: str, unit: str, *queries: Query, span: int = 6) -> Builder:
    panel = (
        with_common(stat.Panel(), title, description, unit, span=span, height=5)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    return with_targets(panel, queries)  # type: ignore[no-any-return]


def series_panel(
    title: str, description: str, unit: str, *queries: Query, span: int = 12
) -> Builder:
    panel = with_common(timeseries.Panel(), title, description, unit, span=span, height=8).legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    return with_targets(panel, queries)  # type: ignore[no-any-return]


def with_variables(board: dashboard.Dashboard, channel_multi: bool) -> dashboard.Dashboard:
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


def new_board(uid: str, title: str, description: str) -> dashboard.Dashboard:
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

"""Panel and dashboard builders every generated dashboard uses (grafana-foundation-sdk):
each panel with a title, a description, a unit, thresholds read at a glance, the chosen
datasource and a size; every board with the datasource, channel and window variables, the
firing alerts as annotations and links to the other boards."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from roi_metrics.codegen import PROJECT_ROOT
from roi_metrics.codegen.alerts import ALERT_NAMES, runbook_url
from roi_metrics.codegen.rules import DEFAULT_THRESHOLDS, load_thresholds
from roi_metrics.domain.timebuckets import Window

DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="${datasource}")
"""The datasource variable's choice (any Prometheus; the provisioned one by default)."""
GRAFANA_CURRENCIES: Final = frozenset(
    [
        "USD",
        "GBP",
        "EUR",
        "JPY",
        "RUB",
        "UAH",
        "BRL",
        "DKK",
        "ISK",
        "NOK",
        "SEK",
        "CZK",
        "CHF",
        "PLN",
        "ZAR",
        "INR",
        "KRW",
        "IDR",
        "PHP",
        "VND",
    ]
)
"""ISO 4217 codes Grafana has a currency unit for (currencyUSD...)."""


def money_unit(currency: str) -> str:
    """Grafana's unit for an amount in `currency`: its currency unit when it has one, else
    the code after the number."""
    return f"currency{currency}" if currency in GRAFANA_CURRENCIES else f"suffix: {currency}"


def _card() -> dict[str, Any]:
    with (PROJECT_ROOT / "deploy" / "costs.toml").open("rb") as file:
        return tomllib.load(file)


MONEY: Final = money_unit(str(_card()["currency"]))
"""Amounts are in the cost card's currency (deploy/costs.toml, read when generating)."""
TARGET_ROI: Final = float(_card().get("target_roi", 1.0))


@dataclass(frozen=True)
class Scale:
    """A panel's thresholds: the colour below the first step, then (from value, colour)
    upward. Without one, Grafana's default (green, red from 80) would colour a payback of
    81 red and a worker count of 0 green."""

    base: str
    steps: tuple[tuple[float, str], ...] = ()

    def config(self) -> dashboard.ThresholdsConfig:
        steps = [Threshold(value=None, color=self.base)]
        steps += [Threshold(value=value, color=color) for value, color in self.steps]
        return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)

    def override(self) -> dict[str, Any]:
        """The thresholds as a field override's value (a table column's own scale)."""
        steps: list[dict[str, Any]] = [{"color": self.base, "value": None}]
        steps += [{"color": color, "value": value} for value, color in self.steps]
        return {"mode": "absolute", "steps": steps}

    def colour(self, value: float) -> str:
        """The colour Grafana gives `value`: that of the highest step at or below it."""
        return ([self.base] + [c for step, c in self.steps if value >= step])[-1]


NEUTRAL: Final = Scale("blue")
"""A figure with no good or bad by itself (volumes, costs, CSAT)."""
SIGN: Final = Scale("red", ((0, "green"),))
"""Below zero is a loss (net value, payback)."""
ROI: Final = Scale("red", ((0, "yellow"), (TARGET_ROI, "green")))
"""A loss red, short of the cost card's target yellow, at or above it green."""


def higher_is_better(warn: float, good: float) -> Scale:
    return Scale("red", ((warn, "yellow"), (good, "green")))


def lower_is_better(warn: float, bad: float) -> Scale:
    return Scale("green", ((warn, "yellow"), (bad, "red")))


RESOLUTION: Final = higher_is_better(0.3, 0.5)
"""Share of AI conversations the AI resolves: below 30 % red, from 50 % green."""
AUTOMATION: Final = higher_is_better(0.2, 0.4)
ESCALATION: Final = lower_is_better(0.2, 0.4)
"""Handoffs: from 20 % (the escalation alert's floor) yellow, from 40 % red."""
CSAT: Final = higher_is_better(3, 4)
AT_LEAST_ONE: Final = Scale("red", ((1, "green"),))
"""Workers, exporters, a reachable Redis: none is red."""
NONE_WANTED: Final = Scale("green", ((1, "red"),))
"""Dead letters: any is worth a look."""
LAG: Final = lower_is_better(1_000, 10_000)
APPLY_LATENCY: Final = lower_is_better(0.5, 2)


@cache
def runbooks() -> str:
    """The runbooks' base, as in the alerts' runbook_url (thresholds.toml, read when
    generating; ThresholdsError when it is bad)."""
    return load_thresholds(DEFAULT_THRESHOLDS).runbook_url


def runbook_links(alerts: tuple[str, ...]) -> list[dashboard.DashboardLink]:
    """A panel's links to the runbooks of the alerts that watch what it shows."""
    unknown = set(alerts) - ALERT_NAMES
    if unknown:
        raise ValueError(f"no such alert: {', '.join(sorted(unknown))}")
    return [
        dashboard.DashboardLink(f"Runbook: {alert}")
        .type(DashboardLinkType.LINK)
        .url(runbook_url(runbooks(), alert))
        .target_blank(True)
        for alert in alerts
    ]


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
    panel: Any,
    title: str,
    description: str,
    unit: str,
    *,
    span: int,
    height: int,
    scale: Scale = NEUTRAL,
    alerts: tuple[str, ...] = (),
) -> Any:
    """What every panel has: title, description, unit, thresholds, the datasource, a size;
    and links to the runbooks of the alerts that watch it."""
    panel = (
        panel.title(title)
        .description(description)
        .unit(unit)
        .thresholds(scale.config())
        .datasource(DATASOURCE)
        .span(span)
        .height(height)
    )
    return panel.links(runbook_links(alerts)) if alerts else panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    span: int = 6,
    scale: Scale = NEUTRAL,
    alerts: tuple[str, ...] = (),
) -> Builder:
    panel = (
        with_common(
            stat.Panel(), title, description, unit, span=span, height=5, scale=scale, alerts=alerts
        )
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    return with_targets(panel, queries)  # type: ignore[no-any-return]


def series_panel(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    span: int = 12,
    scale: Scale = NEUTRAL,
    alerts: tuple[str, ...] = (),
) -> Builder:
    common_parts = with_common(
        timeseries.Panel(),
        title,
        description,
        unit,
        span=span,
        height=8,
        scale=scale,
        alerts=alerts,
    )
    if scale is not NEUTRAL:  # the thresholds as coloured bands behind the lines
        common_parts = common_parts.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.AREA)
        )
    panel = common_parts.legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    return with_targets(panel, queries)  # type: ignore[no-any-return]


def with_variables(board: dashboard.Dashboard, channel_multi: bool) -> dashboard.Dashboard:
    """The datasource (with the alerts' annotations), channel and window variables."""
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
    return with_datasource(board).with_variable(channel).with_variable(window)


def with_datasource(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """The datasource variable (first) and, read through it, this project's firing alerts
    as annotations."""
    source = (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .description("The Prometheus that scrapes roi-metrics.")
        .type("prometheus")
    )
    alerts = (
        dashboard.AnnotationQuery()
        .name("Alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr('ALERTS{alertstate="firing", alertname=~"Support.+"}')
    )
    return board.with_variable(source).annotation(alerts)


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
        .link(
            dashboard.DashboardLink("roi-metrics")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["roi-metrics"])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
        )
    )

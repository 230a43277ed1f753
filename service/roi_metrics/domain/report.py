"""Figures of every channel and of the programme, per window, from a snapshot of counters:
what the exporter exports, `report` and `replay` print and `top` shows, computed once here
with the domain code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from rich.table import Table

from roi_metrics.domain.costcard import CostCard, fixed_cost_micros
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import (
    ChannelFigures,
    ProgramFigures,
    channel_figures,
    program_figures,
)
from roi_metrics.domain.money import micros_to_units
from roi_metrics.domain.timebuckets import Window
from roi_metrics.state.reader import Snapshot

DEFINITIONS_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Report:
    at: int
    """The clock the windows and fixed costs are computed at (Unix seconds)."""
    currency: str
    channels: dict[str, dict[Window, ChannelFigures]]
    program: dict[Window, ProgramFigures]


def build_report(snapshot: Snapshot, card: CostCard) -> Report:
    channels: dict[str, dict[Window, ChannelFigures]] = {
        channel: {
            window: channel_figures(
                counts.get(window, {}), card.human_cost_per_resolution_micros(channel)
            )
            for window in Window
        }
        for channel, counts in sorted(snapshot.counts.items())
    }
    program = {
        window: program_figures(
            [figures[window] for figures in channels.values()],
            micros_to_units(fixed_cost_micros(card.program, window, snapshot.now_seconds)),
        )
        for window in Window
    }
    return Report(snapshot.now_seconds, card.currency, channels, program)


def _money(value: Fraction) -> str:
    """Exact currency units with 6 decimals (micro-units are the finest money kept); an
    amortised fixed cost finer than that is rounded half to even at the 6th decimal."""
    micros = round(value * 1_000_000)
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(micros), 1_000_000)
    return f"{sign}{units}.{rest:06d}"


def _ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def channel_json(figures: ChannelFigures) -> dict[str, Any]:
    return {
        "counts": {counter.value: amount for counter, amount in figures.counts.items()},
        "net_ai_resolutions": figures.net_ai_resolutions,
        "ai_cost": _money(figures.ai_cost),
        "human_cost": _money(figures.human_cost),
        "cost_avoided": _money(figures.cost_avoided),
        "ai_revenue": _money(figures.ai_revenue),
        "value": _money(figures.value),
        "roi": _ratio(figures.roi),
        "cost_per_resolution": _ratio(figures.cost_per_resolution),
        "resolution_rate": _ratio(figures.resolution_rate),
        "escalation_rate": _ratio(figures.escalation_rate),
        "automation_rate": _ratio(figures.automation_rate),
        "csat_mean": {who: float(mean) for who, mean in sorted(figures.csat_mean.items())},
    }


def program_json(figures: ProgramFigures) -> dict[str, Any]:
    return {
        "ai_cost": _money(figures.ai_cost),
        "fixed_cost": _money(figures.fixed_cost),
        "cost": _money(figures.cost),
        "value": _money(figures.value),
        "net_ai_resolutions": figures.net_ai_resolutions,
        "roi": _ratio(figures.roi),
        "cost_per_resolution": _ratio(figures.cost_per_resolution),
    }


def report_json(report: Report, windows: Iterable[Window] = tuple(Window)) -> dict[str, Any]:
    """The report as JSON-ready data: counts as integers, money as exact decimal strings,
    ratios as numbers, null where there is no sample (CONTRACT.md §7)."""
    chosen = list(windows)
    return {
        "at": datetime.fromtimestamp(report.at, UTC).isoformat().replace("+00:00", "Z"),
        "currency": report.currency,
        "definitions_version": DEFINITIONS_VERSION,
        "program": {w.value: program_json(report.program[w]) for w in chosen},
        "channels": {
            channel: {w.value: channel_json(figures[w]) for w in chosen}
            for channel, figures in report.channels.items()
        },
    }


def percent(value: Fraction | None) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f} %"


def amount(value: Fraction | None, decimals: int = 2) -> str:
    return "—" if value is None else f"{float(value):,.{decimals}f}"


def program_table(report: Report, windows: Iterable[Window]) -> Table:
    table = Table(title=f"Programme (fully loaded, {report.currency})", title_justify="left")
    table.add_column("window")
    for column in ("ROI", "value", "cost", "of which fixed", "cost / resolution", "net AI res."):
        table.add_column(column, justify="right")
    for window in windows:
        p = report.program[window]
        table.add_row(
            window.value,
            percent(p.roi),
            amount(p.value),
            amount(p.cost),
            amount(p.fixed_cost),
            amount(p.cost_per_resolution),
            str(p.net_ai_resolutions),
        )
    return table


def channel_table(report: Report, window: Window) -> Table:
    table = Table(title=f"Channels, {window.value} ({report.currency})", title_justify="left")
    table.add_column("channel")
    for column in (
        "conversations",
        "resolution",
        "escalation",
        "automation",
        "cost / res.",
        "value",
        "AI cost",
        "ROI",
        "CSAT AI / human",
    ):
        table.add_column(column, justify="right")
    for channel, figures in report.channels.items():
        f = figures[window]
        csat = " / ".join(amount(f.csat_mean.get(who), 1) for who in ("ai", "human"))
        table.add_row(
            channel,
            f"{f.counts[Counter.CONVERSATIONS]:,}",
            percent(f.resolution_rate),
            percent(f.escalation_rate),
            percent(f.automation_rate),
            amount(f.cost_per_resolution),
            amount(f.value),
            amount(f.ai_cost),
            percent(f.roi),
            csat,
        )
    return table

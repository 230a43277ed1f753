"""The report as JSON-ready data and as Rich tables, for `report`, `replay` and `top`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Final

from rich.markup import escape
from rich.table import Table

from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import (
    DEFINITIONS_VERSION,
    ChannelFigures,
    Interval,
    ProgramFigures,
    ProgramVendor,
    Quotient,
    VendorFigures,
)
from roi_metrics.domain.money import MICROS_PER_UNIT, units_text
from roi_metrics.domain.report import Report
from roi_metrics.domain.timebuckets import Window

Number = Quotient | Fraction


_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters (escape sequences a terminal would obey: ESC, BEL,
    CR, C1 controls; line breaks and tabs are kept) shown as U+FFFD, for untrusted text
    about to reach a terminal."""
    return _CONTROLS.sub("\ufffd", text)


def escaped_names(report: Report) -> Report:
    """The report with its channel names escaped for Rich markup, for the tables of
    roi_metrics.domain.report, which render names as markup strings (a name read from Redis may be
    any text; a valid channel name is left as it is)."""

    def shown(name: str) -> str:
        return escape(printable(name))

    return replace(
        report,
        channels={shown(name): f for name, f in report.channels.items()},
        ramp={shown(name): point for name, point in report.ramp.items()},
        vendor={shown(name): f for name, f in report.vendor.items()},
    )


def _money(value: Quotient) -> str:
    return units_text(value.exact * MICROS_PER_UNIT)


def _ratio(value: Quotient | None) -> float | None:
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
        "other_revenue": _money(figures.other_revenue),
        "revenue_per_conversation": _ratio(figures.revenue_per_conversation),
        "ai_revenue_per_conversation": _ratio(figures.ai_revenue_per_conversation),
        "resolution_interval": _interval(figures.resolution_interval),
        "escalation_interval": _interval(figures.escalation_interval),
        "automation_interval": _interval(figures.automation_interval),
    }


def _interval(interval: Interval | None) -> list[float] | None:
    """[lower, upper] of a 95 % Wilson interval; null without a sample."""
    return None if interval is None else [interval.lower, interval.upper]


def program_json(figures: ProgramFigures) -> dict[str, Any]:
    return {
        "ai_cost": _money(figures.ai_cost),
        "fixed_cost": _money(figures.fixed_cost),
        "cost": _money(figures.cost),
        "value": _money(figures.value),
        "net_value": _money(figures.net_value),
        "net_ai_resolutions": figures.net_ai_resolutions,
        "roi": _ratio(figures.roi),
        "cost_per_resolution": _ratio(figures.cost_per_resolution),
        "automation_rate": _ratio(figures.automation_rate),
        "revenue_per_conversation": _ratio(figures.revenue_per_conversation),
    }


def report_json(report: Report, windows: Iterable[Window] = tuple(Window)) -> dict[str, Any]:
    """The report as JSON-ready data: counts as integers, money as exact decimal strings,
    ratios as numbers, null where there is no sample (CONTRACT.md §7)."""
    chosen = list(windows)
    program = {w.value: program_json(report.program[w]) for w in chosen}
    channels = {
        channel: {w.value: channel_json(figures[w]) for w in chosen}
        for channel, figures in report.channels.items()
    }
    # the vendor's bill (§13), with the card's [vendor] only
    for w in chosen if report.program_vendor else ():
        program[w.value]["vendor"] = vendor_json(report.program_vendor[w])
        for channel, by_window in report.vendor.items():
            channels[channel][w.value]["vendor"] = vendor_json(by_window[w])
    return {
        "at": datetime.fromtimestamp(report.at, UTC).isoformat().replace("+00:00", "Z"),
        "currency": report.currency,
        "definitions_version": DEFINITIONS_VERSION,
        "program": program,
        "payback_remaining_seconds": _ratio(report.payback_remaining_seconds),
        "channels": channels,
    }


def vendor_json(vendor: VendorFigures | ProgramVendor) -> dict[str, Any]:
    return {
        "billed_resolutions": vendor.billed_resolutions,
        "bill": _money(vendor.bill),
        "unearned_resolutions": vendor.unearned_resolutions,
        "unearned_cost": _money(vendor.unearned_cost),
    }


def percent(value: Number | None) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f} %"


def amount(value: Number | None, decimals: int = 2) -> str:
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


def vendor_table(report: Report, windows: Iterable[Window]) -> Table:
    """The AI vendor's bill per window (CONTRACT.md §13; the card's [vendor])."""
    title = f"AI vendor's bill, all channels ({report.currency})"
    table = Table(title=title, title_justify="left")
    table.add_column("window")
    for column in ("billed res.", "bill", "unearned res.", "unearned cost", "unearned share"):
        table.add_column(column, justify="right")
    for window in windows:
        v = report.program_vendor[window]
        share = v.unearned_cost.exact / v.bill.exact if v.bill.numerator else None
        table.add_row(
            window.value,
            f"{v.billed_resolutions:,}",
            amount(v.bill),
            f"{v.unearned_resolutions:,}",
            amount(v.unearned_cost),
            percent(share),
        )
    return table


def ramp_status(report: Report, channel: str, tolerance: float | None) -> str:
    """Where the channel's AI stands against its expected learning curve (CONTRACT.md §11),
    from the 95 % band of its 24h resolution ratio: "below" when even the upper bound is
    under expected x (1 - tolerance) (what SupportChannelBelowRamp pages on), "above" when
    the lower bound is over expected, else "on"; "—" without a ramp or a ratio."""
    point = report.ramp.get(channel)
    band = report.channels[channel][Window.HOURS_24].resolution_interval
    if point is None or band is None or tolerance is None:
        return "—"
    if band.upper < point.expected * (1 - tolerance):
        return "below"
    return "above" if band.lower > point.expected else "on"


def channels_table(title: str, *columns: str) -> Table:
    """A table of one row per channel: the channel's name, then `columns` of figures."""
    table = Table(title=title, title_justify="left")
    table.add_column("channel")
    for column in columns:
        table.add_column(column, justify="right")
    return table


def journey_table(report: Report, window: Window, tolerance: float | None) -> Table:
    """What no vendor report shows (CONTRACT.md §9 to §12), per channel: customers who came back
    (re-contacts), the resolution ratio's 95 % band, the expected ratio of its ramp and where
    it stands against it (24h), revenue per conversation."""
    table = channels_table(
        f"Journeys and learning, {window.value} ({report.currency})",
        "re-contacts",
        "resolution (95 % band)",
        "expected (ramp)",
        "vs ramp, 24h",
        "revenue / conv.",
    )
    for channel, figures in report.channels.items():
        f = figures[window]
        band = f.resolution_interval
        point = report.ramp.get(channel)
        table.add_row(
            channel,
            f"{f.counts[Counter.AI_RECONTACTS]:,}",
            "—" if band is None else f"{band.lower * 100:.0f} to {band.upper * 100:.0f} %",
            "—" if point is None else percent(Fraction(point.expected)),
            ramp_status(report, channel, tolerance),
            amount(f.revenue_per_conversation),
        )
    return table


def channel_table(report: Report, window: Window) -> Table:
    table = channels_table(
        f"Channels, {window.value} ({report.currency})",
        "conversations",
        "resolution",
        "escalation",
        "automation",
        "cost / res.",
        "value",
        "AI cost",
        "ROI",
        "CSAT AI / human",
    )
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

"""The report: every channel's and the programme's figures in every window, from a snapshot
of counters and the cost card. The one object the exporter, `report`, `replay` and `top`
render; each figure in it is decided in roi_metrics.domain.figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roi_metrics.domain.costcard import CostCard, RampPoint, fixed_cost_micros, ramp_point
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import (
    ChannelFigures,
    Counts,
    ProgramFigures,
    ProgramVendor,
    Quotient,
    VendorFigures,
    channel_figures,
    payback_remaining_seconds,
    program_figures,
    program_vendor,
    vendor_figures,
)
from roi_metrics.domain.timebuckets import Window


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters of every known channel in every window, at `now_seconds`."""

    now_seconds: int
    counts: dict[str, dict[Window, dict[Counter, int]]]


@dataclass(frozen=True, slots=True)
class Report:
    at: int
    """The clock the windows and fixed costs are computed at (Unix seconds)."""
    currency: str
    channels: dict[str, dict[Window, ChannelFigures]]
    """By channel name, sorted."""
    program: dict[Window, ProgramFigures]
    payback_remaining_seconds: Quotient | None
    """Seconds to payback at the last 30 days' pace (§14): 0 once paid back, None while the
    pace is not positive."""
    ramp: dict[str, RampPoint]
    """Where each channel stands on its expected learning curve (§11): only with the card's
    [ramp], and only channels past their go-live."""
    vendor: dict[str, dict[Window, VendorFigures]]
    """The vendor's bill per channel and window (§13): only with the card's [vendor]."""
    program_vendor: dict[Window, ProgramVendor]
    """The vendor's bill over every channel per window (§13): only with the card's [vendor]."""


ChannelFigureMaker = Callable[[Counts, int], ChannelFigures]
"""channel_figures, or a function that gives the same (the exporter's memo)."""


def build_report(
    snapshot: Snapshot, card: CostCard, figures: ChannelFigureMaker = channel_figures
) -> Report:
    """Every figure of every channel and of the programme, in every window."""
    channels: dict[str, dict[Window, ChannelFigures]] = {
        channel: {
            window: figures(counts.get(window, {}), card.human_cost_per_resolution_micros(channel))
            for window in Window
        }
        for channel, counts in sorted(snapshot.counts.items())
    }
    program = {
        window: program_figures(
            [by_window[window] for by_window in channels.values()],
            fixed_cost_micros(card.program, window, snapshot.now_seconds),
        )
        for window in Window
    }
    payback = payback_remaining_seconds(
        program[Window.ALL].net_value, program[Window.DAYS_30].net_value
    )
    ramp = {
        channel: point
        for channel in channels
        if (curve := card.channel_ramp(channel)) is not None
        and (point := ramp_point(curve, snapshot.now_seconds)) is not None
    }
    vendor: dict[str, dict[Window, VendorFigures]] = {}
    if card.vendor is not None:
        price, assumed = card.vendor.price_per_resolution_micros, card.vendor.bills_assumed
        vendor = {
            channel: {
                window: vendor_figures(figures.counts, price, assumed)
                for window, figures in by_window.items()
            }
            for channel, by_window in channels.items()
        }
    program_bill = {
        window: program_vendor([by_window[window] for by_window in vendor.values()])
        for window in Window
        if card.vendor is not None
    }
    return Report(
        snapshot.now_seconds,
        card.currency,
        channels,
        program,
        payback,
        ramp,
        vendor,
        program_bill,
    )

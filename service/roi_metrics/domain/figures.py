"""Derived figures of CONTRACT.md §7, exact (fractions of currency units).

A ratio whose denominator is 0 is None ("no sample"): it is not exported, never shown as 0.
Programme figures are computed from sums over channels, never from channel ratios.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from roi_metrics.domain.events import CSAT_COUNTERS, Counter
from roi_metrics.domain.money import micros_to_units

Counts = Mapping[Counter, int]


def sum_counts(many: Iterable[Counts]) -> dict[Counter, int]:
    """Counter-wise sum; every counter is present in the result, 0 when absent everywhere."""
    total = dict.fromkeys(Counter, 0)
    for counts in many:
        for counter, amount in counts.items():
            total[counter] += amount
    return total


def ratio(numerator: Fraction | int, denominator: Fraction | int) -> Fraction | None:
    """numerator / denominator, or None when the denominator is 0."""
    if denominator == 0:
        return None
    return Fraction(numerator) / Fraction(denominator)


def _positive_ratio(numerator: Fraction | int, denominator: Fraction | int) -> Fraction | None:
    """A per-resolution figure: no sample unless the denominator is positive (a window in
    which reopens outnumber resolutions has no meaningful cost per resolution)."""
    return ratio(numerator, denominator) if denominator > 0 else None


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    """One channel in one window. Money in currency units."""

    counts: dict[Counter, int]
    human_cost_per_resolution: Fraction
    net_ai_resolutions: int
    ai_cost: Fraction
    human_cost: Fraction
    cost_avoided: Fraction
    ai_revenue: Fraction
    value: Fraction
    roi: Fraction | None
    cost_per_resolution: Fraction | None
    resolution_rate: Fraction | None
    escalation_rate: Fraction | None
    automation_rate: Fraction | None
    csat_mean: dict[str, Fraction]
    """By who resolved the conversation (ai, human, none); only those with a score."""

    @property
    def ai_resolutions(self) -> int:
        return (
            self.counts[Counter.AI_RESOLUTIONS_ASSUMED]
            + self.counts[Counter.AI_RESOLUTIONS_CONFIRMED]
        )


MICROS: Final = 1_000_000


def _csat_means(counts: Counts) -> dict[str, Fraction]:
    means = {}
    for resolved_by, (count, total) in CSAT_COUNTERS.items():
        mean = ratio(counts[total], counts[count])
        if mean is not None:
            means[resolved_by] = mean
    return means


def channel_figures(counts: Counts, human_cost_per_resolution_micros: int) -> ChannelFigures:
    """Every §7 figure of one channel from its summed counters."""
    full = sum_counts([counts])
    ai_resolutions = full[Counter.AI_RESOLUTIONS_ASSUMED] + full[Counter.AI_RESOLUTIONS_CONFIRMED]
    net = ai_resolutions - full[Counter.AI_REOPENS]
    human_cost_per_resolution = micros_to_units(human_cost_per_resolution_micros)
    ai_cost = micros_to_units(full[Counter.AI_COST_MICROS])
    ai_revenue = micros_to_units(full[Counter.AI_REVENUE_MICROS])
    cost_avoided = net * human_cost_per_resolution
    value = cost_avoided + ai_revenue
    return ChannelFigures(
        counts=full,
        human_cost_per_resolution=human_cost_per_resolution,
        net_ai_resolutions=net,
        ai_cost=ai_cost,
        human_cost=micros_to_units(full[Counter.HUMAN_COST_MICROS]),
        cost_avoided=cost_avoided,
        ai_revenue=ai_revenue,
        value=value,
        roi=ratio(value - ai_cost, ai_cost),
        cost_per_resolution=_positive_ratio(ai_cost, net),
        resolution_rate=ratio(ai_resolutions, full[Counter.AI_CONVERSATIONS]),
        escalation_rate=ratio(full[Counter.ESCALATIONS], full[Counter.AI_CONVERSATIONS]),
        automation_rate=ratio(net, full[Counter.CONVERSATIONS]),
        csat_mean=_csat_means(full),
    )


@dataclass(frozen=True, slots=True)
class ProgramFigures:
    """All channels together in one window, fixed and one-off costs included."""

    ai_cost: Fraction
    fixed_cost: Fraction
    cost: Fraction
    """ai_cost + fixed_cost: what the programme cost in the window."""
    value: Fraction
    net_ai_resolutions: int
    roi: Fraction | None
    cost_per_resolution: Fraction | None


def _program(ai_cost: Fraction, value: Fraction, net: int, fixed_cost: Fraction) -> ProgramFigures:
    cost = ai_cost + fixed_cost
    return ProgramFigures(
        ai_cost=ai_cost,
        fixed_cost=fixed_cost,
        cost=cost,
        value=value,
        net_ai_resolutions=net,
        roi=ratio(value - cost, cost),
        cost_per_resolution=_positive_ratio(cost, net),
    )


def program_figures(channels: Sequence[ChannelFigures], fixed_cost: Fraction) -> ProgramFigures:
    """Fully loaded programme figures from the channels' sums and the window's fixed cost."""
    ai_cost = sum((channel.ai_cost for channel in channels), Fraction(0))
    value = sum((channel.value for channel in channels), Fraction(0))
    net = sum(channel.net_ai_resolutions for channel in channels)
    return _program(ai_cost, value, net, fixed_cost)


@dataclass(frozen=True, slots=True)
class ChannelGauges:
    """A channel's figures as the floats the exporter publishes, each equal to float() of
    the exact figure (checked by tests/unit/test_gauges.py). Computed from integers with one
    division at the end: Python's int / int is correctly rounded, as float(Fraction) is,
    and it costs a fraction of building fractions (scrapes compute hundreds of these)."""

    counts: Mapping[Counter, int]
    net_ai_resolutions: int
    ai_cost_micros: int
    value_micros: int
    ai_cost: float
    human_cost: float
    cost_avoided: float
    ai_revenue: float
    roi: float | None
    cost_per_resolution: float | None
    resolution_rate: float | None
    escalation_rate: float | None
    automation_rate: float | None
    csat_mean: dict[str, float]


def _div(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def channel_gauges(counts: Counts, human_cost_per_resolution_micros: int) -> ChannelGauges:
    """channel_figures() as floats, for the exporter."""
    get = counts.get
    ai_resolutions = get(Counter.AI_RESOLUTIONS_ASSUMED, 0) + get(
        Counter.AI_RESOLUTIONS_CONFIRMED, 0
    )
    net = ai_resolutions - get(Counter.AI_REOPENS, 0)
    ai_conversations = get(Counter.AI_CONVERSATIONS, 0)
    cost = get(Counter.AI_COST_MICROS, 0)
    revenue = get(Counter.AI_REVENUE_MICROS, 0)
    avoided = net * human_cost_per_resolution_micros
    value = avoided + revenue
    csat = {}
    for resolved_by, (count, total) in CSAT_COUNTERS.items():
        if get(count, 0):
            csat[resolved_by] = get(total, 0) / get(count, 0)
    return ChannelGauges(
        counts=counts,
        net_ai_resolutions=net,
        ai_cost_micros=cost,
        value_micros=value,
        ai_cost=cost / MICROS,
        human_cost=get(Counter.HUMAN_COST_MICROS, 0) / MICROS,
        cost_avoided=avoided / MICROS,
        ai_revenue=revenue / MICROS,
        roi=_div(value - cost, cost),
        cost_per_resolution=cost / (net * MICROS) if net > 0 else None,
        resolution_rate=_div(ai_resolutions, ai_conversations),
        escalation_rate=_div(get(Counter.ESCALATIONS, 0), ai_conversations),
        automation_rate=_div(net, get(Counter.CONVERSATIONS, 0)),
        csat_mean=csat,
    )


def program_gauges(channels: Sequence[ChannelGauges], fixed_cost: Fraction) -> ProgramFigures:
    """program_figures() from the channels' gauges (their exact integer sums)."""
    ai_cost = Fraction(sum(channel.ai_cost_micros for channel in channels), MICROS)
    value = Fraction(sum(channel.value_micros for channel in channels), MICROS)
    net = sum(channel.net_ai_resolutions for channel in channels)
    return _program(ai_cost, value, net, fixed_cost)

"""Derived figures of CONTRACT.md §7: each decided once here, from integer sums.

Every figure is a `Quotient`: the exact numerator and denominator it is defined by, which
gives the exact value (`.exact`, a Fraction: for `report --json` and `replay`) and the
correctly rounded float (`float()`: for the exporter) from the same terms. A ratio whose
denominator is 0 is None ("no sample"): it is not exported, never shown as 0. Programme
figures are computed from sums over channels, never from channel ratios.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, NamedTuple

from roi_metrics.domain.events import CSAT_COUNTERS, Counter
from roi_metrics.domain.money import MICROS_PER_UNIT

DEFINITIONS_VERSION: Final = "2"
"""The version of the definitions the figures follow (CONTRACT.md §7), exported in
support_info and written in `report --json`."""

Counts = Mapping[Counter, int]
Term = int | Fraction
"""An integer sum, or a fraction of micro-units (the programme's amortised fixed cost)."""


class Quotient:
    """numerator / denominator, both exact; compares, hashes and converts as that number.

    `float()` is correctly rounded: Python's int / int is, and so is float() of a Fraction.
    Dividing integers at the end costs a fraction of building a Fraction, which matters to
    the exporter (a scrape of 50 channels converts thousands of figures). Treat it as
    immutable (its hash is its value's). The denominator is never 0: `ratio()` gives None
    ("no sample") instead.
    """

    __slots__ = ("denominator", "numerator")

    def __init__(self, numerator: Term, denominator: Term) -> None:
        if not denominator:
            raise ZeroDivisionError(f"Quotient({numerator!r}, 0)")
        self.numerator = numerator
        self.denominator = denominator

    @property
    def exact(self) -> Fraction:
        return Fraction(self.numerator) / Fraction(self.denominator)

    def __float__(self) -> float:
        numerator, denominator = self.numerator, self.denominator
        if numerator.__class__ is int and denominator.__class__ is int:
            return numerator / denominator
        return float(self.exact)

    def _other(self, other: object) -> Fraction | float | None:
        """`other` as a number to compare with; None when it is not one."""
        if isinstance(other, Quotient):
            return other.exact
        if isinstance(other, int | float | Fraction):
            return other
        if isinstance(other, Decimal):
            return Fraction(other) if other.is_finite() else float(other)
        return None

    def __eq__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else self.exact == value

    def __lt__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else self.exact < value

    def __le__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else self.exact <= value

    def __gt__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else self.exact > value

    def __ge__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else self.exact >= value

    def __hash__(self) -> int:
        return hash(self.exact)

    def __repr__(self) -> str:
        return f"Quotient({self.numerator!r}, {self.denominator!r})"


def ratio(numerator: Term, denominator: Term) -> Quotient | None:
    """numerator / denominator, or None when the denominator is 0."""
    return Quotient(numerator, denominator) if denominator else None


def money(micros: Term) -> Quotient:
    """An amount of micro-units, in currency units."""
    return Quotient(micros, MICROS_PER_UNIT)


def per_resolution(cost_micros: Term, net_ai_resolutions: int) -> Quotient | None:
    """Cost per net AI resolution, in currency units: no sample unless the number of net
    resolutions is positive (a window in which reopens outnumber resolutions has no
    meaningful cost per resolution)."""
    if net_ai_resolutions <= 0:
        return None
    return Quotient(cost_micros, net_ai_resolutions * MICROS_PER_UNIT)


def per_conversation(revenue_micros: Term, conversations: int) -> Quotient | None:
    """Revenue per conversation, in currency units; no sample without conversations."""
    return Quotient(revenue_micros, conversations * MICROS_PER_UNIT) if conversations else None


def roi(value_micros: Term, cost_micros: Term) -> Quotient | None:
    """(value - cost) / cost; no sample without cost."""
    return ratio(value_micros - cost_micros, cost_micros)


Z_95: Final = 1.959963984540054
"""The 97.5th percentile of the standard normal: a two-sided 95 % interval (CONTRACT.md §12)."""


class Interval(NamedTuple):
    """A 95 % Wilson score interval of a ratio, both bounds within [0, 1]."""

    lower: float
    upper: float


def wilson(successes: int, trials: int) -> Interval | None:
    """The Wilson score interval of successes / trials (CONTRACT.md §12), None when trials
    is 0. p is clamped to [0, 1]: net AI resolutions may be negative (more reopens than
    resolutions in a window) or, in principle, exceed the trials."""
    if trials <= 0:
        return None
    n = trials
    p = min(1.0, max(0.0, successes / n))
    z2 = Z_95 * Z_95
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # at p = 0 (p = 1) the lower (upper) bound is 0 (1) exactly; in floats it may miss by
    # an ulp, which a dashboard would show as 5.6e-17
    lower = 0.0 if p == 0 else max(0.0, center - half)
    upper = 1.0 if p == 1 else min(1.0, center + half)
    return Interval(lower, upper)


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    """One channel in one window. Money in currency units."""

    counts: dict[Counter, int]
    """Every counter, 0 when absent."""
    human_cost_per_resolution: Quotient
    net_ai_resolutions: int
    ai_cost: Quotient
    human_cost: Quotient
    cost_avoided: Quotient
    ai_revenue: Quotient
    value: Quotient
    roi: Quotient | None
    cost_per_resolution: Quotient | None
    resolution_rate: Quotient | None
    escalation_rate: Quotient | None
    automation_rate: Quotient | None
    csat_mean: dict[str, Quotient]
    """By who resolved the conversation (ai, human, none); only those with a score."""
    other_revenue: Quotient
    """Revenue not attributed to the AI (§10)."""
    revenue_per_conversation: Quotient | None
    """(AI + other revenue) / conversations (§10)."""
    ai_revenue_per_conversation: Quotient | None
    """AI revenue / AI conversations (§10)."""
    resolution_interval: Interval | None
    escalation_interval: Interval | None
    automation_interval: Interval | None
    """95 % Wilson intervals of the three ratios (§12)."""

    @property
    def ai_resolutions(self) -> int:
        return (
            self.counts[Counter.AI_RESOLUTIONS_ASSUMED]
            + self.counts[Counter.AI_RESOLUTIONS_CONFIRMED]
        )


_ZERO: Final = dict.fromkeys(Counter, 0)


def channel_figures(counts: Counts, human_cost_per_resolution_micros: int) -> ChannelFigures:
    """Every §7 figure of one channel from its summed counters."""
    full = _ZERO.copy()
    full.update(counts)
    ai_resolutions = full[Counter.AI_RESOLUTIONS_ASSUMED] + full[Counter.AI_RESOLUTIONS_CONFIRMED]
    net = ai_resolutions - full[Counter.AI_REOPENS] - full[Counter.AI_RECONTACTS]
    ai_cost = full[Counter.AI_COST_MICROS]
    cost_avoided = net * human_cost_per_resolution_micros
    value = cost_avoided + full[Counter.AI_REVENUE_MICROS]
    ai_conversations = full[Counter.AI_CONVERSATIONS]
    csat_mean = {}
    for resolved_by, (count, total) in CSAT_COUNTERS.items():
        if full[count]:
            csat_mean[resolved_by] = Quotient(full[total], full[count])
    return ChannelFigures(
        counts=full,
        human_cost_per_resolution=money(human_cost_per_resolution_micros),
        net_ai_resolutions=net,
        ai_cost=money(ai_cost),
        human_cost=money(full[Counter.HUMAN_COST_MICROS]),
        cost_avoided=money(cost_avoided),
        ai_revenue=money(full[Counter.AI_REVENUE_MICROS]),
        value=money(value),
        roi=roi(value, ai_cost),
        cost_per_resolution=per_resolution(ai_cost, net),
        resolution_rate=ratio(ai_resolutions, ai_conversations),
        escalation_rate=ratio(full[Counter.ESCALATIONS], ai_conversations),
        automation_rate=ratio(net, full[Counter.CONVERSATIONS]),
        csat_mean=csat_mean,
        other_revenue=money(full[Counter.HUMAN_REVENUE_MICROS]),
        revenue_per_conversation=per_conversation(
            full[Counter.AI_REVENUE_MICROS] + full[Counter.HUMAN_REVENUE_MICROS],
            full[Counter.CONVERSATIONS],
        ),
        ai_revenue_per_conversation=per_conversation(
            full[Counter.AI_REVENUE_MICROS], ai_conversations
        ),
        resolution_interval=wilson(ai_resolutions, ai_conversations),
        escalation_interval=wilson(full[Counter.ESCALATIONS], ai_conversations),
        automation_interval=wilson(net, full[Counter.CONVERSATIONS]),
    )


@dataclass(frozen=True, slots=True)
class ProgramFigures:
    """All channels together in one window, fixed and one-off costs included."""

    ai_cost: Quotient
    fixed_cost: Quotient
    cost: Quotient
    """ai_cost + fixed_cost: what the programme cost in the window."""
    value: Quotient
    net_value: Quotient
    """value - cost: the programme's net position (since go-live: paid back when >= 0)."""
    net_ai_resolutions: int
    conversations: int
    roi: Quotient | None
    cost_per_resolution: Quotient | None
    automation_rate: Quotient | None
    """Net AI resolutions / conversations, over every channel."""
    revenue_per_conversation: Quotient | None
    """(AI + other revenue) / conversations, over every channel (§10)."""


def program_figures(channels: Sequence[ChannelFigures], fixed_cost_micros: Term) -> ProgramFigures:
    """Fully loaded programme figures from the channels' sums and the window's fixed cost
    (micro-units; a fraction when amortised)."""
    ai_cost = sum(channel.ai_cost.numerator for channel in channels)
    value = sum(channel.value.numerator for channel in channels)
    net = sum(channel.net_ai_resolutions for channel in channels)
    conversations = sum(channel.counts[Counter.CONVERSATIONS] for channel in channels)
    revenue = sum(
        channel.counts[Counter.AI_REVENUE_MICROS] + channel.counts[Counter.HUMAN_REVENUE_MICROS]
        for channel in channels
    )
    cost = ai_cost + fixed_cost_micros
    return ProgramFigures(
        ai_cost=money(ai_cost),
        fixed_cost=money(fixed_cost_micros),
        cost=money(cost),
        value=money(value),
        net_value=money(value - cost),
        net_ai_resolutions=net,
        conversations=conversations,
        roi=roi(value, cost),
        cost_per_resolution=per_resolution(cost, net),
        automation_rate=ratio(net, conversations),
        revenue_per_conversation=per_conversation(revenue, conversations),
    )


@dataclass(frozen=True, slots=True)
class VendorFigures:
    """What an AI vendor that bills per resolution charges in a window, and how much of it
    paid for resolutions that did not hold (CONTRACT.md §13). Money in currency units."""

    billed_resolutions: int
    bill: Quotient
    unearned_resolutions: int
    """Billed resolutions revoked in the window (counted when revoked)."""
    unearned_cost: Quotient


def vendor_figures(counts: Counts, price_micros: int, bills_assumed: bool) -> VendorFigures:
    """billed = confirmed AI resolutions, plus the assumed ones when the vendor bills them;
    unearned = every revoked AI resolution when it bills assumed ones, else the revoked
    confirmed ones; each times the price. (Revoked: reopened within 7 days, or revoked by a
    re-contact, §9.)"""
    confirmed = counts.get(Counter.AI_RESOLUTIONS_CONFIRMED, 0)
    if bills_assumed:
        billed = confirmed + counts.get(Counter.AI_RESOLUTIONS_ASSUMED, 0)
        unearned = counts.get(Counter.AI_REOPENS, 0) + counts.get(Counter.AI_RECONTACTS, 0)
    else:
        billed = confirmed
        unearned = counts.get(Counter.AI_REVOKED_CONFIRMED, 0)
    return VendorFigures(
        billed, money(billed * price_micros), unearned, money(unearned * price_micros)
    )


@dataclass(frozen=True, slots=True)
class ProgramVendor:
    """The vendor's bill and unearned cost over every channel in one window (§13)."""

    billed_resolutions: int
    bill: Quotient
    unearned_resolutions: int
    unearned_cost: Quotient


def program_vendor(channels: Sequence[VendorFigures]) -> ProgramVendor:
    return ProgramVendor(
        sum(channel.billed_resolutions for channel in channels),
        money(sum(channel.bill.numerator for channel in channels)),
        sum(channel.unearned_resolutions for channel in channels),
        money(sum(channel.unearned_cost.numerator for channel in channels)),
    )


PACE_SECONDS: Final = 2_592_000
"""The window the payback pace is taken over: 30 days (CONTRACT.md §14)."""


def payback_remaining_seconds(net_value_all: Quotient, net_value_30d: Quotient) -> Quotient | None:
    """Seconds until the programme's net value since go-live reaches 0 at the last 30 days'
    pace (CONTRACT.md §14): 0 once paid back; None (no sample) while the pace is not
    positive, since then it never pays back at that pace."""
    if net_value_all >= 0:
        return Quotient(0, 1)
    if net_value_30d <= 0:
        return None
    # -net(all) / (net(30d) / 2,592,000 s), from the two quotients' terms
    return Quotient(
        -net_value_all.numerator * net_value_30d.denominator * PACE_SECONDS,
        net_value_all.denominator * net_value_30d.numerator,
    )

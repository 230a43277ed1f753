"""Each figure's float (what the exporter publishes) is float() of its exact value, rounded
once, for any counters: one implementation gives both (roi_metrics.domain.figures)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import Quotient, channel_figures, program_figures

COUNTS = st.dictionaries(
    st.sampled_from(list(Counter)),
    st.one_of(st.integers(0, 50), st.integers(0, 10**15)),
)
PRICE = st.one_of(st.integers(0, 10), st.integers(0, 10**12))
CHANNEL_FIGURES = (
    "human_cost_per_resolution",
    "ai_cost",
    "human_cost",
    "cost_avoided",
    "ai_revenue",
    "value",
    "roi",
    "cost_per_resolution",
    "resolution_rate",
    "escalation_rate",
    "automation_rate",
)
PROGRAM_FIGURES = (
    "ai_cost",
    "fixed_cost",
    "cost",
    "value",
    "net_value",
    "roi",
    "cost_per_resolution",
    "automation_rate",
)


def rounded_once(figure: Quotient | None) -> bool:
    if figure is None:
        return True
    exact = Fraction(figure.numerator) / Fraction(figure.denominator)
    return float(figure) == float(exact) and figure.exact == exact


@given(COUNTS, PRICE)
def test_channel_figures_are_exact_and_rounded_once(counts: dict[Counter, int], price: int) -> None:
    figures = channel_figures(counts, price)
    for name in CHANNEL_FIGURES:
        assert rounded_once(getattr(figures, name)), name
    assert all(rounded_once(mean) for mean in figures.csat_mean.values())


@given(st.lists(st.tuples(COUNTS, PRICE), max_size=4), st.fractions(0, 10**12))
def test_program_figures_are_exact_and_rounded_once(
    channels: list[tuple[dict[Counter, int], int]], fixed_micros: Fraction
) -> None:
    figures = [channel_figures(counts, price) for counts, price in channels]
    program = program_figures(figures, fixed_micros)
    for name in PROGRAM_FIGURES:
        assert rounded_once(getattr(program, name)), name
    ai_cost = sum(Fraction(f.counts[Counter.AI_COST_MICROS], 10**6) for f in figures)
    assert program.cost == ai_cost + fixed_micros / 10**6


def test_a_quotient_compares_as_its_value() -> None:
    third = Quotient(1, 3)
    assert third == Fraction(1, 3) == Quotient(2, 6)
    assert hash(third) == hash(Fraction(1, 3))
    assert Quotient(1, 2) > third > Quotient(-1, 1)
    assert third >= 0.25 and third < 1
    assert float(Quotient(Fraction(1, 3), 10**6)) == float(Fraction(1, 3 * 10**6))
    assert third != "1/3"
    nan = float("nan")
    assert not (third < nan or third <= nan or third > nan or third >= nan or third == nan)
    assert Quotient(1, 2) == Decimal("0.5") and Quotient(1, 2) < Decimal("0.6")
    with pytest.raises(TypeError):
        assert third < "a"  # type: ignore[operator]
    with pytest.raises(ZeroDivisionError):
        Quotient(1, 0)

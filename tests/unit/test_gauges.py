"""The exporter's float fast path equals float() of the exact figures, for any counters."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import (
    channel_figures,
    channel_gauges,
    program_figures,
    program_gauges,
)

COUNTS = st.dictionaries(
    st.sampled_from(list(Counter)),
    st.one_of(st.integers(0, 50), st.integers(0, 10**15)),
)
PRICE = st.one_of(st.integers(0, 10), st.integers(0, 10**12))


def as_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


@given(COUNTS, PRICE)
def test_channel_gauges_equal_the_exact_figures_rounded_once(
    counts: dict[Counter, int], price: int
) -> None:
    exact, fast = channel_figures(counts, price), channel_gauges(counts, price)
    for name in (
        "ai_cost",
        "human_cost",
        "cost_avoided",
        "ai_revenue",
        "roi",
        "cost_per_resolution",
        "resolution_rate",
        "escalation_rate",
        "automation_rate",
    ):
        assert getattr(fast, name) == as_float(getattr(exact, name)), name
    assert fast.csat_mean == {who: float(mean) for who, mean in exact.csat_mean.items()}
    assert fast.net_ai_resolutions == exact.net_ai_resolutions


@given(st.lists(st.tuples(COUNTS, PRICE), max_size=4), st.fractions(0, 10**6))
def test_program_gauges_equal_the_program_figures(
    channels: list[tuple[dict[Counter, int], int]], fixed: Fraction
) -> None:
    exact = program_figures([channel_figures(c, p) for c, p in channels], fixed)
    fast = program_gauges([channel_gauges(c, p) for c, p in channels], fixed)
    assert fast == exact

"""Fixed costs of CONTRACT.md §7, every expected value worked out by hand.

The card: subscription 2000 + optimisation 1500 = 3500 a month (30 days = 2,592,000 s);
one-offs 12000 + 4000 = 16000 amortised over 12 x 30 = 360 days (31,104,000 s).
"""

import datetime as dt
from fractions import Fraction

import pytest
from roi_metrics.domain.costcard import OneOffCost, ProgramCosts, fixed_cost_micros
from roi_metrics.domain.timebuckets import Window

PROGRAM = ProgramCosts(  # built as the card spells it: amounts in currency units
    go_live=dt.date(2026, 1, 15),
    subscription_per_month=2000,
    optimisation_per_month=1500,
    amortize_months=12,
    one_off=(OneOffCost(name="setup", amount=12000), OneOffCost(name="training", amount=4000)),
)
GO_LIVE = int(dt.datetime(2026, 1, 15, tzinfo=dt.UTC).timestamp())
DAY = 86400


def units(window: Window, now: int) -> Fraction:
    return fixed_cost_micros(PROGRAM, window, now) / 1_000_000


def test_go_live_is_midnight_utc() -> None:
    assert PROGRAM.go_live_seconds == GO_LIVE == 1768435200


def test_amounts_are_kept_as_micro_units() -> None:
    assert PROGRAM.subscription_per_month_micros == 2000_000000
    assert PROGRAM.monthly_micros == 3500_000000
    assert PROGRAM.one_off_total_micros == 16000_000000


def test_24h_window_well_after_go_live() -> None:
    # recurring 3500 x 1/30 = 350/3; one-offs 16000 x 1/360 = 400/9; 1050/9 + 400/9 = 1450/9
    assert units(Window.HOURS_24, GO_LIVE + 100 * DAY) == Fraction(1450, 9)


def test_30d_window_only_counts_the_part_after_go_live() -> None:
    # 10 of its 30 days are after go-live: 3500 x 10/30 + 16000 x 10/360 = 3500/3 + 4000/9
    assert units(Window.DAYS_30, GO_LIVE + 10 * DAY) == Fraction(3500, 3) + Fraction(4000, 9)


def test_1h_window_straddling_go_live() -> None:
    # 1800 s after go-live: 3500 x 1800/2592000 + 16000 x 1800/31104000
    expected = Fraction(3500 * 1800, 2592000) + Fraction(16000 * 1800, 31104000)
    assert expected == Fraction(175, 72) + Fraction(25, 27)
    assert units(Window.HOUR_1, GO_LIVE + 1800) == expected


def test_amortisation_ends_after_360_days() -> None:
    # 7d window 400 days in: only the recurring 3500 x 7/30 = 2450/3
    assert units(Window.DAYS_7, GO_LIVE + 400 * DAY) == Fraction(2450, 3)
    # 7d window ending one day after the period: 6 of 7 days amortised = 16000 x 6/360
    assert units(Window.DAYS_7, GO_LIVE + 361 * DAY) == Fraction(2450, 3) + Fraction(800, 3)


def test_all_window_is_the_cash_view() -> None:
    # 45 days: 3500 x 1.5 = 5250, plus the one-offs in full
    assert units(Window.ALL, GO_LIVE + 45 * DAY) == 5250 + 16000


@pytest.mark.parametrize("window", list(Window))
def test_every_fixed_cost_is_zero_before_go_live(window: Window) -> None:
    assert units(window, GO_LIVE - 3600) == 0
    assert units(window, GO_LIVE) == 0

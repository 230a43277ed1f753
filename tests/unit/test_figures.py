"""Derived figures of CONTRACT.md §7 on hand-built counters (WEB and SLACK of helpers.py);
every expected value is worked out in the comments, not produced by the code under test."""

from fractions import Fraction

import pytest
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import (
    channel_figures,
    money,
    payback_remaining_seconds,
    program_figures,
    program_vendor,
    vendor_figures,
    wilson,
)

from tests.unit.helpers import SLACK, WEB

C = Counter


def test_channel_figures_hand_computed() -> None:
    web = channel_figures(WEB, human_cost_per_resolution_micros=6_500_000)
    assert web.ai_resolutions == 120  # 90 assumed + 30 confirmed
    assert web.net_ai_resolutions == 112  # 120 - 8 reopens
    assert web.cost_avoided == 728  # 112 x 6.50
    assert web.value == 878  # 728 + 150 AI revenue
    assert web.ai_cost == 280
    assert web.human_cost == 260
    assert web.roi == Fraction(299, 140)  # (878 - 280) / 280 = 598/280
    assert web.cost_per_resolution == Fraction(5, 2)  # 280 / 112 = 2.50
    assert web.resolution_rate == Fraction(3, 4)  # 120 / 160
    assert web.escalation_rate == Fraction(3, 20)  # 24 / 160 = 0.15
    assert web.automation_rate == Fraction(14, 25)  # 112 / 200 = 0.56
    assert web.csat_mean == {"ai": Fraction(17, 4), "human": Fraction(19, 5)}  # 4.25, 3.8


def test_ratios_with_no_denominator_have_no_sample() -> None:
    empty = channel_figures({}, human_cost_per_resolution_micros=6_500_000)
    assert empty.counts == dict.fromkeys(Counter, 0)
    assert (empty.value, empty.ai_cost, empty.cost_avoided) == (0, 0, 0)
    for ratio in (
        empty.roi,
        empty.cost_per_resolution,
        empty.resolution_rate,
        empty.escalation_rate,
        empty.automation_rate,
    ):
        assert ratio is None
    assert empty.csat_mean == {}


def test_more_reopens_than_resolutions_gives_negative_value_and_no_cost_per_resolution() -> None:
    figures = channel_figures(
        {C.AI_REOPENS: 3, C.AI_RESOLUTIONS_ASSUMED: 1, C.AI_COST_MICROS: 2_000_000},
        human_cost_per_resolution_micros=5_000_000,
    )
    assert figures.net_ai_resolutions == -2
    assert figures.value == -10  # -2 x 5
    assert figures.roi == -6  # (-10 - 2) / 2
    assert figures.cost_per_resolution is None


def test_program_figures_are_fully_loaded_and_computed_from_sums() -> None:
    web = channel_figures(WEB, 6_500_000)  # value 878, ai cost 280, net 112
    slack = channel_figures(SLACK, 5_000_000)  # net 20, value 20 x 5 = 100, ai cost 50
    fixed_micros = Fraction(1450, 9) * 1_000_000  # the 24h fixed cost of test_fixed_cost.py
    program = program_figures([web, slack], fixed_micros)
    assert program.value == 978
    assert program.ai_cost == 330
    assert program.cost == Fraction(4420, 9)  # 330 + 1450/9
    # (978 - 4420/9) / (4420/9) = (8802 - 4420) / 4420
    assert program.roi == Fraction(4382, 4420)
    assert program.cost_per_resolution == Fraction(4420, 9 * 132)  # cost / (112 + 20)
    assert program.net_value == Fraction(4382, 9)  # 978 - 4420/9
    assert program.conversations == 300  # 200 + 100
    assert program.automation_rate == Fraction(11, 25)  # 132 / 300
    # never the average of channel ratios: web 2.136 and slack 1.0 average 1.568
    assert web.roi is not None and slack.roi is not None
    assert program.roi != (web.roi.exact + slack.roi.exact) / 2


def test_program_with_no_cost_has_no_roi() -> None:
    program = program_figures([], 0)
    assert program.roi is None
    assert program.cost_per_resolution is None
    assert program.automation_rate is None


def test_revenue_per_interaction_hand_computed() -> None:
    """CONTRACT.md §10 on WEB: AI revenue 150, other revenue 99, 200 conversations of
    which 160 by the AI."""
    web = channel_figures(WEB, human_cost_per_resolution_micros=6_500_000)
    assert web.other_revenue == 99
    assert web.revenue_per_conversation == Fraction(249, 200)  # (150 + 99) / 200 = 1.245
    assert web.ai_revenue_per_conversation == Fraction(15, 16)  # 150 / 160 = 0.9375
    slack = channel_figures(SLACK, human_cost_per_resolution_micros=5_000_000)
    assert slack.revenue_per_conversation == 0  # no revenue, 100 conversations: 0, a sample
    empty = channel_figures({}, human_cost_per_resolution_micros=5_000_000)
    assert empty.revenue_per_conversation is None  # no conversations: no sample
    assert empty.ai_revenue_per_conversation is None
    program = program_figures([web, slack], fixed_cost_micros=0)
    assert program.revenue_per_conversation == Fraction(249, 300)  # (150 + 99 + 0) / 300


# The Wilson bounds below were worked out with the textbook form of the interval,
# (k + z²/2) / (n + z²) ± z·√n / (n + z²) · √(p(1 - p) + z²/(4n)), z = 1.959963984540054,
# which is the contract's form multiplied out; 8/10 → (0.4902, 0.9433) and 0/10 → (0, 0.2775)
# are the values statistics tables give.
WILSON_CASES = [
    (8, 10, 0.49016247153664183, 0.9433178485456247),
    (0, 10, 0.0, 0.2775327998628892),
    (10, 10, 0.7224672001371109, 1.0),
    (120, 160, 0.6775763046904398, 0.8107005977238076),  # web's resolution: 120 / 160
    (24, 160, 0.10291845645016233, 0.2134938801698913),  # web's escalation: 24 / 160
    (112, 200, 0.4907167533465867, 0.6270218074881414),  # web's automation: 112 / 200
    (-3, 20, 0.0, 0.16112515805281938),  # more reopens than resolutions: p clamped to 0
    # the small and the large channel of deploy/prometheus/tests/roi.test.yml, whose upper
    # bounds that promtool test feeds to the resolution alert
    (4, 20, 0.080657662579798, 0.41601743225189364),
    (40, 200, 0.15045200926098115, 0.26085518656537876),
]


def test_wilson_bounds_hand_computed() -> None:
    for k, n, lower, upper in WILSON_CASES:
        interval = wilson(k, n)
        assert interval is not None
        assert interval.lower == pytest.approx(lower, rel=1e-12, abs=1e-15), (k, n)
        assert interval.upper == pytest.approx(upper, rel=1e-12), (k, n)
    assert wilson(5, 0) is None  # no trials: no sample


def test_a_channel_carries_the_intervals_of_its_three_ratios() -> None:
    web = channel_figures(WEB, human_cost_per_resolution_micros=6_500_000)
    assert web.resolution_interval == pytest.approx((0.6775763046904398, 0.8107005977238076))
    assert web.escalation_interval == pytest.approx((0.10291845645016233, 0.2134938801698913))
    assert web.automation_interval == pytest.approx((0.4907167533465867, 0.6270218074881414))
    empty = channel_figures({}, human_cost_per_resolution_micros=6_500_000)
    assert (empty.resolution_interval, empty.automation_interval) == (None, None)


def test_a_small_channel_s_interval_is_wide_and_a_large_one_s_narrow() -> None:
    """The same 40 % resolution ratio: 20 conversations leave the upper bound above 60 %,
    2,000 pin it within 2.2 points."""
    small, large = wilson(8, 20), wilson(800, 2000)
    assert small is not None and large is not None
    assert small.upper > 0.6 and large.upper < 0.422
    assert small.lower < 0.22 and large.lower > 0.378


def test_payback_hand_computed() -> None:
    """CONTRACT.md §14: -net(all) / (net(30d) / 2,592,000 s)."""
    # 1,000 in the red since go-live, 300 earned net in the last 30 days:
    # 1000 / (300 / 2,592,000) = 8,640,000 s (100 days)
    assert payback_remaining_seconds(money(-1_000_000_000), money(300_000_000)) == 8_640_000
    # with a fixed cost amortised into a fraction: -(1000/3) / ((100) / 2,592,000)
    # = 2,592,000 / 3 * 10 = 8,640,000 s
    remaining = payback_remaining_seconds(money(Fraction(-1_000_000_000, 3)), money(100_000_000))
    assert remaining == 8_640_000
    assert payback_remaining_seconds(money(0), money(-5)) == 0  # paid back: 0, whatever the pace
    assert payback_remaining_seconds(money(-1), money(0)) is None  # no pace: no sample
    assert payback_remaining_seconds(money(-1), money(-1)) is None  # losing: never at this pace


def test_wilson_bounds_at_the_ends_are_exactly_0_and_1() -> None:
    """Floats would miss by an ulp (5.6e-17 for 0 of 3): p = 0 and p = 1 pin them."""
    for n in range(1, 200):
        assert wilson(0, n).lower == 0.0  # type: ignore[union-attr]
        assert wilson(-5, n).lower == 0.0  # type: ignore[union-attr]
        assert wilson(n, n).upper == 1.0  # type: ignore[union-attr]


def test_vendor_bill_hand_computed() -> None:
    """CONTRACT.md §13 on WEB (90 assumed and 30 confirmed AI resolutions; 8 reopened, 3 of
    them confirmed) and SLACK (20 assumed), at 0.99 a resolution."""
    web = vendor_figures(WEB, price_micros=990_000, bills_assumed=True)
    assert web.billed_resolutions == 120  # 90 + 30
    assert web.bill == Fraction(11880, 100)  # 120 x 0.99 = 118.80
    assert web.unearned_resolutions == 8  # every reopen
    assert web.unearned_cost == Fraction(792, 100)  # 8 x 0.99 = 7.92
    confirmed_only = vendor_figures(WEB, price_micros=990_000, bills_assumed=False)
    assert confirmed_only.billed_resolutions == 30
    assert confirmed_only.bill == Fraction(2970, 100)  # 30 x 0.99 = 29.70
    assert confirmed_only.unearned_resolutions == 3  # the reopened confirmed ones
    assert confirmed_only.unearned_cost == Fraction(297, 100)  # 3 x 0.99 = 2.97
    slack = vendor_figures(SLACK, price_micros=990_000, bills_assumed=True)
    assert (slack.billed_resolutions, slack.unearned_resolutions) == (20, 0)
    program = program_vendor([web, slack])
    assert program.bill == Fraction(13860, 100)  # 118.80 + 19.80 = 138.60
    assert program.unearned_cost == Fraction(792, 100)  # 7.92 + 0
    nothing = vendor_figures({}, price_micros=990_000, bills_assumed=True)
    assert (nothing.bill, nothing.unearned_cost) == (0, 0)  # a sample, at 0


def test_re_contacts_are_deducted_from_net_ai_resolutions() -> None:
    """CONTRACT.md §9: WEB with 4 AI resolutions revoked by re-contacts, 1 of them confirmed:
    net 120 - 8 reopens - 4 = 108; cost avoided 108 x 6.50 = 702; the vendor's unearned
    resolutions: 8 + 4 = 12 when it bills assumed ones (12 x 0.99 = 11.88), 3 + 1 = 4 when
    it bills confirmed ones only."""
    counts = {**WEB, C.AI_RECONTACTS: 4, C.AI_REVOKED_CONFIRMED: 3 + 1}
    web = channel_figures(counts, human_cost_per_resolution_micros=6_500_000)
    assert web.net_ai_resolutions == 108
    assert web.cost_avoided == 702
    assert web.automation_rate == Fraction(108, 200)
    assumed = vendor_figures(counts, price_micros=990_000, bills_assumed=True)
    assert (assumed.unearned_resolutions, assumed.unearned_cost) == (12, Fraction(1188, 100))
    confirmed = vendor_figures(counts, price_micros=990_000, bills_assumed=False)
    assert confirmed.unearned_resolutions == 4

"""Derived figures of CONTRACT.md §7 on hand-built counters (WEB and SLACK of helpers.py);
every expected value is worked out in the comments, not produced by the code under test."""

from fractions import Fraction

from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import channel_figures, program_figures

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

"""`report --json` and `replay --json` write the v2 figures exported so far (CONTRACT.md
§10, §12, §14): values worked out in tests/unit/test_figures.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from roi_metrics.cardfile import load_cost_card
from roi_metrics.cli.render import report_json, vendor_table
from roi_metrics.domain.events import Counter
from roi_metrics.domain.report import build_report
from roi_metrics.domain.timebuckets import Window
from roi_metrics.state.reader import Snapshot

from tests.unit.helpers import WEB

ROOT = Path(__file__).resolve().parents[2]
CARD = load_cost_card(ROOT / "deploy" / "costs.toml")
NOW = 1768435200 + 100 * 86400


def test_the_json_report_carries_revenue_per_interaction_bands_and_payback() -> None:
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    data = report_json(build_report(Snapshot(NOW, {"web": {**empty, Window.HOURS_24: WEB}}), CARD))
    day = data["channels"]["web"]["24h"]
    assert day["other_revenue"] == "99.000000"  # money: exact, to the micro-unit
    assert day["revenue_per_conversation"] == 1.245  # (150 + 99) / 200
    assert day["ai_revenue_per_conversation"] == 0.9375  # 150 / 160
    assert day["resolution_interval"] == pytest.approx([0.6775763046904398, 0.8107005977238076])
    assert data["channels"]["web"]["1h"]["resolution_interval"] is None  # no conversations
    assert data["program"]["24h"]["revenue_per_conversation"] == 1.245  # web is every channel
    assert data["payback_remaining_seconds"] is None  # 30 days earned nothing: no pace
    earning = {Counter.AI_RESOLUTIONS_CONFIRMED: 2000}  # see test_exporter.py's payback test
    paying = build_report(
        Snapshot(NOW, {"web": {Window.DAYS_30: earning, Window.ALL: earning}}), CARD
    )
    assert report_json(paying)["payback_remaining_seconds"] == 44000 * 2_592_000 / 24500


def test_the_json_report_and_the_tables_carry_the_vendor_s_bill() -> None:
    """The deploy card's vendor (0.99 a resolution, assumed ones billed) on WEB: 120 billed =
    118.80, 8 unearned = 7.92 (test_figures.py); the vendor table shows the programme's."""
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    report = build_report(Snapshot(NOW, {"web": {**empty, Window.HOURS_24: WEB}}), CARD)
    data = report_json(report)
    assert data["channels"]["web"]["24h"]["vendor"] == {
        "billed_resolutions": 120,
        "bill": "118.800000",
        "unearned_resolutions": 8,
        "unearned_cost": "7.920000",
    }
    assert data["program"]["24h"]["vendor"]["bill"] == "118.800000"
    assert data["program"]["1h"]["vendor"]["bill"] == "0.000000"  # nothing billed: 0, a sample
    console = Console(width=200, record=True)
    console.print(vendor_table(report, [Window.HOURS_24]))
    row = next(line for line in console.export_text().splitlines() if "24h" in line)
    assert row.split() == [
        "│",
        "24h",
        "│",
        "120",
        "│",
        "118.80",
        "│",
        "8",
        "│",
        "7.92",
        "│",
        "6.7",
        "%",
        "│",
    ]  # 7.92 / 118.80 = 6.67 %
    plain = CARD.model_copy(update={"vendor": None})
    assert (
        "vendor"
        not in report_json(build_report(report_snapshot(), plain))["channels"]["web"]["24h"]
    )


def report_snapshot() -> Snapshot:
    return Snapshot(NOW, {"web": {Window.HOURS_24: WEB}})

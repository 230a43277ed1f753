"""`report --json` and `replay --json` write the v2 figures exported so far (CONTRACT.md
§10, §12, §14): values worked out in tests/unit/test_figures.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from roi_metrics.cardfile import load_cost_card
from roi_metrics.cli.render import report_json
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

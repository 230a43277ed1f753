"""The collector on hand-built snapshots, through a fresh registry and the text exposition:
exact values, absent ratios, and a Redis outage that still answers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError
from roi_metrics.cardfile import load_cost_card, parse_cost_card
from roi_metrics.domain.events import Counter
from roi_metrics.domain.timebuckets import Window
from roi_metrics.export import collector, runbooks
from roi_metrics.export.collector import RoiCollector
from roi_metrics.state.reader import Snapshot

from tests.unit.helpers import NO_RAMP, RAMPED, SLACK, WEB

ROOT = Path(__file__).resolve().parents[2]
CARD = load_cost_card(ROOT / "deploy" / "costs.toml")  # default 6.50, whatsapp 5.00
GO_LIVE = 1768435200
NOW = GO_LIVE + 100 * 86400


def scrape(collector: RoiCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def snapshot(now: int) -> Snapshot:
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    return Snapshot(
        now,
        {
            "web": {**empty, Window.HOURS_24: WEB},
            "whatsapp": {**empty, Window.HOURS_24: SLACK},
        },
    )


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def test_channel_figures_are_exported_exactly() -> None:
    samples = scrape(RoiCollector(CARD, snapshot, clock=lambda: NOW))
    web = {"channel": "web", "window": "24h"}
    assert samples[key("support_conversations", **web)] == 200
    assert samples[key("support_ai_resolutions", **web, confirmation="confirmed")] == 30
    assert samples[key("support_ai_recontacts", **web)] == 0  # a count: 0 when none (§9)
    assert samples[key("support_ai_cost", **web)] == 280.0
    assert samples[key("support_cost_avoided", **web)] == 728.0  # 112 x 6.50
    assert samples[key("support_channel_roi_ratio", **web)] == float(Fraction(299, 140))
    assert samples[key("support_cost_per_resolution", **web)] == 2.5
    assert samples[key("support_csat_mean", **web, resolved_by="ai")] == 4.25
    whatsapp = {"channel": "whatsapp", "window": "24h"}
    assert samples[key("support_cost_avoided", **whatsapp)] == 100.0  # 20 x 5.00, its own price
    assert samples[key("support_info", currency="USD", definitions_version="2")] == 1
    assert samples[key("support_state_store_up")] == 1
    assert samples[key("support_target_roi_ratio")] == 1.0  # the card's target_roi


def test_program_figures_are_fully_loaded() -> None:
    samples = scrape(RoiCollector(CARD, snapshot, clock=lambda: NOW))
    day = {"window": "24h"}
    assert samples[key("support_fixed_cost", **day)] == float(Fraction(1450, 9))
    assert samples[key("support_program_cost", **day)] == float(Fraction(4420, 9))
    assert samples[key("support_program_value", **day)] == 978.0
    assert samples[key("support_program_net_value", **day)] == float(Fraction(4382, 9))
    assert (
        samples[key("support_program_automation_ratio", **day)] == 132 / 300
    )  # net / conversations
    assert samples[key("support_program_roi_ratio", **day)] == float(Fraction(4382, 4420))
    assert samples[key("support_program_cost_per_resolution", **day)] == float(
        Fraction(4420, 9 * 132)
    )
    # since go-live: 100 days of 3,500 a month plus the one-offs in full, nothing earned
    assert samples[key("support_program_cost", window="all")] == float(Fraction(35000, 3) + 16000)
    assert samples[key("support_program_roi_ratio", window="all")] == -1.0


def test_a_window_without_events_has_counts_but_no_ratios() -> None:
    samples = scrape(RoiCollector(CARD, snapshot, clock=lambda: NOW))
    hour = {"channel": "web", "window": "1h"}
    assert samples[key("support_conversations", **hour)] == 0
    assert samples[key("support_ai_cost", **hour)] == 0.0
    for ratio in (
        "support_channel_roi_ratio",
        "support_resolution_ratio",
        "support_cost_per_resolution",
    ):
        assert key(ratio, **hour) not in samples
    assert key("support_csat_mean", **hour, resolved_by="ai") not in samples
    assert key("support_program_cost_per_resolution", window="1h") not in samples
    assert key("support_program_automation_ratio", window="1h") not in samples


def test_redis_down_still_answers_with_the_store_down() -> None:
    def unreachable(now: int) -> Snapshot:
        raise RedisConnectionError("Connection refused")

    samples = scrape(RoiCollector(CARD, unreachable, clock=lambda: NOW))
    assert samples == {
        key("support_info", currency="USD", definitions_version="2"): 1,
        key("support_target_roi_ratio"): 1.0,
        key("support_state_store_up"): 0,
    }


def test_the_served_text_is_byte_for_byte_what_prometheus_client_writes() -> None:
    collector = RoiCollector(CARD, snapshot, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(collector)
    assert collector.exposition() == generate_latest(registry)


def test_odd_names_and_large_values_are_written_as_prometheus_client_writes_them() -> None:
    """Label values with a quote, a backslash and a newline; counts from 0 to 10^21 (the
    text switches to exponents at a million); a negative figure (a loss-making ROI)."""
    empty: dict[Window, dict] = {window: {} for window in Window}  # type: ignore[type-arg]
    counts = {
        Counter.CONVERSATIONS: 10**21,
        Counter.AI_CONVERSATIONS: 1_234_567,
        Counter.AI_RESOLUTIONS_ASSUMED: 999_999,
        Counter.ESCALATIONS: 1_000_000,
        Counter.AI_COST_MICROS: 7 * 10**15,
    }
    odd = Snapshot(NOW, {'we"b\\x\ny': {**empty, Window.HOURS_24: counts}})
    collector = RoiCollector(CARD, lambda now: odd, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(collector)
    text = collector.exposition()
    assert text == generate_latest(registry)
    labels = b'{channel="we\\"b\\\\x\\ny",window="24h"}'
    assert b"support_conversations" + labels + b" 1e+21\n" in text
    assert b"support_ai_conversations" + labels + b" 1.234567e+06\n" in text
    assert b"support_escalations" + labels + b" 1e+06\n" in text
    assert b"support_channel_roi_ratio" + labels + b" -0.9" in text


def test_the_runbooks_page_escapes_what_it_shows() -> None:
    """Markdown is shown as text: no tag of its own reaches the browser, headings anchor."""
    page = runbooks.render(
        "# Title\n\n## SupportX <b>\n\nrun `rm` <script>alert(1)</script> & go\n"
    )
    assert "<h2 id='supportx-b'>SupportX &lt;b&gt;</h2>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; go" in page and "<script>" not in page


def test_an_unwritten_channel_s_figures_are_reused_and_a_written_one_s_recomputed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader hands back the very same counts for a channel none of whose buckets was
    written; the collector then reuses its figures. New counts are computed again."""
    calls: list[int] = []
    real = collector.channel_figures

    def counted(counts: dict, human_cost: int) -> object:  # type: ignore[type-arg]
        calls.append(human_cost)
        return real(counts, human_cost)

    monkeypatch.setattr(collector, "channel_figures", counted)
    idle = Snapshot(
        NOW,
        {
            "web": {window: dict(WEB) for window in Window},
            "whatsapp": {window: dict(SLACK) for window in Window},
        },
    )
    exporter = RoiCollector(CARD, lambda now: idle, clock=lambda: NOW)
    first = exporter.exposition()
    assert len(calls) == 10  # 2 channels x 5 windows
    assert exporter.exposition() == first
    assert len(calls) == 10  # nothing computed again
    written = {**WEB, Counter.CONVERSATIONS: 201}
    busy = Snapshot(NOW, {**idle.counts, "web": {**idle.counts["web"], Window.HOURS_24: written}})
    exporter.snapshot = lambda now: busy
    text = exporter.exposition()
    assert len(calls) == 11  # web's new 24h counts only
    assert b'support_conversations{channel="web",window="24h"} 201.0' in text
    assert b'support_conversations{channel="web",window="1h"} 200.0' in text


def test_the_same_counts_under_two_prices_give_each_its_own_figures() -> None:
    """One counts object for two channels (the memo's key is its identity): each channel
    keeps its own human cost per resolution (web 6.50, whatsapp 5.00)."""
    shared = dict(WEB)
    same = Snapshot(NOW, {"web": {Window.HOURS_24: shared}, "whatsapp": {Window.HOURS_24: shared}})
    exporter = RoiCollector(CARD, lambda now: same, clock=lambda: NOW)
    for _ in range(2):
        text = exporter.exposition()
        assert b'support_cost_avoided{channel="web",window="24h"} 728.0' in text  # 112 x 6.50
        assert b'support_cost_avoided{channel="whatsapp",window="24h"} 560.0' in text  # x 5.00


def test_revenue_per_interaction_and_the_wilson_bands_are_exported() -> None:
    """WEB's 24h figures (hand-computed in test_figures.py): other revenue 99, revenue per
    conversation (150 + 99) / 200, AI revenue per AI conversation 150 / 160, and the
    Wilson bounds of 120 / 160, 24 / 160 and 112 / 200."""
    samples = scrape(RoiCollector(CARD, snapshot, clock=lambda: NOW))
    web = {"channel": "web", "window": "24h"}
    assert samples[key("support_other_revenue", **web)] == 99.0
    assert samples[key("support_revenue_per_conversation", **web)] == 1.245
    assert samples[key("support_ai_revenue_per_conversation", **web)] == 0.9375
    assert samples[key("support_resolution_ratio_lower", **web)] == pytest.approx(
        0.6775763046904398
    )
    assert samples[key("support_resolution_ratio_upper", **web)] == pytest.approx(
        0.8107005977238076
    )
    assert samples[key("support_escalation_ratio_upper", **web)] == pytest.approx(
        0.2134938801698913
    )
    assert samples[key("support_automation_ratio_lower", **web)] == pytest.approx(
        0.4907167533465867
    )
    # (99 + 150 + 0) / 300 conversations over web and whatsapp
    assert samples[key("support_program_revenue_per_conversation", window="24h")] == 0.83
    hour = {"channel": "web", "window": "1h"}  # no conversations: no rate, no band
    assert key("support_revenue_per_conversation", **hour) not in samples
    assert key("support_resolution_ratio_upper", **hour) not in samples
    assert samples[key("support_other_revenue", **hour)] == 0.0


def test_the_payback_forecast_is_exported_only_when_the_pace_pays_back() -> None:
    # the default snapshot earns nothing in 30 days: no pace, no forecast
    assert key("support_payback_remaining_seconds") not in scrape(
        RoiCollector(CARD, snapshot, clock=lambda: NOW)
    )
    # 2,000 confirmed AI resolutions on web at 6.50 = 13,000 of value, in 30d and since
    # go-live, no AI cost. Fixed cost (30d) = 3,500 + 30 x 400/9 of one-offs = 14,500/3;
    # since go-live = 35,000/3 + 16,000 = 83,000/3. Net value: 30d = 13,000 - 14,500/3 =
    # 24,500/3; all = 13,000 - 83,000/3 = -44,000/3. Payback = (44,000/3) / ((24,500/3) /
    # 2,592,000 s) = 44,000 x 2,592,000 / 24,500 s.
    counts = {Counter.AI_RESOLUTIONS_CONFIRMED: 2000}
    earning = Snapshot(NOW, {"web": {Window.DAYS_30: counts, Window.ALL: counts}})
    samples = scrape(RoiCollector(CARD, lambda now: earning, clock=lambda: NOW))
    assert samples[key("support_fixed_cost", window="30d")] == float(Fraction(14500, 3))
    assert samples[key("support_program_net_value", window="all")] == float(Fraction(-44000, 3))
    assert samples[key("support_payback_remaining_seconds")] == float(
        Fraction(44000 * 2_592_000, 24500)
    )


def test_the_ramp_is_exported_for_every_known_channel_past_its_go_live() -> None:
    """Day 100 after the programme's go-live (web) and day 55 after whatsapp's own
    (2026-03-01): progress 1 - exp(-3 d / 105), expected start + (target - start) x it."""
    card = parse_cost_card(RAMPED, Path("costs.toml"))
    samples = scrape(RoiCollector(card, snapshot, clock=lambda: NOW))
    # web: 1 - exp(-300/105) = 0.9425673807323827; 0.2 + 0.4 x that = 0.5770269522929531
    assert samples[key("support_ramp_progress_ratio", channel="web")] == pytest.approx(
        0.9425673807323827, rel=1e-12
    )
    assert samples[key("support_expected_resolution_ratio", channel="web")] == pytest.approx(
        0.5770269522929531, rel=1e-12
    )
    # whatsapp: 1 - exp(-165/105) = 0.7922518128563991; 0.2 + 0.5 x that = 0.5961259064281996
    assert samples[key("support_expected_resolution_ratio", channel="whatsapp")] == pytest.approx(
        0.5961259064281996, rel=1e-12
    )
    assert samples[key("support_ramp_tolerance_ratio")] == 0.2
    # before whatsapp's go-live its two gauges are absent; web's are there
    early = scrape(RoiCollector(card, snapshot, clock=lambda: GO_LIVE + 10 * 86400))
    assert key("support_ramp_progress_ratio", channel="whatsapp") not in early
    assert key("support_ramp_progress_ratio", channel="web") in early
    # without [ramp], nothing of it
    no_ramp = parse_cost_card(NO_RAMP, Path("costs.toml"))
    plain = scrape(RoiCollector(no_ramp, snapshot, clock=lambda: NOW))
    assert not [name for name, _ in plain if "ramp" in name or "expected" in name]


def test_the_vendor_bill_is_exported_with_the_card_s_vendor_only() -> None:
    """The deploy card's vendor bills assumed resolutions at 0.99 (hand-computed in
    test_figures.py): web 120 billed = 118.80, 8 unearned = 7.92; whatsapp (SLACK's counts)
    20 billed = 19.80; the programme 138.60."""
    samples = scrape(RoiCollector(CARD, snapshot, clock=lambda: NOW))
    web = {"channel": "web", "window": "24h"}
    assert samples[key("support_vendor_billed_resolutions", **web)] == 120
    assert samples[key("support_vendor_bill", **web)] == 118.8
    assert samples[key("support_vendor_unearned_resolutions", **web)] == 8
    assert samples[key("support_vendor_unearned_cost", **web)] == 7.92
    assert samples[key("support_vendor_bill", channel="whatsapp", window="24h")] == 19.8
    assert samples[key("support_program_vendor_bill", window="24h")] == 138.6
    assert samples[key("support_program_vendor_unearned_cost", window="24h")] == 7.92
    assert samples[key("support_vendor_bill", channel="web", window="1h")] == 0.0  # a sample
    # a vendor that bills confirmed resolutions only: 30 billed, the 3 revoked unearned
    text = (ROOT / "deploy" / "costs.toml").read_text()
    confirmed = parse_cost_card(text.replace('bills = "assumed"', 'bills = "confirmed"'), Path("c"))
    strict = scrape(RoiCollector(confirmed, snapshot, clock=lambda: NOW))
    assert strict[key("support_vendor_bill", **web)] == 29.7
    assert strict[key("support_vendor_unearned_cost", **web)] == 2.97
    # without [vendor], nothing of it
    start = text.index("[vendor]")
    plain_card = text[:start] + text[text.index("[channels.default]") :]
    plain = scrape(
        RoiCollector(parse_cost_card(plain_card, Path("c")), snapshot, clock=lambda: NOW)
    )
    assert not [name for name, _ in plain if "vendor" in name]

"""The traffic simulator: reproducible, valid under the contract, following its ramp-up curve,
degrading on demand, plugging a channel in mid-run."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest
from roi_metrics.domain.costcard import ChannelRamp
from roi_metrics.ingest.contract import rfc3339_micros
from roi_metrics.ingest.decode import Decoder
from roi_metrics.traffic.simulator import (
    DEFAULT_CHANNELS,
    EVENTS_PER_CONVERSATION,
    PROFILES,
    Options,
    Simulator,
    conversation,
    resolution_rate,
)

START = 1_780_000_000.0


def run(options: Options, seconds: float) -> list[tuple[str, str, dict[str, object]]]:
    simulator = Simulator(options, started=START)
    events = list(simulator.backfill(START))
    step = 0.5
    now = START
    while now < START + seconds:
        now += step
        events += list(simulator.due(now))
    return events + list(simulator.drain())


def test_the_same_seed_draws_the_same_traffic() -> None:
    options = Options(rate=50, seed=7, run_id="r")
    first, second = run(options, 20), run(options, 20)
    assert first == second and len(first) > 500
    other = run(Options(rate=50, seed=8, run_id="r"), 20)
    assert [e[2]["type"] for e in other] != [e[2]["type"] for e in first]


def test_every_event_is_valid_under_the_contract() -> None:
    decoder = Decoder("USD")
    events = run(Options(rate=100, seed=1, run_id="r", backfill_days=1), 10)
    kinds = set()
    for channel, key, cloud_event in events:
        decoded = decoder.decode_record(
            json.dumps(cloud_event).encode(), channel, int((START + 600) * 1_000_000)
        )
        assert not decoded.rejections, decoded.rejections
        assert decoded.events and decoded.events[0].conversation_id == key
        kinds.add(cloud_event["type"])
    assert kinds == {
        f"support.{k}"
        for k in (
            "conversation.started",
            "conversation.escalated",
            "conversation.resolved",
            "conversation.reopened",
            "csat.recorded",
            "cost.recorded",
            "revenue.attributed",
        )
    }


def test_the_ramp_up_curve_climbs_over_three_to_four_months() -> None:
    web = PROFILES["web"]
    assert resolution_rate(web, 0) == web.first_resolution
    assert resolution_rate(web, -5) == web.first_resolution  # before go-live: as at go-live
    gap = web.best_resolution - web.first_resolution
    assert resolution_rate(web, 35) == pytest.approx(web.best_resolution - gap / 2.718281828, 1e-6)
    assert resolution_rate(web, 105) > web.best_resolution - 0.05 * gap  # 95 % there
    rng = random.Random(3)
    for day, expected in ((0, web.first_resolution), (200, web.best_resolution)):
        resolved = sum(
            any(p.kind == "conversation.resolved" and p.data["resolved_by"] == "ai" for p in conv)
            for conv in (conversation(rng, web, day, False, "USD") for _ in range(20000))
        )
        # of the AI's 80 % share; reopened ones still count as resolved first
        assert resolved / 20000 == pytest.approx(web.ai_share * expected, abs=0.015)


def test_time_scale_compresses_the_ramp_up() -> None:
    simulator = Simulator(Options(time_scale=17280, start_day=10), started=START)
    assert simulator.day(START) == 10
    assert simulator.day(START + 600) == 130  # 120 days in 10 minutes


def test_degrade_stops_one_channels_ai_after_the_delay() -> None:
    options = Options(rate=200, seed=2, run_id="r", degrade="web", degrade_after=30)
    events = run(options, 90)

    def ai_resolved(after: float, before: float) -> tuple[int, int]:
        starts = {
            e[1]
            for e in events
            if e[0] == "web"
            and e[2]["type"] == "support.conversation.started"
            and e[2]["data"]["handled_by"] == "ai"
            and after <= _time(e[2]) < before
        }
        resolved = {
            e[1]
            for e in events
            if e[1] in starts
            and e[2]["type"] == "support.conversation.resolved"
            and e[2]["data"]["resolved_by"] == "ai"
        }
        return len(resolved), len(starts)

    before_resolved, before_total = ai_resolved(START, START + 30)
    after_resolved, after_total = ai_resolved(START + 30, START + 90)
    assert before_resolved / before_total > 0.2
    assert after_total > 100 and after_resolved / after_total < 0.06


def _time(cloud_event: dict[str, object]) -> float:
    return rfc3339_micros(cloud_event["time"]) / 1e6


def test_a_channel_is_plugged_in_mid_run_and_the_rate_is_about_right() -> None:
    options = Options(rate=40, seed=4, run_id="r", add_channel="voice", add_after=60)
    events = run(options, 240)
    voice = [_time(e[2]) for e in events if e[0] == "voice"]
    assert voice and min(voice) >= START + 60
    assert {e[0] for e in events} == {*DEFAULT_CHANNELS, "voice"}
    rate = len([e for e in events if _time(e[2]) < START + 240]) / 240
    assert rate == pytest.approx(40, rel=0.15)


def test_the_events_per_conversation_constant_matches_the_profiles() -> None:
    rng = random.Random(5)
    sizes = [
        len(conversation(rng, PROFILES[rng.choice(DEFAULT_CHANNELS)], day, False, "USD"))
        for day in (0, 30, 120)
        for _ in range(5000)
    ]
    assert statistics.mean(sizes) == pytest.approx(EVENTS_PER_CONVERSATION, rel=0.05)


def test_reruns_get_fresh_ids_unless_a_run_id_is_given() -> None:
    a, b = Simulator(Options()), Simulator(Options())
    assert a.run_id != b.run_id
    assert Simulator(Options(run_id="x")).run_id == "x"


def test_some_customers_come_back_after_an_ai_resolution_on_any_channel() -> None:
    """CONTRACT.md §9: every conversation names its customer on its started event; about
    RETURN_CHANCE of them are customers whose AI resolution did not help, back on a channel
    of their own choosing once that conversation is over (RETURN_AFTER after its last
    event), so that each customer's conversations follow one another."""
    events = run(Options(rate=40, seed=5, run_id="r"), 120)
    starts = [e for e in events if e[2]["type"] == "support.conversation.started"]
    assert all(isinstance(e[2].get("customer"), str) for e in starts)
    assert not [e for e in events if "customer" in e[2] and e not in starts]
    resolved_at = {
        e[1]: _time(e[2])
        for e in events
        if e[2]["type"] == "support.conversation.resolved" and e[2]["data"]["resolved_by"] == "ai"
    }
    previous: dict[object, tuple[str, str]] = {}  # each customer's latest conversation
    returns = []
    for channel, name, body in starts:
        customer = body["customer"]
        if customer in previous:
            returns.append((previous[customer], (channel, name), _time(body)))
        previous[customer] = (channel, name)
    assert 0.03 < len(returns) / len(starts) < 0.09
    ended_at: dict[str, float] = {}
    for _, name, body in events:
        ended_at[name] = max(ended_at.get(name, 0.0), _time(body))
    assert all(before[1] in resolved_at for before, _, _ in returns)  # the AI resolved it
    # each return starts RETURN_AFTER (1 s) or more after the previous conversation's end
    assert all(ended_at[before[1]] + 1.0 <= at for before, _, at in returns)
    assert min(at - ended_at[before[1]] for before, _, at in returns) < 2.0  # a moment later
    assert {before[0] for before, after, _ in returns if before[0] != after[0]}  # across channels


def test_with_the_card_s_ramps_each_channel_resolves_on_above_or_below_its_curve() -> None:
    """--follow-ramp (CONTRACT.md §11): the AI resolves as the card's curve expects at the
    conversation's time, times the profile's vs_ramp: whatsapp 1.3 (above), email 0.4
    (below), the others 1 (on); None before go-live (the simulator's own ramp-up)."""
    start = 1_780_000_000.0
    ramp = ChannelRamp(int(start) - 45 * 86_400, 0.2, 0.6, 105.0)  # live 45 days
    expected = 0.2 + 0.4 * (1 - math.exp(-3 * 45 / 105))  # 0.490...
    sim = Simulator(Options(ramps={c: ramp for c in ("web", "whatsapp", "email")}), start)
    assert sim.expected_resolution("web", PROFILES["web"], start) == pytest.approx(expected)
    whatsapp = sim.expected_resolution("whatsapp", PROFILES["whatsapp"], start)
    assert whatsapp == pytest.approx(expected * 1.3)
    email = sim.expected_resolution("email", PROFILES["email"], start)
    assert email == pytest.approx(expected * 0.4)
    assert sim.expected_resolution("slack", PROFILES["slack"], start) is None  # no curve
    before = start - 46 * 86_400
    assert sim.expected_resolution("web", PROFILES["web"], before) is None
    # and the conversations drawn follow it: of the 4,000 or so AI ones, 49 % resolve
    rng = random.Random(3)
    plans = [
        conversation(rng, PROFILES["web"], 0.0, False, "USD", resolution=expected)
        for _ in range(5000)
    ]
    ai = [p for p in plans if p[0].data["handled_by"] == "ai"]
    resolved = [p for p in ai if any(e.data.get("resolved_by") == "ai" for e in p)]
    assert len(resolved) / len(ai) == pytest.approx(expected, abs=0.03)

"""The whole observability path on the real stack: events through real Kafka, a real worker and
exporter, and a real Prometheus (started by deploy/local/prometheus.sh with 1 s scrapes and
rule evaluation, and every alert's `for` scaled down by ROI_ALERT_FOR_SCALE — configuration,
the rules are not edited).

- the exporter's figures equal a recomputation, done here, from the published events;
- every PromQL expression of the dashboards and rules parses and returns data;
- the AI stopping to resolve on one channel makes the resolution-rate alert go pending,
  then firing, in Prometheus's /api/v1/alerts, and a real Alertmanager (the project's
  configuration) notifies a webhook of it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from roi_metrics.codegen.panels import (
    AT_LEAST_ONE,
    AUTOMATION,
    ESCALATION,
    NEUTRAL,
    RESOLUTION,
    ROI,
    SIGN,
)

from tests.cloudevents import encode, event
from tests.e2e import grafana
from tests.e2e.alertmanager import Webhook, running_alertmanager
from tests.e2e.promapi import prometheus_api
from tests.integration.harness import Deployment, WorkerProcess, free_port
from tests.integration.pipeline import Offsets, create_channels, wait_applied
from tests.stack import redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
DB = 13
DAY = 86400
FOR_SCALE = "0.01"  # 15 min -> 9 s
HUMAN_PRICE = {"web": Fraction(13, 2), "whatsapp": Fraction(5)}  # deploy/costs.toml
VENDOR_PRICE = Fraction(99, 100)  # deploy/costs.toml [vendor], bills = "assumed"
Z = 1.959963984540054


def wilson(k: Fraction, n: Fraction) -> tuple[float, float]:
    """CONTRACT.md §12 by hand: the 95 % Wilson score interval of k / n."""
    p, count = float(k / n), float(n)
    center = (p + Z * Z / (2 * count)) / (1 + Z * Z / count)
    half = Z * math.sqrt(p * (1 - p) / count + Z * Z / (4 * count * count)) / (1 + Z * Z / count)
    return max(0.0, center - half), min(1.0, center + half)


WINDOWS = ("1h", "24h", "7d", "30d", "all")


@dataclass(frozen=True)
class Conversation:
    """What happens in one conversation; `events()` writes it as CloudEvents."""

    channel: str
    name: str
    start: int
    ai: bool = True
    resolved_by: str | None = None
    confirmation: str = "assumed"
    escalated: bool = False
    ai_cost: Decimal = Decimal("0.10")
    human_cost: Decimal = Decimal(0)
    csat: int | None = None
    revenue: Decimal | None = None

    @property
    def recent(self) -> bool:
        return self.start > time.time() - 3600

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def add(kind: str, suffix: str, offset: int, **data: Any) -> None:
            found.append(
                event(
                    kind,
                    f"{self.name}-{suffix}",
                    self.name,
                    self.start + offset,
                    f"/{self.channel}/e2e",
                    **data,
                )
            )

        def cost(suffix: str, offset: int, amount: Decimal, category: str) -> None:
            add(
                "cost.recorded",
                suffix,
                offset,
                amount=str(amount),
                currency="USD",
                category=category,
            )

        add("conversation.started", "s", 0, handled_by="ai" if self.ai else "human")
        if self.ai_cost:
            cost("c", 1, self.ai_cost, "ai_usage")
        if self.escalated:
            add("conversation.escalated", "e", 2)
        if self.resolved_by:
            add(
                "conversation.resolved",
                "r",
                5,
                resolved_by=self.resolved_by,
                confirmation=self.confirmation,
            )
        if self.human_cost:
            cost("h", 5, self.human_cost, "human_handling")
        if self.csat is not None:
            add("csat.recorded", "q", 6, score=self.csat)
        if self.revenue is not None:
            add("revenue.attributed", "v", 7, amount=str(self.revenue), currency="USD")
        return found


def healthy(now: int) -> list[Conversation]:
    """Three days of good history on web, a good last half hour on web and whatsapp."""
    old = now - 3 * DAY
    found = [
        Conversation("web", f"old-{i}", old + i, resolved_by="ai", ai_cost=Decimal("0.10"))
        for i in range(200)
    ]
    recent = now - 1800
    for i in range(30):
        escalated = i >= 24
        found.append(
            Conversation(
                "web",
                f"web-{i}",
                recent + i * 10,
                resolved_by="human" if escalated else "ai",
                confirmation="confirmed",
                escalated=escalated,
                human_cost=Decimal("4.00") if escalated else Decimal(0),
                csat=(5 if i % 2 else 3) if i < 10 else None,
                revenue=Decimal("20.00") if i in (0, 1) else None,
            )
        )
    for i in range(10):
        found.append(
            Conversation(
                "whatsapp",
                f"wa-{i}",
                recent + i * 10,
                resolved_by="ai" if i < 5 else None,
                ai_cost=Decimal("0.25"),
                csat=4 if i == 0 else None,
            )
        )
    found += [
        Conversation(
            "whatsapp",
            f"wa-h-{i}",
            recent + 100 + i,
            ai=False,
            resolved_by="human",
            ai_cost=Decimal(0),
            human_cost=Decimal("3.50"),
            csat=2,
        )
        for i in range(2)
    ]
    return found


def degraded(now: int) -> list[Conversation]:
    """The AI on web stops resolving: 60 more AI conversations, none resolved."""
    return [Conversation("web", f"deg-{i}", now - 600 + i * 5) for i in range(60)]


def recompute(conversations: list[Conversation]) -> dict[tuple[str, str], dict[str, Fraction]]:
    """CONTRACT.md §7 by hand, per (channel, window): counts and money summed over the
    conversations each window holds (old ones: 7d, 30d, all), then the ratios."""
    figures: dict[tuple[str, str], dict[str, Fraction]] = {}
    for conv in conversations:
        windows = WINDOWS if conv.recent else ("7d", "30d", "all")
        for window in windows:
            f = figures.setdefault((conv.channel, window), {})

            def add(
                name: str, amount: Fraction | int | Decimal, f: dict[str, Fraction] = f
            ) -> None:
                f[name] = f.get(name, Fraction(0)) + Fraction(amount)

            add("conversations", 1)
            add("ai_conversations", 1 if conv.ai else 0)
            add("escalations", 1 if conv.escalated else 0)
            add("ai_resolutions", 1 if conv.resolved_by == "ai" else 0)
            add("human_resolutions", 1 if conv.resolved_by == "human" else 0)
            add("ai_cost", conv.ai_cost)
            add("human_cost", conv.human_cost)
            add("ai_revenue", conv.revenue or 0)
            if conv.csat is not None and conv.resolved_by:
                add(f"csat_sum_{conv.resolved_by}", conv.csat)
                add(f"csat_count_{conv.resolved_by}", 1)
    for (channel, _), f in figures.items():
        net = f["ai_resolutions"]  # no reopens here
        f["cost_avoided"] = net * HUMAN_PRICE[channel]
        value = f["cost_avoided"] + f["ai_revenue"]
        if f["ai_cost"]:
            f["roi"] = (value - f["ai_cost"]) / f["ai_cost"]
        if net:
            f["cost_per_resolution"] = f["ai_cost"] / net
        if f["ai_conversations"]:
            f["resolution_rate"] = f["ai_resolutions"] / f["ai_conversations"]
            f["escalation_rate"] = f["escalations"] / f["ai_conversations"]
        f["automation_rate"] = net / f["conversations"]
        # v2 (CONTRACT.md §10, §13): no revenue here falls outside 72 h of an AI resolution,
        # and the card's vendor bills every AI resolution (assumed too) at 0.99; nothing is
        # reopened or re-contacted, so nothing billed is unearned
        f["other_revenue"] = Fraction(0)
        f["revenue_per_conversation"] = (f["ai_revenue"] + f["other_revenue"]) / f["conversations"]
        if f["ai_conversations"]:
            f["ai_revenue_per_conversation"] = f["ai_revenue"] / f["ai_conversations"]
        f["vendor_billed"] = f["ai_resolutions"]
        f["vendor_bill"] = f["ai_resolutions"] * VENDOR_PRICE
        f["vendor_unearned"] = f["vendor_unearned_cost"] = Fraction(0)
        for who in ("ai", "human"):
            if f.get(f"csat_count_{who}"):
                f[f"csat_{who}"] = f[f"csat_sum_{who}"] / f[f"csat_count_{who}"]
    return figures


EXPORTED = {
    "conversations": "support_conversations",
    "ai_conversations": "support_ai_conversations",
    "escalations": "support_escalations",
    "human_resolutions": "support_human_resolutions",
    "ai_cost": "support_ai_cost",
    "human_cost": "support_human_cost",
    "cost_avoided": "support_cost_avoided",
    "ai_revenue": "support_ai_revenue",
    "roi": "support_channel_roi_ratio",
    "cost_per_resolution": "support_cost_per_resolution",
    "resolution_rate": "support_resolution_ratio",
    "escalation_rate": "support_escalation_ratio",
    "automation_rate": "support_automation_ratio",
    # v2 (CONTRACT.md §10, §13)
    "other_revenue": "support_other_revenue",
    "revenue_per_conversation": "support_revenue_per_conversation",
    "ai_revenue_per_conversation": "support_ai_revenue_per_conversation",
    "vendor_billed": "support_vendor_billed_resolutions",
    "vendor_bill": "support_vendor_bill",
    "vendor_unearned": "support_vendor_unearned_resolutions",
    "vendor_unearned_cost": "support_vendor_unearned_cost",
}


def scrape(exporter: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class Observed:
    deployment: Deployment
    exporter: WorkerProcess
    prometheus: str
    webhook: Webhook
    now: int


async def publish(deployment: Deployment, conversations: list[Conversation]) -> Offsets:
    """Every event of the conversations; the last offset written to each partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    sent = []
    try:
        for conv in conversations:
            for record in conv.events():
                sent.append(
                    await producer.send(
                        deployment.prefix + conv.channel,
                        key=conv.name.encode(),
                        value=encode(record),
                    )
                )
        await producer.flush()
    finally:
        await producer.stop()
    offsets: Offsets = {}
    for future in sent:
        written = future.result()
        key = (written.topic, written.partition)
        offsets[key] = max(offsets.get(key, -1), written.offset)
    return offsets


async def applied(deployment: Deployment, offsets: Offsets) -> None:
    """Wait until the worker applied every offset (its watermarks in Redis)."""
    client = aioredis.Redis.from_url(deployment.redis_url)
    try:
        await wait_applied(client, deployment, offsets, seconds=90)
    finally:
        await client.aclose()


def wait_for(what: str, check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        time.sleep(0.5)


def start_prometheus(
    tmp: Path, exporter: int, worker: int, alertmanager: str
) -> tuple[str, dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "ROI_STATE_DIR": str(tmp / "state"),
        "ROI_PROMETHEUS_PORT": str(port),
        "ROI_EXPORTER_PORT": str(exporter),
        "ROI_WORKER_PORT": str(worker),
        "ROI_PROMETHEUS_SCRAPE_INTERVAL": "1s",
        "ROI_PROMETHEUS_EVAL_INTERVAL": "1s",
        "ROI_ALERT_FOR_SCALE": FOR_SCALE,
        "ROI_ALERTMANAGER_PORT": alertmanager.rsplit(":", 1)[1],
    }
    script = str(ROOT / "deploy/local/prometheus.sh")
    result = subprocess.run([script, "start"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return f"http://127.0.0.1:{port}", env


async def prepare(deployment: Deployment) -> None:
    client = aioredis.Redis.from_url(deployment.redis_url)
    await client.flushdb()
    await client.aclose()
    await create_channels(deployment, ["web", "whatsapp"], partitions=2)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, bootstrap: str) -> Iterator[Observed]:
    tmp = tmp_path_factory.mktemp("observability")
    deployment = Deployment(bootstrap, f"{redis_url().rsplit('/', 1)[0]}/{DB}", tmp)
    asyncio.run(prepare(deployment))
    worker = deployment.start_worker()
    exporter = deployment.start_exporter()
    with running_alertmanager(tmp) as (alertmanager, webhook):
        base, env = start_prometheus(tmp, exporter.port, worker.port, alertmanager)
        try:
            yield Observed(deployment, exporter, base, webhook, int(time.time()))
        finally:
            script = str(ROOT / "deploy/local/prometheus.sh")
            subprocess.run([script, "stop"], env=env, capture_output=True, check=False)
            deployment.stop_all()


def scraped_conversations(exporter: WorkerProcess, channel: str, window: str) -> float:
    key = ("support_conversations", (("channel", channel), ("window", window)))
    return scrape(exporter).get(key, -1.0)


def test_exporter_figures_equal_a_recomputation_from_the_published_events(
    observed: Observed,
) -> None:
    history = healthy(observed.now)
    offsets = asyncio.run(publish(observed.deployment, history))
    expected = recompute(history)
    # every event, not only the conversations' first ones (a conversation's later events
    # may still wait in its partition when its count is already in)
    asyncio.run(applied(observed.deployment, offsets))
    assert scraped_conversations(observed.exporter, "web", "all") == 230
    assert scraped_conversations(observed.exporter, "whatsapp", "all") == 12
    samples = scrape(observed.exporter)
    compared = 0
    for (channel, window), figures in expected.items():
        labels = (("channel", channel), ("window", window))
        for name, metric in EXPORTED.items():
            if name in figures:
                assert samples[(metric, labels)] == float(figures[name]), (metric, labels)
                compared += 1
            else:
                assert (metric, labels) not in samples, (metric, labels)  # no sample: absent
        resolutions = sum(
            samples[("support_ai_resolutions", tuple(sorted((*labels, ("confirmation", c)))))]
            for c in ("assumed", "confirmed")
        )
        assert resolutions == float(figures["ai_resolutions"])
        compared += check_bounds(samples, labels, figures)
        for who in ("ai", "human"):
            key = ("support_csat_mean", tuple(sorted((*labels, ("resolved_by", who)))))
            if f"csat_{who}" in figures:
                assert samples[key] == float(figures[f"csat_{who}"]), key
            else:
                assert key not in samples
    # windows nothing fell in still have their counts, at 0 (CONTRACT.md §7)
    assert samples[("support_conversations", (("channel", "web"), ("window", "24h")))] == 30
    assert compared > 100
    check_program(samples, expected)


def check_bounds(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    labels: tuple[tuple[str, str], ...],
    figures: dict[str, Fraction],
) -> int:
    """§12: each ratio's Wilson bounds, from the same counts; returns how many compared."""
    compared = 0
    bounds = {
        "resolution": (figures["ai_resolutions"], figures["ai_conversations"]),
        "escalation": (figures["escalations"], figures["ai_conversations"]),
        "automation": (figures["ai_resolutions"], figures["conversations"]),
    }
    for ratio, (k, n) in bounds.items():
        low, high = wilson(k, n) if n else (None, None)
        for bound, want in (("lower", low), ("upper", high)):
            key = (f"support_{ratio}_ratio_{bound}", labels)
            if want is None:
                assert key not in samples, key
            else:
                assert samples[key] == pytest.approx(want, rel=1e-12, abs=1e-15), key
                compared += 1
    return compared


def check_program(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    expected: dict[tuple[str, str], dict[str, Fraction]],
) -> None:
    """The programme: value from sums, cost = AI cost + fixed cost; net value and payback
    (§14), the vendor's bill (§13)."""
    for window in WINDOWS:
        web, wa = expected[("web", window)], expected.get(("whatsapp", window), {})
        value = sum(f.get("cost_avoided", 0) + f.get("ai_revenue", 0) for f in (web, wa))
        assert samples[("support_program_value", (("window", window),))] == float(value)
        ai_cost = web["ai_cost"] + wa.get("ai_cost", 0)
        cost = samples[("support_program_cost", (("window", window),))]
        fixed = samples[("support_fixed_cost", (("window", window),))]
        assert cost == pytest.approx(float(ai_cost) + fixed, rel=1e-12)
        # §14: net value = programme value - programme cost; §13 for the programme
        net = samples[("support_program_net_value", (("window", window),))]
        assert net == pytest.approx(float(value) - float(ai_cost) - fixed, rel=1e-12, abs=1e-9)
        billed = sum(f.get("ai_resolutions", 0) for f in (web, wa))
        bill = samples[("support_program_vendor_bill", (("window", window),))]
        assert bill == float(billed * VENDOR_PRICE)
    # §14: the time left to payback at the last 30 days' pace, from the exported net values
    net_all = samples[("support_program_net_value", (("window", "all"),))]
    pace = samples[("support_program_net_value", (("window", "30d"),))] / 2_592_000
    remaining = samples.get(("support_payback_remaining_seconds", ()))
    if net_all >= 0:
        assert remaining == 0
    elif pace > 0:
        assert remaining == pytest.approx(-net_all / pace, rel=1e-12)
    else:
        assert remaining is None


def promql_of_rules() -> list[tuple[str, str]]:
    document = yaml.safe_load((ROOT / "deploy/prometheus/rules/roi.yml").read_text())
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for group in document["groups"]
        for rule in group["rules"]
    ]


def promql_of_dashboards() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace('=~"$channel"', '=~"web|whatsapp"')
                expr = expr.replace("$channel", "web").replace("$window", "24h")
                found.append((f"{path.stem}: {panel['title']}", expr))
    return found


SERIES = re.compile(r"\b(up|[a-z_]*:?support_[a-z0-9_:]+)(\{[^}]*\})?")


def test_every_dashboard_and_rule_expression_parses_and_returns_data(
    observed: Observed,
) -> None:
    wait_for(
        "Prometheus scraped the figures",
        lambda: prometheus_api(
            observed.prometheus, "query", query='support_conversations{channel="web",window="all"}'
        )["result"],
    )
    time.sleep(6)  # rate()/increase() need a few 1 s scrapes; recording rules a few evaluations
    alerts = {name for name, _ in promql_of_rules() if name[0].isupper()}
    empty = []
    for name, expr in promql_of_dashboards() + promql_of_rules():
        result = prometheus_api(observed.prometheus, "query", query=expr)["result"]
        if name in alerts:
            # an alert's expression returns nothing while all is well: every series it
            # reads must exist
            for match in SERIES.finditer(expr):
                selector = match.group(0)
                if not prometheus_api(observed.prometheus, "query", query=selector)["result"]:
                    empty.append((name, selector))
        elif not result:
            empty.append((name, expr))
    assert not empty


def board_panels(board: str) -> list[dict[str, Any]]:
    document = json.loads((ROOT / "grafana/dashboards" / board).read_text())
    return [p for p in document["panels"] if p["type"] in ("table", "stat")]


def test_grafana_shows_one_row_per_channel_and_one_value_per_stat(observed: Observed) -> None:
    """The table and stat panels as Grafana's own code computes them from the real
    Prometheus (tests/e2e/grafana.py): every cell and every stat equals the exporter's
    figure, coloured by the panel's thresholds."""
    samples = scrape(observed.exporter)

    def figure(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    columns = {
        "Conversations": "support_conversations",
        "Resolution rate": "support_resolution_ratio",
        "Escalation rate": "support_escalation_ratio",
        "Cost per resolution": "support_cost_per_resolution",
        "Contribution ROI": "support_channel_roi_ratio",
    }
    painted = {
        "Resolution rate": RESOLUTION,
        "Escalation rate": ESCALATION,
        "Contribution ROI": ROI,
    }
    expected = {
        channel: {
            column: figure(name, channel=channel, window="24h") for column, name in columns.items()
        }
        for channel in ("web", "whatsapp")
    }
    [channels] = board_panels("roi-overview.json")[-1:]
    assert channels["title"] == "Channels"
    every = {"window": "24h", "channel": "(web|whatsapp)"}  # "All" of a multi-value variable

    def tables() -> list[dict[str, Any]] | None:
        drawn = grafana.shown(observed.prometheus, channels, every)["tables"]
        cells = [c for table in drawn for row in table["rows"] for c in row]
        complete = cells and all(c["text"] for c in cells) and len(cells) >= 12
        return drawn if complete else None  # until Prometheus scraped and the rules ran

    [drawn] = wait_for("the channels table complete", tables, seconds=30)  # one table
    print("\nChannels (24h), as @grafana/data computed it:\n" + grafana.text_table(drawn))
    assert drawn["columns"] == ["Channel", *columns]
    rows = {
        row[0]["text"]: dict(zip(drawn["columns"][1:], row[1:], strict=True))
        for row in drawn["rows"]
    }
    assert set(rows) == {"web", "whatsapp"}  # one row per channel, not one per query
    for channel, cells in rows.items():
        for column, cell in cells.items():
            assert cell["numeric"] == expected[channel][column], (channel, column)
            scale = painted.get(column)
            assert cell["color"] == (scale.colour(cell["numeric"]) if scale else None)
        assert cells["Cost per resolution"]["text"].startswith("$")  # deploy/costs.toml: USD
        assert cells["Resolution rate"]["text"].endswith("%")

    web = {"channel": "web", "window": "24h"}
    stats = {
        ("roi-overview.json", "Programme ROI (fully loaded)"): (
            figure("support_program_roi_ratio", window="24h"),
            ROI,
        ),
        ("roi-overview.json", "Payback: net position since go-live"): (
            figure("support_program_net_value", window="all"),
            SIGN,
        ),
        ("roi-overview.json", "Programme cost per resolution"): (
            figure("support_program_cost_per_resolution", window="24h"),
            NEUTRAL,
        ),
        ("roi-overview.json", "Automation rate"): (
            figure("support_program_automation_ratio", window="24h"),
            AUTOMATION,
        ),
        ("roi-channel.json", "Contribution ROI"): (
            figure("support_channel_roi_ratio", **web),
            ROI,
        ),
        ("roi-channel.json", "Cost per resolution"): (
            figure("support_cost_per_resolution", **web),
            NEUTRAL,
        ),
        ("roi-channel.json", "Resolution rate"): (
            figure("support_resolution_ratio", **web),
            RESOLUTION,
        ),
        ("roi-channel.json", "Escalation rate"): (
            figure("support_escalation_ratio", **web),
            ESCALATION,
        ),
        ("roi-pipeline.json", "Workers up"): (1, AT_LEAST_ONE),
        ("roi-pipeline.json", "Exporters up"): (1, AT_LEAST_ONE),
        ("roi-pipeline.json", "State store reachable"): (1, AT_LEAST_ONE),
        ("roi-pipeline.json", "Channel topics"): (2, NEUTRAL),
    }
    panels = [
        (board, panel)
        for board in ("roi-overview.json", "roi-channel.json", "roi-pipeline.json")
        for panel in board_panels(board)
        if panel["type"] == "stat"
    ]
    drawn_stats = grafana.shown_all(
        observed.prometheus, [panel for _, panel in panels], {"window": "24h", "channel": "web"}
    )
    seen = set()
    for (board, panel), drawn_stat in zip(panels, drawn_stats, strict=True):
        value, scale = stats[(board, panel["title"])]
        [drawn_value] = drawn_stat["values"]  # one value per stat
        if board == "roi-overview.json" and panel["title"] != "Automation rate":
            # the fixed cost accrues by the second: seconds after the scrape, it is more
            assert drawn_value["numeric"] == pytest.approx(value, rel=1e-5), panel["title"]
        else:
            assert drawn_value["numeric"] == value, panel["title"]
        assert drawn_value["color"] == scale.colour(value), panel["title"]
        seen.add((board, panel["title"]))
    assert seen == set(stats)


def alert_states(base: str, name: str) -> set[tuple[str, str]]:
    alerts = prometheus_api(base, "alerts")["alerts"]
    return {
        (alert["labels"].get("channel", ""), alert["state"])
        for alert in alerts
        if alert["labels"]["alertname"] == name
    }


def test_the_ai_stopping_on_one_channel_makes_the_resolution_alert_pending_then_firing(
    observed: Observed,
) -> None:
    drop = "SupportChannelResolutionRateDrop"
    assert alert_states(observed.prometheus, drop) == set()  # healthy: no alert
    asyncio.run(publish(observed.deployment, degraded(observed.now)))
    # 1h: 90 AI conversations, 24 resolved (26.7 %, the upper bound of its 95 % Wilson
    # interval 36.62 %: tests/unit/test_figures.py's textbook form); 7d: 290, 224 (77.2 %,
    # half is 38.6 %)
    pending = wait_for(
        "the alert pending",
        lambda: ("web", "pending") in alert_states(observed.prometheus, drop),
        seconds=60,
    )
    assert pending
    states = wait_for(
        "the alert firing",
        lambda: (s := alert_states(observed.prometheus, drop)) and ("web", "firing") in s and s,
        seconds=60,
    )
    assert states == {("web", "firing")}  # whatsapp is fine
    [alert] = [
        a
        for a in prometheus_api(observed.prometheus, "alerts")["alerts"]
        if a["labels"]["alertname"] == drop
    ]
    # the upper bound of 24 / 90 (textbook form, as in tests/unit/test_figures.py)
    assert float(alert["value"]) == pytest.approx(0.3661984378810168, rel=1e-12)
    assert alert["labels"]["severity"] == "critical"
    # the runbook is this exporter's (prometheus.sh renders the rules for its port)
    assert alert["annotations"]["runbook_url"] == (
        f"http://127.0.0.1:{observed.exporter.port}/runbooks#supportchannelresolutionratedrop"
    )
    # Prometheus sends it to Alertmanager, which notifies the webhook through the critical route
    notified = wait_for(
        "the webhook notified",
        lambda: ("SupportChannelResolutionRateDrop", "critical") in observed.webhook.alert_names(),
        seconds=60,
    )
    assert notified
    [notification] = [
        n
        for n in observed.webhook.received
        if any(a["labels"]["alertname"] == drop for a in n["alerts"])
    ][:1]
    print("\nAlertmanager's webhook got:\n" + json.dumps(notification, indent=2))
    [sent] = [a for a in notification["alerts"] if a["labels"]["alertname"] == drop]
    assert (notification["status"], sent["status"], sent["labels"]["channel"]) == (
        "firing",
        "firing",
        "web",
    )
    assert sent["annotations"]["runbook_url"] == alert["annotations"]["runbook_url"]
    # its links lead back to where it came from, not to a host name only this machine knows
    assert sent["generatorURL"].startswith(f"{observed.prometheus}/graph?")
    assert notification["externalURL"].startswith("http://127.0.0.1:")
    assert (
        sent["annotations"]["summary"]
        == "web: AI resolution rate fell to at most 36.62% in the last hour"
    )

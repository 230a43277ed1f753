"""The rules and the Alertmanager configuration, checked by the real tools: promtool (check and
unit tests) and a real Alertmanager (Debian's) routing alerts to a webhook, with inhibition."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.alertmanager import RENDER, Webhook, render, run, running_alertmanager, tool

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"


def test_promtool_accepts_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 34 rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
    assert tests
    result = run(tool("promtool"), "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rendered_configuration_is_valid_and_keeps_the_url_verbatim(tmp_path: Path) -> None:
    url = "https://hooks.example.com/services/T0/B0/x?a=1&b=\\2"
    config = render(tmp_path, url)
    assert config.read_text().count(f"url: '{url}'") == 2
    assert oct(config.stat().st_mode & 0o777) == "0o600"  # it may hold a token
    result = run(tool("amtool"), "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "@ALERT_WEBHOOK_URL@" not in config.read_text()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=SupportWorkerDown"], "critical"),
        (["severity=warning", "alertname=SupportDeadLetters"], "warning"),
        (["severity=critical", "alertname=SupportConsumerStalled"], "critical"),
        (["severity=warning", "alertname=SupportStateStoreMemoryHigh"], "warning"),
        (["severity=warning", "alertname=SupportDeadLettersUndeliverable"], "warning"),
        (["alertname=Unlabelled"], "warning"),
    ],
)
def test_routing_by_severity(tmp_path: Path, labels: list[str], receiver: str) -> None:
    config = render(tmp_path, "http://127.0.0.1:9/hook")
    result = run(tool("amtool"), "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "set ALERT_WEBHOOK_URL"),
        ("ftp://x", "must start with http:// or https://"),
        ("http://x/'", "must not contain a quote"),
    ],
)
def test_render_refuses_a_missing_or_bad_url(tmp_path: Path, url: str, message: str) -> None:
    result = run(
        "sh", str(RENDER), str(tmp_path / "a.yml"), env={**os.environ, "ALERT_WEBHOOK_URL": url}
    )
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Webhook]]:
    with running_alertmanager(tmp_path, quick=True) as running:
        yield running


def post_alerts(base: str, *alerts: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": {"summary": labels["alertname"]},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{base}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_alertmanager_notifies_by_severity_and_inhibits_business_alerts_while_the_pipeline_is_down(
    alertmanager: tuple[str, Webhook],
) -> None:
    base, webhook = alertmanager
    post_alerts(
        base,
        {
            "alertname": "SupportExporterDown",
            "severity": "critical",
            "component": "pipeline",
            "job": "roi-exporter",
        },
        # business alerts while the exporter is down: held back
        {
            "alertname": "SupportProgrammeRoiBelowTarget",
            "severity": "warning",
            "component": "business",
            "window": "24h",
        },
        # a channel's critical alert covers that channel's warning, not another channel's
        {
            "alertname": "SupportChannelSilent",
            "severity": "critical",
            "component": "pipeline",
            "channel": "web",
        },
        {
            "alertname": "SupportDeadLetters",
            "severity": "warning",
            "component": "pipeline",
            "channel": "web",
            "reason": "invalid_json",
        },
        {
            "alertname": "SupportDeadLetters",
            "severity": "warning",
            "component": "pipeline",
            "channel": "slack",
            "reason": "invalid_json",
        },
    )
    expected = {
        ("SupportExporterDown", "critical"),
        ("SupportChannelSilent", "critical"),
        ("SupportDeadLetters", "warning"),
    }
    deadline = time.monotonic() + 30  # group_wait: 1 s here (quick)
    while webhook.alert_names() != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # nothing held back arrives after all
    assert webhook.alert_names() == expected
    dead_letters = [
        alert["labels"]["channel"]
        for notification in webhook.received
        for alert in notification["alerts"]
        if alert["labels"]["alertname"] == "SupportDeadLetters"
    ]
    assert dead_letters == ["slack"]


STALLED_WEB = {
    "alertname": "SupportConsumerStalled",
    "severity": "critical",
    "component": "pipeline",
    "topic": "support.events.web",
    "partition": "0",
}


def lag_growing(topic: str) -> dict[str, str]:
    return {
        "alertname": "SupportConsumerLagGrowing",
        "severity": "warning",
        "component": "pipeline",
        "topic": topic,
    }


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        # a worker down explains a stalled partition: only the worker pages
        (
            [
                {
                    "alertname": "SupportWorkerDown",
                    "severity": "critical",
                    "component": "pipeline",
                    "job": "roi-worker",
                    "instance": "w:1",
                },
                STALLED_WEB,
            ],
            {("SupportWorkerDown", "critical")},
        ),
        # a stalled partition covers its own topic's growing backlog, not another topic's
        (
            [STALLED_WEB, lag_growing("support.events.web"), lag_growing("support.events.slack")],
            {("SupportConsumerStalled", "critical"), ("SupportConsumerLagGrowing", "warning")},
        ),
    ],
    ids=["worker-down-covers-stalled", "stalled-covers-its-topic-lag"],
)
def test_alertmanager_inhibits_what_a_stalled_partition_or_a_dead_worker_explains(
    alertmanager: tuple[str, Webhook],
    alerts: list[dict[str, str]],
    expected: set[tuple[str, str]],
) -> None:
    base, webhook = alertmanager
    post_alerts(base, *alerts)
    deadline = time.monotonic() + 30  # group_wait: 1 s here (quick)
    while webhook.alert_names() != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # nothing held back arrives after all
    assert webhook.alert_names() == expected
    topics = {
        alert["labels"].get("topic")
        for notification in webhook.received
        for alert in notification["alerts"]
        if alert["labels"]["alertname"] == "SupportConsumerLagGrowing"
    }
    assert topics <= {"support.events.slack"}

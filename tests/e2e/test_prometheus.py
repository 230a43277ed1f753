"""The real Prometheus of the local stack answers queries through its HTTP API."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.promapi import prometheus_api

pytestmark = pytest.mark.e2e


def query(base: str, expression: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = prometheus_api(base, "query", query=expression)["result"]
    return result


def test_prometheus_evaluates_promql(prometheus: str) -> None:
    [sample] = query(prometheus, "vector(2) * 21")
    assert sample["value"][1] == "42"  # type: ignore[index]


def scrape_jobs(base: str) -> set[str]:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=10) as response:
        targets = json.load(response)["data"]["activeTargets"]
    return {target["labels"]["job"] for target in targets}


def test_prometheus_has_the_project_scrape_jobs(prometheus: str) -> None:
    deadline = time.monotonic() + 30  # targets are discovered shortly after start
    while not (jobs := scrape_jobs(prometheus)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert jobs == {"roi-exporter", "roi-worker", "prometheus"}


def test_prometheus_loaded_the_project_rules(prometheus: str) -> None:
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    names = {group["name"]: len(group["rules"]) for group in groups}
    assert names == {"roi-recording": 19, "roi-alerts": 15}, names
    # the stack runs the committed rules: every `for` as in thresholds.toml
    alerts = {
        rule["name"]: rule["duration"]
        for group in groups
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    assert alerts["SupportChannelResolutionRateDrop"] == 900

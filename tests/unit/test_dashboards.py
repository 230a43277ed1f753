"""The Grafana dashboards are generated as code: committed JSON equals a regeneration, every
panel has a description and a unit, and every query uses the provisioned datasource."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from roi_metrics.codegen.dashboards import DASHBOARDS, DEFAULT_DIR, expressions, main, render

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((DEFAULT_DIR / name).read_text())
    return document


def test_regeneration_changes_nothing() -> None:
    assert main(["--check"]) == 0
    for name in DASHBOARDS:
        assert (DEFAULT_DIR / name).read_text() == render(name)


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    titles = {load(name)["title"]: load(name)["uid"] for name in DASHBOARDS}
    assert titles == {
        "AI support ROI": "roi-overview",
        "Channel detail": "roi-channel",
        "Pipeline health": "roi-pipeline",
    }


def test_every_panel_has_a_description_a_unit_and_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for name in DASHBOARDS:
        for panel in load(name)["panels"]:  # type: ignore[attr-defined]
            if panel["type"] == "row":
                continue
            where = (name, panel["title"])
            assert panel["description"], where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert panel["targets"] and all(target["expr"] for target in panel["targets"]), where


def test_the_roi_dashboard_has_the_headline_panels_and_a_channel_variable() -> None:
    overview = load("roi-overview.json")
    titles = {panel["title"] for panel in overview["panels"]}  # type: ignore[attr-defined]
    assert {
        "Programme ROI (fully loaded)",
        "Payback: net position since go-live",
        "Cost per resolution",
        "Value vs cost",
        "Resolution rate",
        "Escalation rate",
        "Automation rate",
        "CSAT: AI vs human",
        "Channels",
    } <= titles
    variables = {v["name"]: v for v in overview["templating"]["list"]}  # type: ignore[index]
    assert variables["channel"]["query"] == "label_values(support_conversations, channel)"
    assert variables["channel"]["includeAll"] is True
    assert any("$channel" in expr for expr in expressions(overview))


def test_the_pipeline_dashboard_shows_throughput_lag_dead_letters_and_latency() -> None:
    text = " ".join(expressions(load("roi-pipeline.json")))
    for metric in (
        "support_events",
        "support_consumer_lag",
        "support_applied_offset",
        "support_dead_letters",
        "support_dead_letters_undeliverable_total",
        "support_batch_apply_seconds_bucket",
        "support_state_store_memory_used_bytes",
        "support_state_store_memory_max_bytes",
    ):
        assert metric in text, metric


def test_the_pipeline_dashboard_has_progress_undeliverable_and_redis_memory_panels() -> None:
    panels = {panel["title"]: panel for panel in load("roi-pipeline.json")["panels"]}  # type: ignore[attr-defined]
    units = {
        "Consumer progress": "ops",
        "Undeliverable dead letters (10 min)": "short",
        "Redis memory": "bytes",
    }
    for title, unit in units.items():
        assert panels[title]["fieldConfig"]["defaults"]["unit"] == unit, title
    # a Redis without maxmemory still draws (max 0): no query filters the limit away
    memory = [target["expr"] for target in panels["Redis memory"]["targets"]]
    assert memory == [
        "support_state_store_memory_used_bytes:max",
        "support_state_store_memory_max_bytes:max",
    ]


def test_the_provider_loads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/roi-metrics.yml").read_text()
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in mounts

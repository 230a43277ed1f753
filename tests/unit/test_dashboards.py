"""The Grafana dashboards are generated as code: committed JSON equals a regeneration, every
panel has a description, a unit and thresholds of its own, every query goes through the
datasource variable, money is in the cost card's currency, alerts are annotations and the
boards link to each other."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml
from roi_metrics.codegen.dashboards import DASHBOARDS, DEFAULT_DIR, expressions, main, render
from roi_metrics.codegen.panels import money_unit

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


def test_every_panel_has_a_description_a_unit_thresholds_and_the_datasource_variable() -> None:
    for name in DASHBOARDS:
        board = load(name)
        variables = {v["name"]: v for v in board["templating"]["list"]}  # type: ignore[index]
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        for panel in board["panels"]:  # type: ignore[attr-defined]
            if panel["type"] == "row":
                continue
            where = (name, panel["title"])
            assert panel["description"], where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"] and all(target["expr"] for target in panel["targets"]), where
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            # never Grafana's default (green, then red from 80)
            assert steps != [{"color": "green", "value": None}, {"color": "red", "value": 80}]


def thresholds(board: str, title: str) -> list[tuple[float | None, str]]:
    panels = {panel["title"]: panel for panel in load(board)["panels"]}  # type: ignore[attr-defined]
    steps = panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["value"], step["color"]) for step in steps]


def test_thresholds_read_at_a_glance() -> None:
    target = tomllib.loads((ROOT / "deploy/costs.toml").read_text()).get("target_roi", 1.0)
    roi = [(None, "red"), (0, "yellow"), (target, "green")]
    assert thresholds("roi-overview.json", "Programme ROI (fully loaded)") == roi
    assert thresholds("roi-channel.json", "Contribution ROI") == roi
    assert thresholds("roi-overview.json", "Payback: net position since go-live") == [
        (None, "red"),
        (0, "green"),
    ]
    assert thresholds("roi-pipeline.json", "Workers up") == [(None, "red"), (1, "green")]
    assert thresholds("roi-pipeline.json", "Dead letters (5 min)") == [(None, "green"), (1, "red")]
    assert thresholds("roi-pipeline.json", "Consumer lag")[0] == (None, "green")
    silence = 900  # thresholds.toml: SupportChannelSilent.silence_seconds
    assert thresholds("roi-pipeline.json", "Time since last event") == [
        (None, "green"),
        (silence / 2, "yellow"),
        (silence, "red"),
    ]


def test_money_is_in_the_cost_cards_currency_and_ratios_in_percent() -> None:
    panels = {panel["title"]: panel for panel in load("roi-overview.json")["panels"]}  # type: ignore[attr-defined]
    assert panels["Payback: net position since go-live"]["fieldConfig"]["defaults"]["unit"] == (
        "currencyUSD"  # deploy/costs.toml: currency = "USD"
    )
    assert panels["Resolution rate"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert money_unit("EUR") == "currencyEUR" and money_unit("CHF") == "currencyCHF"
    assert money_unit("MXN") == "suffix: MXN"  # no Grafana unit: the code after the number


def test_alerts_are_annotations_and_the_boards_link_to_each_other() -> None:
    for name in DASHBOARDS:
        board = load(name)
        [alerts] = [a for a in board["annotations"]["list"] if a["name"] == "Alerts"]  # type: ignore[index]
        assert alerts["expr"] == 'ALERTS{alertstate="firing", alertname=~"Support.+"}'
        assert alerts["datasource"]["uid"] == "${datasource}"
        [link] = board["links"]  # type: ignore[misc]
        assert (link["type"], link["tags"], link["keepTime"]) == (
            "dashboards",
            ["roi-metrics"],
            True,
        )
        assert "roi-metrics" in board["tags"]  # type: ignore[operator]


def test_every_alert_has_a_panel_linking_to_its_runbook_as_the_rules_do() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/roi.yml").read_text())
    runbooks = {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    linked: dict[str, set[str]] = {}
    for name in DASHBOARDS:
        for panel in load(name)["panels"]:  # type: ignore[attr-defined]
            for link in panel.get("links", []):
                alert = link["title"].removeprefix("Runbook: ")
                assert link["url"] == runbooks[alert], (panel["title"], alert)
                assert link["targetBlank"] is True
                linked.setdefault(alert, set()).add(panel["title"])
    assert set(linked) == set(runbooks)  # every alert, from the panel that shows its figure
    assert linked["SupportWorkerDown"] == {"Workers up"}
    assert linked["SupportChannelResolutionRateDrop"] == {
        "Resolution rate",
        "Resolution rate: last hour vs 7 days",
    }


def test_the_channels_table_colours_rates_and_roi_by_their_scales() -> None:
    [table] = [p for p in load("roi-overview.json")["panels"] if p["type"] == "table"]  # type: ignore[attr-defined]
    overrides = {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
        for o in table["fieldConfig"]["overrides"]
    }
    roi = overrides["Contribution ROI"]
    assert roi["custom.cellOptions"] == {"type": "color-text"}
    assert [(s["value"], s["color"]) for s in roi["thresholds"]["steps"]] == [
        (None, "red"),
        (0, "yellow"),
        (1.0, "green"),  # deploy/costs.toml: target_roi
    ]
    assert overrides["Escalation rate"]["thresholds"]["steps"][0]["color"] == "green"
    assert "custom.cellOptions" not in overrides["Cost per resolution"]  # no good or bad


def test_each_stat_shows_one_figure() -> None:
    for name in DASHBOARDS:
        for panel in load(name)["panels"]:  # type: ignore[attr-defined]
            if panel["type"] == "stat":
                assert len(panel["targets"]) == 1, (name, panel["title"])


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

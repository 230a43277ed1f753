"""The alert rules are generated from thresholds.toml, completely and with checked input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from roi_metrics.codegen.rules import (
    DEFAULT_RULES,
    DEFAULT_THRESHOLDS,
    ThresholdsError,
    load_thresholds,
    main,
    render,
    rules,
)
from roi_metrics.export import runbooks

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_ALERTS = {
    "SupportProgrammeRoiBelowTarget",
    "SupportChannelResolutionRateDrop",
    "SupportChannelBelowRamp",
    "SupportChannelEscalationRateSpike",
    "SupportChannelCostPerResolutionSpike",
    "SupportChannelSilent",
    "SupportConsumerLagGrowing",
    "SupportConsumerStalled",
    "SupportCustomerFactsBehind",
    "SupportDeadLetters",
    "SupportStateStoreDown",
    "SupportStateStoreMemoryHigh",
    "SupportDeadLettersUndeliverable",
    "SupportExporterDown",
    "SupportWorkerDown",
}


def alert_rules(for_scale: float = 1.0) -> dict[str, dict[str, object]]:
    document = rules(load_thresholds(DEFAULT_THRESHOLDS), for_scale)
    return {
        rule["alert"]: rule
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_the_committed_rules_are_what_the_thresholds_generate() -> None:
    assert main(["--check"]) == 0
    assert DEFAULT_RULES.read_text() == render(load_thresholds(DEFAULT_THRESHOLDS))


def test_every_alert_has_for_severity_summary_description_and_a_runbook_section() -> None:
    """Each runbook_url is absolute and lands on an anchor of the page the exporter serves."""
    page_html = runbooks.render((ROOT / "docs" / "runbooks.md").read_text())
    anchors = set(re.findall(r"<h2 id='([^']+)'>", page_html))
    found = alert_rules()
    assert set(found) == REQUIRED_ALERTS
    for name, rule in found.items():
        assert rule["for"], name
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in ("critical", "warning"), name
        assert labels["component"] in ("business", "pipeline"), name
        assert annotations["summary"] and annotations["description"], name
        page, anchor = str(annotations["runbook_url"]).split("#")
        assert page == "http://127.0.0.1:19464/runbooks" and anchor in anchors, name


def test_thresholds_reach_the_expressions() -> None:
    found = alert_rules()
    drop = found["SupportChannelResolutionRateDrop"]["expr"]
    assert " 0.5 * " in str(drop) and ">= 20" in str(drop)
    assert "> 900" in str(found["SupportChannelSilent"]["expr"])
    assert found["SupportChannelResolutionRateDrop"]["for"] == "15m"
    assert found["SupportProgrammeRoiBelowTarget"]["for"] == "1h"


def test_the_new_pipeline_alerts_read_their_thresholds() -> None:
    found = alert_rules()
    stalled = str(found["SupportConsumerStalled"]["expr"])
    assert stalled.count("[600s]") == 4 and found["SupportConsumerStalled"]["for"] == "5m"
    assert "[600s] offset 600s" in stalled  # a range watched whole, not a cold start
    memory = str(found["SupportStateStoreMemoryHigh"]["expr"])
    assert memory.endswith("> 0.8")
    assert found["SupportDeadLettersUndeliverable"]["labels"] == {
        "severity": "warning",
        "component": "pipeline",
    }


def recording() -> dict[str, str]:
    document = rules(load_thresholds(DEFAULT_THRESHOLDS))
    return {rule["record"]: rule["expr"] for rule in document["groups"][0]["rules"]}


def test_the_stall_alert_reads_partitions_without_instance_through_ranges() -> None:
    """A partition moved to another worker is one series (no instance, no job) before
    changes() reads it; ranges, not instant values, so a restarting worker still fires."""
    expr = str(alert_rules()["SupportConsumerStalled"]["expr"])
    recorded = recording()
    for name in (
        "topic_partition:support_consumer_lag:max",
        "topic_partition:support_applied_offset:max",
    ):
        assert recorded[name].startswith("max without (instance, job) (support_"), name
        assert f"{name}[600s]" in expr and f"{name} " not in expr, name
    assert "changes(topic_partition:support_applied_offset:max[600s]) == 0" in expr
    assert "support_consumer_lag{" not in expr and "support_applied_offset{" not in expr
    # the topic sum adds each partition once, even while two workers report it
    assert recorded["topic:support_consumer_lag:sum"] == (
        "sum by (topic) (topic_partition:support_consumer_lag:max)"
    )


def test_the_memory_alert_never_divides_by_a_zero_limit() -> None:
    expr = str(alert_rules()["SupportStateStoreMemoryHigh"]["expr"])
    assert "/ (support_state_store_memory_max_bytes:max > 0)" in expr


def test_recording_rules_are_recorded_before_they_are_read() -> None:
    """Rules of a group run in order: a recording rule read by another of the same group
    must come first (else it reads the previous evaluation)."""
    names = list(recording())
    for position, (name, expr) in enumerate(recording().items()):
        for earlier in names[position:]:
            assert earlier not in expr or earlier == name, (name, earlier)


def test_for_scale_shortens_every_for_and_nothing_else() -> None:
    normal, fast = alert_rules(), alert_rules(for_scale=0.01)
    assert fast["SupportChannelResolutionRateDrop"]["for"] == "9s"  # 900 s x 0.01
    assert fast["SupportProgrammeRoiBelowTarget"]["for"] == "36s"
    assert fast["SupportStateStoreDown"]["for"] == "1s"  # 1.2 s rounds to 1, never 0
    for name in normal:
        assert fast[name]["expr"] == normal[name]["expr"]


def test_rules_are_valid_yaml_with_one_recording_and_one_alert_group() -> None:
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    assert [group["name"] for group in document["groups"]] == ["roi-recording", "roi-alerts"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("drop_ratio = 0.5", "drop_ratio = -1"),
            "SupportChannelResolutionRateDrop.drop_ratio: must be a number >= 0",
        ),
        (
            ('for = "15m"', 'for = "soon"'),
            "SupportChannelResolutionRateDrop.for: 'soon' is not a duration",
        ),
        (
            ('severity = "critical"', 'severity = "urgent"'),
            "SupportChannelResolutionRateDrop.severity: must be one of",
        ),
        (
            ("min_ai_conversations_1h = 20", "min_ai_conversations_1h = 0"),
            "min_ai_conversations_1h: must be a whole number >= 1",
        ),
        (
            ("[alerts.SupportWorkerDown]", "[alerts.SupportWorkerGone]"),
            "alerts.SupportWorkerGone: no such alert",
        ),
        (
            ("drop_ratio = 0.5", "drop_ratio = 0.5\ndrop_ratoi = 1"),
            "SupportChannelResolutionRateDrop.drop_ratoi: unknown key",
        ),
        (("runbook_url =", "runbook ="), "runbook: unknown key"),
        (
            ('runbook_url = "http://127.0.0.1:19464/runbooks"', 'runbook_url = "docs/runbooks.md"'),
            "runbook_url: must be an absolute http(s) URL",
        ),
        (
            ('runbook_url = "http://127.0.0.1:19464/runbooks"', 'runbook_url = "file:///etc/x"'),
            "runbook_url: must be an absolute http(s) URL",
        ),
        (
            ("min_ai_conversations_1h = 20", "min_ai_conversations_1h = true"),
            "min_ai_conversations_1h: must be a whole number >= 1",  # not `>= True` in PromQL
        ),
        (
            ('runbook_url = "http://127.0.0.1:19464/runbooks"', 'runbook_url = "http://[::1/x"'),
            "runbook_url: must be an absolute http(s) URL",
        ),
        (
            ('runbook_url = "http://127.0.0.1:19464/runbooks"', 'runbook_url = "http://h:99999/"'),
            "runbook_url: must be an absolute http(s) URL",
        ),
        (
            ("no_progress_seconds = 600", "no_progress_seconds = 600.5"),
            "SupportConsumerStalled.no_progress_seconds: must be a whole number of seconds >= 60",
        ),
        (
            ("no_progress_seconds = 600", "no_progress_seconds = 30"),
            "SupportConsumerStalled.no_progress_seconds: must be a whole number of seconds >= 60",
        ),
        (
            ("max_ratio = 0.8", 'max_ratio = "80%"'),
            "SupportStateStoreMemoryHigh.max_ratio: must be a number >= 0",
        ),
    ],
)
def test_a_bad_thresholds_file_is_refused_with_file_field_and_problem(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = DEFAULT_THRESHOLDS.read_text()
    assert edit[0] in text
    path = tmp_path / "thresholds.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ThresholdsError) as error:
        load_thresholds(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_a_missing_alert_section_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_THRESHOLDS.read_text()
    path = tmp_path / "thresholds.toml"
    path.write_text(text.split("[alerts.SupportWorkerDown]")[0])
    with pytest.raises(ThresholdsError, match=r"alerts\.SupportWorkerDown: missing"):
        load_thresholds(path)


def test_the_cli_reports_a_bad_file_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text("min_ai_conversations_1h = [")
    assert main(["--thresholds", str(path), "--out", str(tmp_path / "out.yml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1


def test_a_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_bytes(b"\xff\xfe runbook_url")
    with pytest.raises(ThresholdsError, match=r": not UTF-8 text$"):
        load_thresholds(path)


def test_alerts_that_are_not_a_table_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text("min_ai_conversations_1h = 20\nalerts = 1\n")
    with pytest.raises(ThresholdsError, match=r": alerts: must be a table of \[alerts\.<name>\]"):
        load_thresholds(path)

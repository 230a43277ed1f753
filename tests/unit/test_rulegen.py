"""The alert rules are generated from thresholds.toml, completely and with checked input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from service.rulegen import (
    DEFAULT_RULES,
    DEFAULT_THRESHOLDS,
    ThresholdsError,
    load_thresholds,
    main,
    render,
    rules,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_ALERTS = {
    "SupportProgrammeRoiBelowTarget",
    "SupportChannelResolutionRateDrop",
    "SupportChannelEscalationRateSpike",
    "SupportChannelCostPerResolutionSpike",
    "SupportChannelSilent",
    "SupportConsumerLagGrowing",
    "SupportDeadLetters",
    "SupportStateStoreDown",
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
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {heading.lower() for heading in re.findall(r"^## (\S+)$", runbooks, re.MULTILINE)}
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
        assert page == "docs/runbooks.md" and anchor in anchors, name


def test_thresholds_reach_the_expressions() -> None:
    found = alert_rules()
    drop = found["SupportChannelResolutionRateDrop"]["expr"]
    assert " 0.5 * " in str(drop) and ">= 20" in str(drop)
    assert "> 900" in str(found["SupportChannelSilent"]["expr"])
    assert found["SupportChannelResolutionRateDrop"]["for"] == "15m"
    assert found["SupportProgrammeRoiBelowTarget"]["for"] == "1h"


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

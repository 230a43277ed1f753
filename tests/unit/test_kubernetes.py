"""The prometheus-operator objects (deploy/kubernetes/) come from the same source as the
Prometheus rules and pass prometheus-operator's CRD schemas, checked by the JSON schemas
@kubernetes-models/prometheus-operator generates from them (tests/node/crd.mjs, in Node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from roi_metrics.codegen.kubernetes import DEFAULT_DIR, main
from roi_metrics.codegen.rules import DEFAULT_RULES

from tests.nodejs import run_node

ROOT = Path(__file__).resolve().parents[2]


def objects(folder: Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    return [
        doc
        for name in ("prometheusrule.yaml", "servicemonitor.yaml")
        for doc in yaml.safe_load_all((folder / name).read_text())
    ]


def crd_errors(docs: list[dict[str, Any]]) -> list[str | None]:
    errors: list[str | None] = run_node("crd.mjs", docs, "@kubernetes-models")
    return errors


def test_the_committed_objects_are_current() -> None:
    assert main(["--check"]) == 0


def test_the_rule_holds_exactly_the_prometheus_rules() -> None:
    [rule, exporter, worker] = objects()
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(DEFAULT_RULES.read_text())["groups"]
    assert [exporter["kind"], worker["kind"]] == ["ServiceMonitor", "ServiceMonitor"]
    for monitor, job, component in (
        (exporter, "roi-exporter", "exporter"),
        (worker, "roi-worker", "worker"),
    ):
        assert (
            monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        )
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        assert {"action": "replace", "targetLabel": "job", "replacement": job} in endpoint[
            "relabelings"
        ]


def test_every_object_passes_the_crd_schemas() -> None:
    assert crd_errors(objects()) == [None, None, None]


def test_the_schemas_refuse_what_the_api_server_would() -> None:
    [rule, monitor, _] = objects()
    misspelt = json.loads(json.dumps(monitor))
    rule["spec"]["groups"][1]["rules"][0]["for"] = "15 minutes"
    monitor["spec"]["endpoints"][0]["interval"] = 15
    endpoint = misspelt["spec"]["endpoints"][0]
    endpoint["relabellings"] = endpoint.pop("relabelings")  # the schemas let this through
    [rule_error, monitor_error, misspelt_error] = crd_errors([rule, monitor, misspelt])
    assert rule_error is not None and "spec/groups/1/rules/0/for must match pattern" in rule_error
    assert monitor_error is not None and "spec/endpoints/0/interval must be string" in monitor_error
    assert misspelt_error is not None and "'\"relabellings\"' does not exist" in misspelt_error


def test_labels_and_namespace_reach_every_object(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    assert (
        main(
            [
                "--out",
                str(out),
                "--namespace",
                "observability",
                "--label",
                "release=kube-prometheus-stack",
            ]
        )
        == 0
    )
    docs = objects(out)
    for doc in docs:
        assert doc["metadata"]["namespace"] == "observability"
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "roi-metrics"
    assert crd_errors(docs) == [None, None, None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "release"], "'release': expected KEY=VALUE"),
        (["--label", "bad key=x"], "'bad key' is not a Kubernetes label key"),
        (["--label", "release=" + "x" * 64], "is not a Kubernetes label value"),
        (["--namespace", "Observability"], "is not a Kubernetes namespace"),
        (["--namespace", "observability\n"], "is not a Kubernetes namespace"),
        (["--label", "release\n=x"], "is not a Kubernetes label key"),
        (["--label", "release=x\n"], "is not a Kubernetes label value"),
    ],
)
def test_bad_options_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_a_bad_thresholds_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "thresholds.toml"
    text = (ROOT / "deploy/prometheus/thresholds.toml").read_text()
    bad.write_text(text.replace("http://127.0.0.1:19464/runbooks", "docs/runbooks.md"))
    assert main(["--thresholds", str(bad), "--out", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {bad}: runbook_url: must be an absolute http(s) URL")


def test_check_and_out_say_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prometheusrule.yaml").mkdir()  # unreadable as a file: stale, not a crash
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert "stale:" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["--out", str(tmp_path / "file")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'file'} is not a folder\n"

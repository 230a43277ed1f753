"""docker-compose.yml stays valid and consistent with the local stack."""

import re
import subprocess
import sys
from pathlib import Path

import yaml
from roi_metrics.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kafka_image_matches_the_pinned_broker_version() -> None:
    pom = (ROOT / "deploy/local/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>(.+)</kafka.version>", pom)
    assert version is not None
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"


def test_every_service_that_others_wait_for_has_a_healthcheck() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency


def test_mounted_files_exist_and_ports_bind_to_loopback() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_prometheus_scrapes_the_ports_the_services_serve_on() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.compose.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in prometheus["scrape_configs"]
    }
    env = COMPOSE["x-roi"]["environment"]
    assert targets["roi-worker"] == f"worker:{env['ROI_WORKER_PORT']}"
    assert targets["roi-exporter"] == f"exporter:{env['ROI_EXPORTER_PORT']}"
    assert env["ROI_WORKER_HOST"] == env["ROI_EXPORTER_HOST"] == "0.0.0.0"
    worker_check = " ".join(COMPOSE["services"]["worker"]["healthcheck"]["test"])
    assert f"localhost:{env['ROI_WORKER_PORT']}/readyz" in worker_check


def test_the_roi_services_run_commands_the_cli_has() -> None:
    for name in ("worker", "exporter", "simulator"):
        command = COMPOSE["services"][name]["command"]
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (name, result.output)
    bad = CliRunner().invoke(app, ["simulate", "--no-such-option", "--help"])
    assert bad.exit_code == 2  # an unknown option is caught even before --help

"""docker-compose.yml stays valid and consistent with the local stack."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from roi_metrics.cli.main import app
from roi_metrics.settings import Settings
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


def compose_implementation() -> list[str] | None:
    """A compose implementation's command: Docker's plugin, else Debian's docker-compose."""
    docker = shutil.which("docker")
    if docker:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [docker, "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


def test_a_compose_implementation_reads_the_file_as_the_user_runs_it() -> None:
    command = compose_implementation()
    if command is None:
        pytest.skip(
            "no compose implementation here "
            "(deploy/local/install.sh installs Debian's docker-compose)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAFANA_", "COMPOSE_"))}
    refused = subprocess.run(
        [*command, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD" in refused.stderr  # never Grafana's admin/admin
    env["GRAFANA_ADMIN_PASSWORD"] = "pw-from-the-environment"
    resolved = subprocess.run(
        [*command, "--profile", "demo", "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    services = yaml.safe_load(resolved.stdout)["services"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "pw-from-the-environment"
    assert services["simulator"]["profiles"] == ["demo"]
    assert services["worker"]["environment"]["ROI_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"


def test_the_simulator_runs_only_in_the_demo_profile() -> None:
    services = COMPOSE["services"]
    assert services["simulator"]["profiles"] == ["demo"]
    # once: a restart would publish its week of history again under new event ids
    assert services["simulator"]["restart"] == "no"
    assert [name for name, s in services.items() if "profiles" in s] == ["simulator"]


def test_kafka_and_redis_answer_on_the_host_where_the_cli_looks_by_default() -> None:
    services = COMPOSE["services"]
    settings = Settings()  # the defaults, with no ROI_ variable set
    kafka_port = settings.kafka_bootstrap_servers.rpartition(":")[2]
    redis_port = str(urlsplit(settings.redis_url.get_secret_value()).port)
    assert f"127.0.0.1:{kafka_port}:{kafka_port}" in services["kafka"]["ports"]
    assert (
        f"HOST://127.0.0.1:{kafka_port}"
        in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert f"127.0.0.1:{redis_port}:6379" in services["redis"]["ports"]
    exporter_port = str(settings.exporter_port)
    assert services["exporter"]["ports"] == [f"127.0.0.1:{exporter_port}:9464"]


def test_nothing_keeps_the_dashboards_down_and_nothing_can_reload_prometheus() -> None:
    services = COMPOSE["services"]
    assert "depends_on" not in services["grafana"]
    assert "depends_on" not in services["prometheus"]
    assert not any("lifecycle" in arg for arg in services["prometheus"]["command"])
    assert "admin-api" not in " ".join(services["prometheus"]["command"])


def test_state_lives_in_named_volumes_and_topics_are_never_created_on_first_use() -> None:
    services = COMPOSE["services"]
    mounts = {
        "kafka": "kafka-data:/var/lib/kafka/data",
        "redis": "redis-data:/data",
        "prometheus": "prometheus-data:/prometheus",
        "grafana": "grafana-data:/var/lib/grafana",
    }
    for name, mount in mounts.items():
        assert mount in services[name]["volumes"], name
        assert mount.split(":")[0] in COMPOSE["volumes"], name
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

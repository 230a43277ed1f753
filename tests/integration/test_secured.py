"""A secured stack, for real: Kafka with SASL_SSL, SCRAM-SHA-512 and client certificates
required (mTLS), Redis with TLS only and an ACL user, both started by deploy/local/secure.sh
with certificates openssl makes at test time. The worker, the exporter, `channel add`,
`publish`, `report` and `top` work through them; a wrong password, an unknown CA, a missing
client certificate and a plaintext client each get one line and the documented exit status
(1: cannot reach, 2: the fix is in the settings); no password appears in any output."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cloudevents import event
from tests.integration.harness import EXECUTABLE, ROOT, Deployment, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SCRIPT = ROOT / "deploy" / "local" / "secure.sh"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The secured Kafka and Redis, on ports and in a folder of their own; the client
    settings that reach them (secrets included). The local stack's Kafka jars are reused."""
    state = tmp_path_factory.mktemp("secure-state")
    main_state = Path(os.environ.get("ROI_STATE_DIR") or ROOT / ".state")
    [jars] = sorted((main_state / "kafka").glob("lib-*"))[-1:] or [None]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROI_", "KAFKA_", "REDIS_"))}
    env.update(ROI_STATE_DIR=str(state))
    for name in ("KAFKA", "KAFKA_BROKER", "KAFKA_CONTROLLER", "REDIS"):
        env[f"ROI_SECURE_{name}_PORT"] = str(free_port())
    if jars is not None:
        env["ROI_KAFKA_LIB_DIR"] = str(jars)
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True)
    try:
        printed = subprocess.run(
            [str(SCRIPT), "env"], env=env, check=True, capture_output=True, text=True
        ).stdout
        lines = (line.removeprefix("export ") for line in printed.splitlines())
        yield dict(line.split("=", 1) for line in lines)  # plain values: no quoting needed
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, capture_output=True)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing of this stack."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"), "-subj", "/CN=other"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder / "ca.pem"


def secrets_of(settings: dict[str, str]) -> list[str]:
    redis_password = settings["ROI_REDIS_URL"].split("//roi:", 1)[1].split("@", 1)[0]
    return [settings["ROI_KAFKA_SASL_PASSWORD"], redis_password]


def roi(
    settings: dict[str, str], *args: str, stdin: str = "", **env: str | None
) -> subprocess.CompletedProcess[str]:
    """The installed roi-metrics with these settings; `env` overrides (None removes)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROI_")}
    environment.update(settings, ROI_COST_CARD=str(ROOT / "deploy" / "costs.toml"))
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [str(EXECUTABLE), *args],
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_worker_exporter_publish_report_and_top_work_through_sasl_ssl_and_tls_redis(
    secured: dict[str, str], tmp_path: Path
) -> None:
    added = roi(secured, "channel", "add", "web", "--partitions", "2")
    assert added.returncode == 0, added.stderr
    deployment = Deployment(
        secured["ROI_KAFKA_BOOTSTRAP_SERVERS"], secured["ROI_REDIS_URL"], tmp_path
    )
    deployment.run = "secure"  # the default topic prefix, as `channel add` used
    overrides = {**secured, "ROI_TOPIC_PREFIX": "support.events.", "ROI_GROUP_ID": "roi-secure"}
    overrides["ROI_DEAD_LETTER_TOPIC"] = "support.deadletter"
    try:
        deployment.start_worker(env=overrides)
        now = time.time()
        events = [
            event("conversation.started", f"s{i}", f"c{i}", now - 60, "/web", handled_by="ai")
            for i in range(4)
        ]
        lines = "\n".join(json.dumps(e) for e in events)
        for mode in ("structured", "binary"):
            sent = roi(secured, "publish", "web", "-", "--mode", mode, stdin=lines)
            assert sent.returncode == 0, sent.stderr
        exporter = deployment.start_exporter(env=overrides)
        deadline = time.monotonic() + 60
        while True:
            reported = roi(secured, "report", "--json")
            assert reported.returncode == 0, reported.stderr
            web = json.loads(reported.stdout)["channels"].get("web")
            if web and web["all"]["counts"]["conversations"] == 4:  # each event once
                break
            assert time.monotonic() < deadline, reported.stdout
            time.sleep(0.5)
        assert exporter.labelled("support_conversations", channel="web", window="all") == 4
        top = roi(secured, "top", "--duration", "1", "--interval", "0.5", COLUMNS="160")
        assert top.returncode == 0, top.stderr
        assert "web" in top.stdout
        outputs = [added, sent, reported, top]
    finally:
        deployment.stop_all()
    said = "".join(o.stdout + o.stderr for o in outputs)
    said += "".join(w.log.read_text() for w in deployment.workers)
    assert "redis_url = rediss://roi:****@" in said  # the banner, masked
    for secret in secrets_of(secured):
        assert secret not in said


@dataclass(frozen=True)
class Refusal:
    command: list[str]
    overrides: dict[str, str | None]
    """OTHER: a CA that signed nothing here; WRONG: the Redis URL with a wrong password;
    PLAIN: the Redis URL without TLS; None: the variable unset."""
    status: int
    says: str


NO_CLIENT_CERTIFICATE: dict[str, str | None] = {
    "ROI_KAFKA_SSL_CERTFILE": None,
    "ROI_KAFKA_SSL_KEYFILE": None,
}
REFUSALS = {
    "kafka: wrong password": Refusal(
        ["channel", "add", "web"], {"ROI_KAFKA_SASL_PASSWORD": "wrong-password"}, 2,
        "refused the credentials"),
    "kafka: unknown CA": Refusal(
        ["channel", "add", "web"], {"ROI_KAFKA_SSL_CAFILE": "OTHER"}, 2,
        "has a certificate this client does not trust"),
    "kafka: no client certificate": Refusal(
        ["channel", "add", "web"], NO_CLIENT_CERTIFICATE, 1,
        "if the broker requires a client certificate"),
    "kafka: plaintext client": Refusal(
        ["channel", "add", "web"],
        {**NO_CLIENT_CERTIFICATE, "ROI_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
         "ROI_KAFKA_SSL_CAFILE": None}, 1,
        "if the broker expects TLS"),
    "kafka: a SASL mechanism it does not enable": Refusal(
        ["channel", "add", "web"], {"ROI_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}, 2,
        "does not take the SASL mechanism SCRAM-SHA-256"),
    "worker: wrong kafka password": Refusal(
        ["worker"], {"ROI_KAFKA_SASL_PASSWORD": "wrong-password"}, 2, "refused the credentials"),
    "redis: wrong password": Refusal(
        ["report"], {"ROI_REDIS_URL": "WRONG"}, 2, "Redis refused this client's credentials"),
    "redis: unknown CA": Refusal(
        ["report"], {"ROI_REDIS_SSL_CAFILE": "OTHER"}, 2,
        "Redis has a certificate this client does not trust"),
    "redis: plaintext client": Refusal(
        ["report"], {"ROI_REDIS_URL": "PLAIN", "ROI_REDIS_SSL_CAFILE": None}, 1,
        "if the server speaks TLS, use a rediss://"),
    "worker: wrong redis password": Refusal(
        ["worker"], {"ROI_REDIS_URL": "WRONG"}, 2, "Redis refused this client's credentials"),
    "exporter: wrong redis password": Refusal(
        ["exporter"], {"ROI_REDIS_URL": "WRONG"}, 2, "Redis refused this client's credentials"),
}  # fmt: skip


@pytest.mark.parametrize("what", REFUSALS)
def test_a_refused_client_gets_one_line_and_its_exit_status(
    secured: dict[str, str], other_ca: Path, what: str
) -> None:
    refusal = REFUSALS[what]
    url = secured["ROI_REDIS_URL"]
    meaning = {
        "OTHER": str(other_ca),
        "WRONG": url.replace(url.split("//roi:", 1)[1].split("@", 1)[0], "wrong-password"),
        "PLAIN": url.replace("rediss://", "redis://", 1),
    }
    env = {k: v if v is None else meaning.get(v, v) for k, v in refusal.overrides.items()}
    result = roi(secured, *refusal.command, ROI_WORKER_PORT=str(free_port()), **env)
    assert result.returncode == refusal.status, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert refusal.says in result.stderr
    for secret in [*secrets_of(secured), "wrong-password"]:
        assert secret not in result.stdout + result.stderr

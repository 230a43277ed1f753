"""Settings: defaults, validation with one clear line, secrets never shown (in the banner,
in messages, in anything the real commands print)."""

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr, ValidationError
from roi_metrics.cli.main import app
from roi_metrics.settings import Settings, mask_url, url_secrets
from roi_metrics.worker.app import _faust_app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = Path(sys.executable).parent / "roi-metrics"


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "REDIS_URL",
        "ROI_KAFKA_BOOTSTRAP_SERVERS",
        "ROI_REDIS_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:16379/0"
    assert settings.kafka_client_options() == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "PLAINTEXT",
    }


def test_the_unprefixed_variables_of_the_stack_scripts_are_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROI_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert Settings().kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_sasl_ssl_with_scram_and_a_ca_file(tmp_path: Path) -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="roi",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    options = settings.kafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "roi",
        "sasl_plain_password": "s3cret",
    }


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (
            {"kafka_ssl_cafile": "CA"},
            "ROI_KAFKA_SSL_\\* files need ROI_KAFKA_SECURITY_PROTOCOL SSL",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "CA"},
            "ROI_KAFKA_SSL_CERTFILE and ROI_KAFKA_SSL_KEYFILE go together",
        ),
        ({"redis_ssl_cafile": "CA"}, "ROI_REDIS_SSL_\\* files need a rediss:// ROI_REDIS_URL"),
        (
            {"redis_url": "rediss://h:6379/0", "redis_ssl_keyfile": "CA"},
            "ROI_REDIS_SSL_CERTFILE and ROI_REDIS_SSL_KEYFILE go together",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "MISSING"}, "not point to a file"),
    ],
)
def test_tls_files_are_refused_where_they_mean_nothing(
    tmp_path: Path, given: dict[str, str], refused: str
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    paths = {"CA": str(ca), "MISSING": str(tmp_path / "missing.pem")}
    with pytest.raises(ValidationError, match=refused):
        Settings(**{k: paths.get(v, v) for k, v in given.items()})  # type: ignore[arg-type]


def test_a_tls_file_that_holds_no_certificate_is_one_line_at_start(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    env = {"ROI_KAFKA_SECURITY_PROTOCOL": "SSL", "ROI_KAFKA_SSL_CAFILE": str(garbage)}
    result = CliRunner().invoke(app, ["report"], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ROI_KAFKA_SSL_CAFILE: not a usable certificate or key")
    assert result.stderr.count("\n") == 1
    env = {"ROI_REDIS_URL": "rediss://127.0.0.1:1/0", "ROI_REDIS_SSL_CAFILE": str(garbage)}
    result = CliRunner().invoke(app, ["report"], env=env)
    assert result.stderr.startswith("error: ROI_REDIS_SSL_CAFILE: not a usable certificate or key")


def test_an_encrypted_key_without_its_password_is_one_line_never_a_prompt(tmp_path: Path) -> None:
    """OpenSSL asks for a key's pass phrase on the terminal when given none: a service
    would hang there. The password is always given (empty when unset)."""
    key, cert = tmp_path / "client.key", tmp_path / "client.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "2", "-subj", "/CN=c",
         "-keyout", str(key), "-out", str(cert), "-passout", "pass:hunter2"],
        check=True, capture_output=True,
    )  # fmt: skip
    base = {"ROI_KAFKA_SECURITY_PROTOCOL": "SSL", "ROI_KAFKA_SSL_CERTFILE": str(cert)}
    base["ROI_KAFKA_SSL_KEYFILE"] = str(key)
    for password in (None, "wrong"):
        env = {**base, "ROI_KAFKA_SSL_KEY_PASSWORD": password} if password else base
        result = CliRunner().invoke(app, ["report"], env=env)
        assert result.exit_code == 2
        assert result.stderr.startswith(
            "error: ROI_KAFKA_SSL_CERTFILE, ROI_KAFKA_SSL_KEYFILE: not a usable"
        )
        assert "check ROI_KAFKA_SSL_KEY_PASSWORD" in result.stderr
        assert result.stderr.count("\n") == 1
    redis = {"ROI_REDIS_URL": "rediss://127.0.0.1:1/0", "ROI_REDIS_SSL_CERTFILE": str(cert)}
    redis["ROI_REDIS_SSL_KEYFILE"] = str(key)
    assert CliRunner().invoke(app, ["report"], env=redis).exit_code == 2
    settings = Settings(**{"redis_url": SecretStr("rediss://h:1/0"), "redis_ssl_certfile": cert,
                           "redis_ssl_keyfile": key, "redis_ssl_key_password": "hunter2"})  # type: ignore[arg-type]  # fmt: skip
    settings.check_tls_files()
    assert settings.redis_options()["ssl_password"] == "hunter2"
    assert "hunter2" in settings.secrets()


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="ROI_KAFKA_SASL_USERNAME and ROI_KAFKA_SASL_PASSWORD are required"
    ):
        Settings(kafka_security_protocol="SASL_SSL")


def test_secrets_are_masked_in_the_banner() -> None:
    settings = Settings(
        redis_url=SecretStr("rediss://default:hunter2@redis.example:6380/0"),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="roi",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    shown = settings.describe()
    assert shown["redis_url"] == "rediss://default:****@redis.example:6380/0"
    assert shown["kafka_sasl_password"] == "********"
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)


def test_worker_refuses_a_bad_setting_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROI_MAX_LATENESS_SECONDS", "99999999")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: ROI_MAX_LATENESS_SECONDS: Input should be less than or equal to 2592000\n"
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "ROI_KAFKA_BOOTSTRAP_SERVERS",
            ":::,,",
            "ROI_KAFKA_BOOTSTRAP_SERVERS: must be host:port, or several separated by commas "
            "(found ':::')",
        ),
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            "kafka:0",
            "ROI_KAFKA_BOOTSTRAP_SERVERS: must be host:port, or several separated by commas "
            "(found 'kafka:0')",
        ),
        ("ROI_GROUP_ID", "", "ROI_GROUP_ID: String should have at least 1 character"),
        (
            "ROI_DEDUP_HORIZON_SECONDS",
            "99999999999999999999",
            "ROI_DEDUP_HORIZON_SECONDS: Input should be less than or equal to 7776000",
        ),
        (
            "ROI_CONVERSATION_TTL_SECONDS",
            "99999999999",
            "ROI_CONVERSATION_TTL_SECONDS: Input should be less than or equal to 31536000",
        ),
        (
            "ROI_BATCH_WAIT_SECONDS",
            "nan",
            "ROI_BATCH_WAIT_SECONDS: Input should be a finite number",
        ),
        ("ROI_STALL_SECONDS", "inf", "ROI_STALL_SECONDS: Input should be a finite number"),
        (
            "ROI_CONSUMER_HEARTBEAT_SECONDS",
            "11",
            "ROI_CONSUMER_HEARTBEAT_SECONDS (11) must be at most a third of "
            "ROI_CONSUMER_SESSION_TIMEOUT_SECONDS (30): Kafka would take the worker for dead "
            "between two heartbeats",
        ),
    ],
)
def test_settings_that_would_fail_later_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    """Found by a stranger: each of these gave a traceback or started and failed forever."""
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["worker"])
    assert (result.exit_code, result.stderr) == (2, f"error: {said}\n")


def test_worker_refuses_a_bad_cost_card_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    card = tmp_path / "costs.toml"
    card.write_text((ROOT / "deploy/costs.toml").read_text().replace('currency = "USD"', ""))
    monkeypatch.setenv("ROI_COST_CARD", str(card))
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {card}: currency: missing (set ROI_COST_CARD to use another file)\n"
    )


def test_a_dead_letter_topic_among_the_channel_topics_is_refused() -> None:
    with pytest.raises(ValidationError, match="the worker would count its own dead letters"):
        Settings(topic_prefix="acme.", dead_letter_topic="acme.deadletter")
    assert Settings(topic_prefix="acme.", dead_letter_topic="acme.dead.letters")  # no channel


def test_the_broker_holds_an_empty_fetch_0_9_s_not_faust_s_1_5_s() -> None:
    assert Settings().consumer_fetch_wait_seconds == 0.9
    with pytest.raises(ValidationError):
        Settings(consumer_fetch_wait_seconds=0)

    async def made() -> tuple[int, str]:
        app = _faust_app(Settings(consumer_fetch_wait_seconds=0.25))
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._isolation_level
        finally:
            await consumer.stop()  # never started: releases its client
            thread.thread_loop.close()  # the loop Faust made for its consumer thread

    # the aiokafka consumer the worker's Faust builds (not started)
    assert asyncio.run(made()) == (250, "read_committed")
    # and aiokafka hands that attribute to its fetcher when it starts (a tripwire for an
    # aiokafka that would read it elsewhere: the setting would silently do nothing)
    start = inspect.getsource(AIOKafkaConsumer.start).replace(" ", "")
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`ROI_{name.upper()}`" in documented, name


# --- secrets in every form of Redis URL redis-py reads ------------------------------------

URL_FORMS = [  # (URL, its password, how the banner shows it); nothing listens at any of them
    (
        "redis://127.0.0.1:1/0?password=q-s3cret",
        "q-s3cret",
        "redis://127.0.0.1:1/0?password=****",
    ),
    ("rediss://:t-s3cret@127.0.0.1:1", "t-s3cret", "rediss://:****@127.0.0.1:1"),
    (
        "redis://user:u-s3cret@127.0.0.1:1?username=x",
        "u-s3cret",
        "redis://user:****@127.0.0.1:1?username=x",
    ),
    (
        "unix:///nonexistent/redis.sock?password=s-s3cret&db=0",
        "s-s3cret",
        "unix:///nonexistent/redis.sock?password=****&db=0",
    ),
    (
        "redis://127.0.0.1:1/2?db=2&PassWord=c-s3cret&socket_timeout=3",
        "c-s3cret",
        "redis://127.0.0.1:1/2?db=2&PassWord=****&socket_timeout=3",
    ),
    (  # percent-encoded: neither the encoded nor the decoded form may show
        "redis://default:p%40ss-s3cret@[::1]:1/1",
        "p@ss-s3cret",
        "redis://default:****@[::1]:1/1",
    ),
    (
        "redis://:a@b-s3cret@127.0.0.1:1/0",  # an unencoded @: redis-py reads a@b-s3cret
        "a@b-s3cret",
        "redis://:****@127.0.0.1:1/0",
    ),
    ("redis://127.0.0.1:16379/0", None, "redis://127.0.0.1:16379/0"),
    ("redis://user@127.0.0.1:1/0", None, "redis://user@127.0.0.1:1/0"),  # a user name only
]


@pytest.mark.parametrize(("url", "password", "shown"), URL_FORMS, ids=lambda v: str(v)[:24])
def test_the_redis_password_is_masked_wherever_it_is(
    url: str, password: str | None, shown: str
) -> None:
    settings = Settings(redis_url=SecretStr(url))
    assert settings.describe()["redis_url"] == shown
    message = f"cannot connect to {url} with {password} (encoded: {url.rpartition('@')[0]})"
    redacted = settings.redact(message)
    assert shown in redacted
    if password is not None:
        assert password not in redacted and password not in shown
        assert "s3cret" not in redacted


def test_every_secret_is_redacted_from_a_message() -> None:
    settings = Settings(
        redis_url=SecretStr("redis://127.0.0.1:1/0?password=r-s3cret"),
        redis_password=SecretStr("rp-s3cret"),
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="roi",
        kafka_sasl_password=SecretStr("k-s3cret"),
    )
    text = settings.redact("r-s3cret rp-s3cret k-s3cret roi 127.0.0.1")
    assert text == "**** **** **** roi 127.0.0.1"
    assert settings.describe()["redis_password"] == "********"


def test_an_unparseable_url_is_not_shown() -> None:
    assert mask_url("redis://:pw@[::1") == "redis://****"
    assert url_secrets("redis://:pw@[::1") == ["redis://:pw@[::1"]


UNREACHABLE_KAFKA = "127.0.0.1:1"
KAFKA_SECRET = "kafka-s3cret-9"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_briefly(
    args: list[str], env: dict[str, str], tmp: Path, ready: str = "", port: int = 0
) -> str:
    """Run the installed `roi-metrics` with `args` until it exits, or, for a server, until it
    printed `ready` and answered one scrape of /metrics and /readyz; its stdout and stderr."""
    log = tmp / f"{'-'.join(args)}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(EXECUTABLE), *args], env=env, cwd=tmp, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            if ready:
                deadline = time.monotonic() + 30
                while ready not in log.read_text() and process.poll() is None:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
                # "serving" is said before the server binds: wait until it answers, so the
                # interrupt below does not land in the middle of the start
                while process.poll() is None and time.monotonic() < deadline:
                    with contextlib.suppress(OSError):
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                        break
                    time.sleep(0.1)
                for path in ("/metrics", "/readyz"):
                    with contextlib.suppress(OSError):
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
                process.send_signal(signal.SIGINT)
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return log.read_text()


def _secret_env(url: str, tmp: Path) -> dict[str, str]:
    """The environment of a command with passwords everywhere settings take one: in the
    Redis URL, in ROI_REDIS_PASSWORD and for Kafka SASL; neither Redis nor Kafka there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROI_", "KAFKA_", "REDIS_"))}
    env.update(
        ROI_REDIS_URL=url,
        ROI_REDIS_PASSWORD="redis-pw-s3cret",
        ROI_KAFKA_BOOTSTRAP_SERVERS=UNREACHABLE_KAFKA,
        ROI_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        ROI_KAFKA_SASL_USERNAME="roi",
        ROI_KAFKA_SASL_PASSWORD=KAFKA_SECRET,
        ROI_COST_CARD=str(ROOT / "deploy" / "costs.toml"),
        ROI_DATA_DIR=str(tmp / "faust"),
        ROI_EXPORTER_PORT=str(free_port()),
        ROI_WORKER_PORT=str(free_port()),
    )
    return env


def _outputs(
    runs: dict[str, tuple[list[str], str]], env: dict[str, str], tmp: Path
) -> dict[str, str]:
    """What each command printed, all run at once."""
    port = int(env["ROI_EXPORTER_PORT"])
    with ThreadPoolExecutor(len(runs)) as pool:
        started = {
            command: pool.submit(_run_briefly, args, env, tmp, ready, port)
            for command, (args, ready) in runs.items()
        }
        return {command: future.result() for command, future in started.items()}


def _assert_no_secret(outputs: dict[str, str], *secrets: str) -> None:
    for command, output in outputs.items():
        for secret in (*secrets, "redis-pw-s3cret", KAFKA_SECRET, "s3cret"):
            assert secret not in output, f"{command} printed {secret!r}:\n{output}"


@pytest.mark.parametrize(
    ("url", "password"), [(url, password) for url, password, _ in URL_FORMS[:6]], ids=str
)
def test_the_exporter_and_the_worker_print_no_password(
    url: str, password: str, tmp_path: Path
) -> None:
    """The real entry points with the password in each form of URL: the exporter prints its
    banner, serves a scrape and a readiness probe without Redis; the worker cannot reach
    Kafka (with SASL)."""
    env = _secret_env(url, tmp_path)
    runs = {"exporter": (["exporter"], "serving http://"), "worker": (["worker"], "")}
    outputs = _outputs(runs, env, tmp_path)
    _assert_no_secret(outputs, password)
    if "PassWord" in url:  # a parameter redis-py does not know: refused in one line
        assert outputs["exporter"].startswith("error: ROI_REDIS_URL (or REDIS_URL): ")
        assert outputs["exporter"].count("\n") == 1
        return
    assert "serving http://" in outputs["exporter"]  # it started: the banner was printed
    assert (
        "redis_url = " in outputs["exporter"]
        and "kafka_sasl_password = ****" in outputs["exporter"]
    )
    assert "cannot reach Kafka" in outputs["worker"]
    _assert_no_secret(outputs, password)


def test_the_operator_commands_print_no_password(tmp_path: Path) -> None:
    """report, channel list and top, which read Redis, fail or show the failure: no password."""
    url, password, _ = URL_FORMS[0]
    runs = {
        "report": (["report"], ""),
        "channel list": (["channel", "list"], ""),
        "top": (["top", "--duration", "1", "--interval", "0.5"], ""),
    }
    outputs = _outputs(runs, _secret_env(url, tmp_path), tmp_path)
    assert "cannot read Redis" in outputs["report"] and "cannot read Redis" in outputs["top"]
    _assert_no_secret(outputs, password)


def test_redis_refusals_that_waiting_will_not_cure_are_told_apart() -> None:
    import redis  # noqa: PLC0415
    from roi_metrics.cli.common import redis_settings_problem  # noqa: PLC0415

    denied = redis.exceptions.NoPermissionError("this user has no permissions to run the 'info'")
    assert (redis_settings_problem(denied) or "").startswith("Redis's user for this client lacks")
    refused = redis.AuthenticationError("invalid username-password pair")
    assert (redis_settings_problem(refused) or "").startswith("Redis refused this client's")
    untrusted = redis.ConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert "ROI_REDIS_SSL_CAFILE" in (redis_settings_problem(untrusted) or "")
    # a cluster client wraps what its node said in its own exception
    wrapped = redis.exceptions.RedisClusterException(
        "Redis Cluster cannot be connected: invalid username-password pair or user is disabled."
    )
    assert (redis_settings_problem(wrapped) or "").startswith("Redis refused this client's")
    plain = redis.exceptions.RedisClusterException(
        "Redis Cluster cannot be connected: Cluster mode is not enabled on this node"
    )
    assert "set ROI_REDIS_CLUSTER=false" in (redis_settings_problem(plain) or "")
    moved = redis.exceptions.MovedError("12371 127.0.0.1:17303")
    assert "set ROI_REDIS_CLUSTER=true" in (redis_settings_problem(moved) or "")
    for passing in ("Error 111 connecting to 127.0.0.1:6379. Connection refused.", "Timeout"):
        assert redis_settings_problem(redis.ConnectionError(passing)) is None
    missing = redis.exceptions.ResponseError("DB index is out of range")
    assert "has no such database" in (redis_settings_problem(missing) or "")
    down = redis.exceptions.RedisClusterException("Redis Cluster cannot be connected.")
    assert redis_settings_problem(down) is None


@pytest.mark.parametrize(
    ("url", "fine"),
    [
        ("redis://127.0.0.1:7000/0", True),
        ("redis://127.0.0.1:7000", True),
        ("redis://127.0.0.1:7000/0?db=0", True),
        ("redis://127.0.0.1:7000/3", False),
        ("redis://127.0.0.1:7000/?db=3", False),
        ("redis://127.0.0.1:7000/0?db=2", False),
    ],
)
def test_a_cluster_has_database_0_only(url: str, fine: bool) -> None:
    if fine:
        Settings(redis_url=url, redis_cluster=True)
    else:
        with pytest.raises(ValueError, match="database 0 only"):
            Settings(redis_url=url, redis_cluster=True)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "61"])
def test_the_replicas_wait_is_a_finite_number_of_seconds(value: str) -> None:
    with pytest.raises(ValueError, match=r"finite number|greater than or equal|less than"):
        Settings(redis_wait_timeout_seconds=value)

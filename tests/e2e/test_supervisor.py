"""The local stack's supervisor and its safety settings, on a stack of its own (own state
folder, free ports; the suite's stack is untouched): `deploy/local/roi.sh` restarts a process
that dies (one log line and one count per restart, growing back-off) and `stop` leaves nothing
behind; redis.sh starts Redis with noeviction; kafka.sh's broker creates no topic on first use.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from tests.integration.harness import stack_env, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
RESTART_LINE = re.compile(
    r"^supervisor: exporter exited with status (\d+)(?: \(SIG\w+\))? after \d+ s; "
    r"restart (\d+) in (\d+) s$"
)


def need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.fail(f"{program} is not installed; run deploy/local/install.sh (or make install)")


def script(env: dict[str, str], name: str, *args: str, timeout: float = 150) -> tuple[int, str]:
    """Runs deploy/local/NAME with ARGS; (exit status, stdout + stderr)."""
    result = subprocess.run(
        [str(LOCAL / name), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def running(pid: int) -> bool:
    """A live process (a zombie, dead but not yet reaped, is not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_for(what: str, check: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.1)


class Exporter:
    """The exporter of one isolated stack, run through roi.sh, and its files."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.dir = Path(env["ROI_STATE_DIR"]) / "exporter"
        self.url = f"http://127.0.0.1:{env['ROI_EXPORTER_PORT']}/readyz"

    def roi(self, action: str) -> tuple[int, str]:
        return script(self.env, "roi.sh", "exporter", action)

    def pid(self, name: str) -> int | None:
        try:
            return int((self.dir / name).read_text())
        except (FileNotFoundError, ValueError):  # not there, or being written
            return None

    @property
    def supervisor(self) -> int | None:
        return self.pid("exporter.pid")

    @property
    def child(self) -> int | None:
        return self.pid("exporter.child.pid")

    def restart_lines(self) -> list[re.Match[str]]:
        lines = (self.dir / "exporter.log").read_text().splitlines()
        assert not [line for line in lines if "; restart " in line and not RESTART_LINE.match(line)]
        return [m for line in lines if (m := RESTART_LINE.match(line))]

    def restarts(self) -> str:
        return (self.dir / "exporter.restarts").read_text().strip()

    def supervisors(self) -> list[int]:
        """Every `roi.sh exporter supervise` process of this stack."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if process.info["cmdline"][-2:] == ["exporter", "supervise"] and (
                    process.environ().get("ROI_STATE_DIR") == self.env["ROI_STATE_DIR"]
                ):
                    found.append(process.pid)
            except (psutil.Error, TypeError):  # gone meanwhile, or no command line
                continue
        return found

    def kill_child_and_wait_for_the_next(self, ready: bool = True) -> int:
        killed = self.child
        assert killed is not None and running(killed)
        os.kill(killed, signal.SIGKILL)
        wait_for(
            "the supervisor starting a new exporter",
            lambda: self.child not in (None, killed) and not running(killed),
        )
        if ready:
            wait_http(self.url, 30, "the restarted exporter", self.dir / "exporter.log")
        return killed


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Redis of its own, started by redis.sh, for the exporter."""
    need("redis-server")
    need("curl")
    env = stack_env(tmp_path_factory.mktemp("supervised") / "state")
    code, out = script(env, "redis.sh", "start")
    assert code == 0, out
    try:
        yield env
    finally:
        script(env, "roi.sh", "exporter", "stop")
        script(env, "redis.sh", "stop")


@pytest.fixture
def exporter(redis_stack: dict[str, str]) -> Iterator[Exporter]:
    running_exporter = Exporter(redis_stack)
    code, out = running_exporter.roi("start")
    assert code == 0, out
    assert "exporter: ready" in out
    try:
        yield running_exporter
    finally:
        running_exporter.roi("stop")


def test_a_killed_exporter_is_restarted_once_and_stop_leaves_nothing(exporter: Exporter) -> None:
    supervisor, first = exporter.supervisor, exporter.child
    assert supervisor is not None and first is not None
    assert psutil.Process(first).ppid() == supervisor
    assert os.getpgid(supervisor) == supervisor  # a process group of its own (setsid)
    assert exporter.restarts() == "0" and exporter.restart_lines() == []

    exporter.kill_child_and_wait_for_the_next()
    second = exporter.child
    assert second is not None and second != first
    lines = exporter.restart_lines()
    assert [(m.group(1), m.group(2), m.group(3)) for m in lines] == [("137", "1", "1")]
    assert "(SIGKILL)" in lines[0].group(0)
    assert exporter.restarts() == "1"
    code, out = exporter.roi("status")
    assert code == 0 and "exporter: running" in out and "restarts: 1" in out, out

    code, out = exporter.roi("stop")
    assert code == 0 and "exporter: stopped" in out and "killing" not in out, out
    for pid in (supervisor, first, second):
        assert not running(pid), pid
    assert list(exporter.dir.glob("*.pid")) == []
    assert len(exporter.restart_lines()) == 1  # a stop is not a restart
    assert "supervisor: exporter stopped on request" in (exporter.dir / "exporter.log").read_text()
    code, out = exporter.roi("status")
    assert code == 3 and "exporter: stopped" in out and "restarts: 1" in out, out


def test_the_back_off_doubles_and_a_stop_during_it_restarts_nothing(exporter: Exporter) -> None:
    supervisor = exporter.supervisor
    assert supervisor is not None
    children = [exporter.kill_child_and_wait_for_the_next()]
    # killed again at once (it ran for less than 60 s): the next wait is twice as long
    killed = exporter.child
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    children.append(killed)
    wait_for("the second restart line", lambda: len(exporter.restart_lines()) == 2)
    assert [(m.group(2), m.group(3)) for m in exporter.restart_lines()] == [("1", "1"), ("2", "2")]
    assert exporter.restarts() == "2"
    assert exporter.child is None  # in its 2 s back-off

    code, out = exporter.roi("stop")
    assert code == 0 and "exporter: stopped" in out and "killing" not in out, out
    time.sleep(2.5)  # past the back-off: nothing may come back
    assert not running(supervisor)
    assert all(not running(pid) for pid in children)
    assert exporter.child is None and list(exporter.dir.glob("*.pid")) == []
    assert exporter.supervisors() == []
    code, _ = exporter.roi("status")
    assert code == 3


def test_start_twice_keeps_one_supervisor(exporter: Exporter) -> None:
    supervisor = exporter.supervisor
    assert exporter.supervisors() == [supervisor]
    code, out = exporter.roi("start")
    assert code == 0 and "exporter: already running" in out, out
    assert exporter.supervisors() == [supervisor]


def test_start_replaces_a_process_whose_supervisor_was_killed(exporter: Exporter) -> None:
    supervisor, orphan = exporter.supervisor, exporter.child
    assert supervisor is not None and orphan is not None
    os.kill(supervisor, signal.SIGKILL)
    wait_for("the supervisor gone", lambda: not running(supervisor))
    code, out = exporter.roi("status")
    assert code == 3 and "without its supervisor" in out, out
    code, out = exporter.roi("start")
    assert code == 0 and "exporter: ready" in out, out
    assert not running(orphan)  # stopped, so that the new one could take the port
    assert exporter.supervisors() == [exporter.supervisor] and exporter.child != orphan


def test_redis_never_evicts_and_takes_a_memory_limit(
    redis_stack: dict[str, str], tmp_path: Path
) -> None:
    client = redis.Redis(host="127.0.0.1", port=int(redis_stack["ROI_REDIS_PORT"]))
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("maxmemory") == {"maxmemory": "0"}  # unset: no limit
    client.close()

    limited = stack_env(tmp_path / "state", ROI_REDIS_MAXMEMORY="64mb")
    code, out = script(limited, "redis.sh", "start")
    try:
        assert code == 0, out
        assert "noeviction, maxmemory 64mb" in out
        client = redis.Redis(host="127.0.0.1", port=int(limited["ROI_REDIS_PORT"]))
        assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.close()
    finally:
        script(limited, "redis.sh", "stop")


async def test_the_local_broker_creates_no_topic_on_first_use(tmp_path: Path) -> None:
    need("java")
    need("mvn")
    env = stack_env(tmp_path / "state", KAFKA_HEAP_OPTS="-Xms128m -Xmx384m")
    bootstrap = f"127.0.0.1:{env['ROI_KAFKA_PORT']}"
    code, out = script(env, "kafka.sh", "start", timeout=240)
    try:
        assert code == 0, out
        properties = (tmp_path / "state" / "kafka" / "server.properties").read_text()
        assert "auto.create.topics.enable=false" in properties.splitlines()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        await producer.start()
        try:
            with pytest.raises(UnknownTopicOrPartitionError):
                await producer.send_and_wait("support.events.typo", b"{}")
            # a topic created on purpose works as before
            result = subprocess.run(
                [str(ROOT / ".venv/bin/roi-metrics"), "channel", "add", "voice"],
                env={**env, "ROI_KAFKA_BOOTSTRAP_SERVERS": bootstrap},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            await producer.send_and_wait("support.events.voice", b"{}", key=b"c1")
        finally:
            await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = set(await admin.list_topics())
        finally:
            await admin.close()
        assert "support.events.voice" in topics
        assert "support.events.typo" not in topics
    finally:
        script(env, "kafka.sh", "stop", timeout=60)


def test_compose_turns_topic_auto_creation_off_and_redis_never_evicts() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] == "${ROI_REDIS_MAXMEMORY:-0}"

"""Runs real `roi-metrics worker` processes against the real stack, isolated per test: own
topic prefix, consumer group, dead-letter topic, Redis database and ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = Path(sys.executable).parent / "roi-metrics"
TEST_DB = 14
"""The Redis database of the `redis_db` fixture, for tests that deploy no workers."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stack_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a stack of its own: nothing inherited that points elsewhere."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("ROI_", "KAFKA_", "REDIS_"))
    }
    ports = {
        name: str(free_port())
        for name in (
            "ROI_KAFKA_PORT",
            "ROI_KAFKA_CONTROLLER_PORT",
            "ROI_REDIS_PORT",
            "ROI_PROMETHEUS_PORT",
            "ROI_EXPORTER_PORT",
            "ROI_WORKER_PORT",
        )
    }
    return {**inherited, **ports, "ROI_STATE_DIR": str(state), **extra}


def wait_http(url: str, seconds: float, what: str, log: Path | None = None) -> None:
    """Wait until `url` answers 200; AssertionError (with the log's tail) when it does not
    within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"{what} did not answer {url} within {seconds}s\n{tail}")
        time.sleep(0.2)


@dataclass
class WorkerProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    log_file: IO[bytes]

    def readyz(self) -> int:
        """The HTTP status of /readyz, or 0 when the worker does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on the worker's /metrics."""
        return self.labelled(name)

    def labelled(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def metric_or_zero(self, name: str) -> float:
        """Like metric(), 0 while the worker does not answer yet (it may be starting)."""
        try:
            return self.metric(name)
        except OSError:
            return 0.0

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.readyz() != 200:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} not ready in {seconds}s: {self.log.read_text()[-3000:]}"
                )
            time.sleep(0.2)

    def kill(self) -> None:
        """kill -9: no shutdown, no commit."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.log_file.close()

    def stop(self) -> None:
        """A graceful stop (SIGTERM), as an orchestrator scaling down would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_file.close()


@dataclass
class Deployment:
    bootstrap: str
    redis_url: str
    tmp: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"t{self.run}.events."

    @property
    def dead_letter_topic(self) -> str:
        return f"t{self.run}.deadletter"

    @property
    def customer_topic(self) -> str:
        return f"t{self.run}.customers"

    def env(self, port: int) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ROI_", "KAFKA_", "REDIS_"))
        }
        env.update(
            ROI_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            ROI_REDIS_URL=self.redis_url,
            ROI_TOPIC_PREFIX=self.prefix,
            ROI_DEAD_LETTER_TOPIC=self.dead_letter_topic,
            ROI_CUSTOMER_TOPIC=self.customer_topic,
            ROI_GROUP_ID=f"t{self.run}",
            ROI_COST_CARD=str(ROOT / "deploy" / "costs.toml"),
            ROI_WORKER_PORT=str(port),
            ROI_DATA_DIR=str(self.tmp / "faust"),
            ROI_DISCOVERY_INTERVAL_SECONDS="1",
            ROI_BATCH_WAIT_SECONDS="0.05",
            ROI_CONSUMER_SESSION_TIMEOUT_SECONDS="6",
            ROI_CONSUMER_HEARTBEAT_SECONDS="1",
            ROI_REBALANCE_TIMEOUT_SECONDS="10",
        )
        return env

    def start_worker(
        self,
        wait: bool = True,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> WorkerProcess:
        """A real worker process; `env` adds settings, `command` replaces the executable
        (e.g. a Python wrapper that injects a fault before running the same CLI)."""
        port = free_port()
        name = f"worker-{len(self.workers) + 1}"
        args = ["worker", "--log-level", "warn"]
        environment = {**self.env(port), **(env or {})}
        return self.start_process(name, port, args, environment, command=command, wait=wait)

    def start_exporter(
        self,
        wait: bool = True,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> WorkerProcess:
        """The real `roi-metrics exporter` on this deployment's Redis database; stopped by
        stop_all() like the workers. `env` and `command` as for start_worker."""
        port = free_port()
        args = ["exporter", "--port", str(port)]
        environment = {**self.env(free_port()), **(env or {})}
        return self.start_process("exporter", port, args, environment, command=command, wait=wait)

    def start_process(
        self,
        name: str,
        port: int,
        args: list[str],
        env: dict[str, str],
        command: list[str] | None = None,
        *,
        wait: bool = False,
    ) -> WorkerProcess:
        """Run `roi-metrics ARGS` (or `command ARGS`) in the deployment's folder, its output
        in NAME.log; stopped by stop_all()."""
        log = self.tmp / f"{name}.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            [*(command or [str(EXECUTABLE)]), *args],
            env=env,
            cwd=self.tmp,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        started = WorkerProcess(name, port, process, log, log_file)
        self.workers.append(started)
        if wait:
            started.wait_ready()
        return started

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.kill()
            worker.log_file.close()

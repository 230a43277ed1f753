"""The private Docker engine of deploy/local/docker.sh and the image built on it, for the
tests that run roi-metrics in containers.

The engine can run only as root with Debian's docker.io (dockerd) and debootstrap installed;
`unavailable()` says why not. The base image and the build take a minute or two, so the
session starts them in the background as soon as it knows a container test will run
(`start_preparing`, from tests/conftest.py) and the test waits for them (`wait_prepared`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "local" / "docker.sh"
IMAGE = "roi-metrics:local"
CONTAINER_TESTS = "test_docker.py"


def unavailable() -> str | None:
    """Why no Docker engine can run here, or None when one can."""
    if os.geteuid() != 0:
        return "the Docker engine needs root here (dockerd as root; run the suite as root)"
    for program, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap")):
        if shutil.which(program) is None:
            return (
                f"{program} is not installed (Debian's {package}; "
                "deploy/local/install.sh installs it as root)"
            )
    return None


@dataclass
class Preparation:
    """The engine, started; the base image and the build, running in the background."""

    process: subprocess.Popen[bytes] | None
    log: Path
    skip: str | None = None
    """Why the container tests skip: no engine can run here, or it did not start."""
    started_engine: bool = False
    """Whether this session started the engine (and so stops it), or found one running."""

    def wait(self) -> None:
        """Wait for the image; AssertionError with the log's tail when the build failed or
        took over 15 minutes."""
        if self.process is None:
            return
        try:
            code = self.process.wait(900)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = -1
        if code != 0:
            raise AssertionError(f"the image was not built:\n{self.log.read_text()[-3000:]}")

    def finish(self) -> None:
        """Stop the build if it still runs, the engine if this session started it; remove
        the build log's folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.started_engine:
            subprocess.run([str(SCRIPT), "stop"], capture_output=True, check=False)
        shutil.rmtree(self.log.parent, ignore_errors=True)


def start_preparing(log: Path) -> Preparation:
    """Start the engine now (seconds) unless it runs, then make the base image and build the
    image in the background (each waits for, then skips, what `make test` began early)."""
    reason = unavailable()
    if reason is not None:
        return Preparation(None, log, reason)
    running = subprocess.run([str(SCRIPT), "status"], capture_output=True, check=False)
    if running.returncode != 0:  # (`make test` starts it early, and builds in the background)
        started = subprocess.run(
            [str(SCRIPT), "start"], capture_output=True, text=True, check=False
        )
        if started.returncode != 0:
            last = (started.stderr.strip().splitlines() or ["no output"])[-1]
            return Preparation(None, log, f"the Docker engine did not start here: {last}")
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", f'"{SCRIPT}" base && "{SCRIPT}" build'],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Preparation(process, log, started_engine=running.returncode != 0)


def docker_host() -> str:
    """The engine's socket, as DOCKER_HOST."""
    result = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True)
    return result.stdout.strip().removeprefix("export ").partition("=")[2]


def client() -> str:
    """The engine's own client when Debian installed it, else any `docker`."""
    found = shutil.which("docker", path="/usr/bin") or shutil.which("docker")
    assert found is not None, "no docker client"
    return found


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [client(), "-H", docker_host(), *args], capture_output=True, text=True, check=check
    )


def run_command(label: str, names: list[str], volumes: tuple[str, ...] = ()) -> list[str]:
    """The command that runs the image's `roi-metrics` in the foreground on the host
    network, labelled for clean-up, with each environment variable in `names` passed from
    the client's environment (`-e NAME`); the CLI's arguments follow it."""
    environment = [option for name in names for option in ("-e", name)]
    mounts = [option for volume in volumes for option in ("-v", volume)]
    return [
        client(), "-H", docker_host(), "run", "--rm", "--network=host", "--init",
        "--label", label, *environment, *mounts, IMAGE,
    ]  # fmt: skip


def remove_labelled(label: str) -> None:
    """Remove every container with `label`, running or not (a killed client leaves its
    container running)."""
    found = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
    if found:
        docker("rm", "-f", *found, check=False)

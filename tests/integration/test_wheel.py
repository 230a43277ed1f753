"""The wheel works outside the checkout: built from the repository, installed into a fresh
virtual environment in a temporary folder, it writes its starter files (`init`) and its
schemas, and its worker and exporter count and export events on the real stack, from a
working directory that holds no `deploy/`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.cloudevents import event
from tests.integration.harness import ROOT, Deployment, free_port
from tests.integration.pipeline import create_channels

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
REDIS_DB = 6  # this module's Redis database (the deployment and state fixtures)


def install_wheel(folder: Path) -> Path:
    """Build the wheel, install it with its dependencies (resolved from its own metadata)
    into a new virtual environment; its `roi-metrics`. uv installs in seconds what pip
    takes half a minute for."""
    wheels = folder / "wheels"
    quiet = ["-q", "--disable-pip-version-check"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *quiet, "--no-deps", str(ROOT), "-w", str(wheels)],
        check=True,
    )
    [wheel] = wheels.glob("roi_metrics-*.whl")
    venv = folder / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
    )
    return venv / "bin" / "roi-metrics"


async def test_the_installed_wheel_runs_without_the_checkout(
    deployment: Deployment, state: aioredis.Redis, tmp_path: Path
) -> None:
    executable = install_wheel(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    made = subprocess.run(
        [str(executable), "init", "roi"], cwd=outside, capture_output=True, text=True, check=True
    )
    assert made.stdout.startswith("wrote roi/costs.toml")
    assert not (outside / "deploy").exists()
    card = {"ROI_COST_CARD": str(outside / "roi" / "costs.toml")}
    subprocess.run([str(executable), "schemas", "export", "schemas"], cwd=outside, check=True)
    assert (outside / "schemas" / "asyncapi.yaml").exists()

    await create_channels(deployment, ["web"])
    deployment.start_worker(command=[str(executable)], env=card)
    now = time.time()
    events = [
        event("conversation.started", f"w{i}", f"c{i}", now - 30, "/web", handled_by="ai")
        for i in range(3)
    ]
    published = subprocess.run(
        [str(executable), "publish", "web", "-"],
        input="\n".join(json.dumps(e) for e in events),
        cwd=outside,
        env={**deployment.env(free_port()), **card},
        capture_output=True,
        text=True,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    exporter = deployment.start_exporter(command=[str(executable)], env=card)

    def conversations() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics") as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith('support_conversations{channel="web",window="all"}'):
                    return float(line.split()[-1])
        return 0.0

    deadline = time.monotonic() + 60
    while conversations() != 3:
        assert time.monotonic() < deadline, "the installed worker did not count the events"
        time.sleep(0.5)
    assert await state.sismember("roi:channels", "web")  # the installed worker's state
    # the runbooks ship in the wheel: every alert's default runbook_url opens
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/runbooks") as reply:
        assert "<h2 id='supportworkerdown'>" in reply.read().decode()

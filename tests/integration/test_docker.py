"""The image, for real: built by deploy/local/docker.sh on a private Docker engine (root,
Debian's docker.io, host network only, a base image made from Debian's packages), its worker,
exporter and simulator run in containers against the local stack. The oracle holds through
them exactly as through the processes of test_worker.py. Where no engine can run, the tests
skip and say why (tests/containers.py)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests import containers
from tests.integration.commands import cli, report, wait_for
from tests.integration.harness import Deployment, free_port
from tests.integration.pipeline import bucket_state, create_channels, publish, wait_applied
from tests.integration.traffic import Generator, recompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
REDIS_DB = 3  # this module's Redis database (the deployment and state fixtures)
CHANNELS = ["whatsapp", "web", "email"]
INSIDE = {"ROI_COST_CARD": "/etc/roi-metrics/costs.toml", "ROI_DATA_DIR": "/tmp/roi-worker"}
"""Paths inside the image: the cost card `roi-metrics init` wrote there, a writable folder."""


@pytest.fixture
def in_containers(image: str, deployment: Deployment) -> Iterator[list[str]]:
    """The command that runs the image's roi-metrics with this deployment's settings; every
    container it started is removed after the test."""
    label = f"roi-test={uuid.uuid4().hex[:8]}"
    names = sorted(k for k in deployment.env(0) if k.startswith("ROI_"))
    yield containers.run_command(label, names)
    containers.remove_labelled(label)


def figure(port: int, name: str, channel: str, window: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f'{name}{{channel="{channel}",window="{window}"}} '):
                return float(line.rsplit(" ", 1)[1])
    return None


def differing(streamed: object, replayed: object, path: str = "") -> list[str]:
    """Where two reports differ, one line per leaf: `email.all.counts.conversations:
    streamed 80, replayed 81`."""
    if isinstance(streamed, dict) and isinstance(replayed, dict):
        return [
            line
            for key in sorted(set(streamed) | set(replayed))
            for line in differing(streamed.get(key), replayed.get(key), f"{path}.{key}")
        ]
    if streamed == replayed:
        return []
    if isinstance(streamed, dict) or isinstance(replayed, dict):
        return [
            f"{path}: streamed {'absent' if streamed is None else 'present'}, "
            f"replayed {'absent' if replayed is None else 'present'}"
        ]
    return [f"{path}: streamed {streamed}, replayed {replayed}"]


def test_the_image_runs_as_its_own_user_with_the_shipped_cost_card(image: str) -> None:
    user = containers.docker("run", "--rm", "--network=host", "--entrypoint", "id", image)
    assert user.stdout.startswith("uid=10001(roi)")
    card = containers.docker("run", "--rm", "--network=host", image, "config", "check")
    assert card.stdout.startswith("/etc/roi-metrics/costs.toml: ok")


async def test_the_oracle_holds_through_the_containers(
    deployment: Deployment, state: aioredis.Redis, in_containers: list[str]
) -> None:
    now = int(time.time())
    traffic = Generator(seed=2611, now=now, channels=CHANNELS).traffic(600)
    await create_channels(deployment, CHANNELS)
    deployment.start_worker(command=in_containers, env=INSIDE)
    offsets = await publish(deployment, traffic)
    await wait_applied(state, deployment, offsets)
    assert await bucket_state(state) == recompute(traffic, now)

    exporter = deployment.start_exporter(command=in_containers, env=INSIDE)
    figures = report(deployment)["channels"]
    for channel in CHANNELS:
        counted = figures[channel]["all"]["counts"]["conversations"]
        assert counted > 0
        assert figure(exporter.port, "support_conversations", channel, "all") == counted


def test_the_simulator_container_publishes_what_replay_counts(
    deployment: Deployment, state: aioredis.Redis, in_containers: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user writes the events there
    deployment.start_worker(command=in_containers, env=INSIDE)
    simulator = [*in_containers[:-1], "-v", f"{out}:/out", in_containers[-1]]
    args = ["simulate", "--rate", "400", "--max-events", "1500", "--time-scale", "86400"]
    args += ["--seed", "5", "--partitions", "2", "--output", "/out/events.ndjson", "--quiet"]
    environment = {**deployment.env(free_port()), **INSIDE}
    ran = deployment.start_process("simulator", free_port(), args, environment, simulator)
    assert ran.process.wait(120) == 0, ran.log.read_text()[-2000:]
    assert len((out / "events.ndjson").read_text().splitlines()) == 1500

    at = str(int(time.time()) + 5)
    code, offline_text, err = cli(
        deployment, "replay", str(out / "events.ndjson"), "--at", at, "--json"
    )
    assert code == 0, err
    offline = json.loads(offline_text)
    assert offline["events"] == {"counted": 1500}
    last: list[dict[str, object]] = []

    def streamed() -> dict[str, object] | None:
        last[:] = [report(deployment, "--at", at)]
        return last[0] if last[0]["channels"] == offline["channels"] else None

    try:
        live = wait_for("the containers' figures equal the replayed ones", streamed, 180)
    except AssertionError:
        differences = "\n".join(differing(last[0]["channels"], offline["channels"])[:30])
        worker_log = deployment.workers[0].log.read_text()[-2000:]
        raise AssertionError(
            f"streamed vs replayed:\n{differences}\nworker log: {worker_log}"
        ) from None
    assert live["program"] == offline["program"]

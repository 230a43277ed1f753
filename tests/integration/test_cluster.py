"""The worker and the exporter on a real Redis Cluster (three masters, three replicas of
Debian's redis-server, started by deploy/local/redis-cluster.sh), and a master killed with
kill -9 during traffic.

The oracle test is the plain one on a cluster: channels whose keys live on different masters,
every bucket equal to the independent recomputation. The failover test kills the master of
one channel's slot while events flow, with ROI_REDIS_WAIT_REPLICAS=1: its replica takes over,
the figures are still exact and no acknowledged write was lost. (What the default
acknowledgement loses in the same fault, and how the worker reads it again, is
measured by bench/failover.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from roi_metrics.state import keys

from tests.integration.harness import ROOT, Deployment
from tests.integration.pipeline import (
    bucket_state,
    create_channels,
    matches_oracle,
    publish,
    wait_applied,
)
from tests.integration.traffic import Generator, recompute
from tests.stack import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 0  # unused: the workers here use the cluster
FIRST_PORT = 17101
"""The test cluster's first port (the default 17001 is left to a developer's own cluster)."""
CHANNELS = ["whatsapp", "slack", "web", "voice"]  # slots 6823, 2651, 9635, 15039: all 3 masters
SCRIPT = ROOT / "deploy/local/redis-cluster.sh"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh cluster of six nodes; the environment that controls it."""
    ports = [FIRST_PORT + i for i in range(6)]
    busy = [p for p in ports + [p + 10000 for p in ports] if not _port_free(p)]
    assert not busy, f"ports {busy} are taken: the cluster test needs {ports} and their bus ports"
    env = {
        **os.environ,
        "ROI_STATE_DIR": str(tmp_path_factory.mktemp("cluster")),
        "ROI_REDIS_CLUSTER_PORT": str(FIRST_PORT),
    }
    subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=90)
    yield env
    subprocess.run([str(SCRIPT), "stop"], env=env, check=True, capture_output=True, timeout=90)


@pytest.fixture
async def client(cluster: dict[str, str]) -> AsyncIterator[RedisCluster]:
    """A cluster client, every master emptied first."""
    connected = RedisCluster.from_url(f"redis://127.0.0.1:{FIRST_PORT}/0")
    await connected.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield connected
    await connected.aclose()


def cluster_env(**more: str) -> dict[str, str]:
    return {
        "ROI_REDIS_URL": f"redis://127.0.0.1:{FIRST_PORT}/0",
        "ROI_REDIS_CLUSTER": "true",
        **more,
    }


def masters(env: dict[str, str]) -> dict[int, int]:
    """port -> pid of every live master."""
    said = subprocess.run([str(SCRIPT), "masters"], env=env, check=True, capture_output=True)
    pairs = (line.split() for line in said.stdout.decode().splitlines())
    return {int(port): int(pid) for port, pid in pairs}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


async def test_the_oracle_holds_on_a_cluster_with_channels_on_every_master(
    deployment: Deployment, client: RedisCluster
) -> None:
    homes = {client.get_node_from_key(keys.watermarks(c)).port for c in CHANNELS}
    assert len(homes) == 3, f"the channels' keys should spread over the 3 masters: {homes}"
    now = int(time.time())
    traffic = Generator(seed=31, now=now, channels=CHANNELS, customers=True).traffic(60)
    await create_channels(deployment, CHANNELS)
    deployment.start_worker(env=cluster_env())
    exporter = deployment.start_exporter(env=cluster_env())
    offsets = await publish(deployment, traffic)
    await wait_applied(client, deployment, offsets, seconds=120)
    # customers come back across channels whose keys live on other masters (§9)
    await matches_oracle(client, recompute(traffic, now))
    assert sum(v.get("ai_recontacts", 0) for v in recompute(traffic, now).values()) > 0
    assert await client.scard(keys.CHANNELS) == len(CHANNELS)
    want = sum(
        fields.get("conversations", 0)
        for key, fields in recompute(traffic, now).items()
        if key.endswith(":b:all:0")
    )
    exported = [
        line
        for line in scrape(exporter.port).splitlines()
        if line.startswith("support_conversations{") and 'window="all"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in exported) == want, exported


async def test_a_master_killed_during_traffic_loses_nothing_when_replicas_confirm(
    cluster: dict[str, str], deployment: Deployment, client: RedisCluster
) -> None:
    now = int(time.time())
    traffic = Generator(seed=32, now=now, channels=CHANNELS).traffic(100)
    await create_channels(deployment, CHANNELS)
    worker = deployment.start_worker(env=cluster_env(ROI_REDIS_WAIT_REPLICAS="1"))
    victim = client.get_node_from_key(keys.watermarks("web")).port
    pid = masters(cluster)[victim]
    killed_at: list[float] = []
    recovered_before: list[float] = []

    async def kill_web_master(progress: float) -> None:
        if progress >= 0.4 and not killed_at:
            # records Faust dropped at the group's start are read again from Kafka too
            # (processor.py, _fill_gap): only what is read again from now on is the kill's
            recovered_before.append(worker.metric_or_zero("support_recovered_records_total"))
            os.kill(pid, signal.SIGKILL)
            killed_at.append(time.monotonic())

    offsets = await publish(deployment, traffic, seconds=6, during=kill_web_master)
    assert killed_at, "the master was never killed"
    # its replica took over; with no replica left it cannot confirm writes: bring the killed
    # node back (it rejoins as the new master's replica) so the worker can go on
    await asyncio.sleep(max(0.0, killed_at[0] + 6 - time.monotonic()))
    assert victim not in masters(cluster), "the killed master's replica did not take over"
    subprocess.run([str(SCRIPT), "start"], env=cluster, check=True, capture_output=True, timeout=90)
    await wait_applied(client, deployment, offsets, seconds=120)
    assert await bucket_state(client) == recompute(traffic, now)
    log = worker.log.read_text()
    assert worker.process.poll() is None, log[-3000:]
    # it waited for a replica while the new master had none...
    assert "0 of 1 replicas confirmed" in log, log[-3000:]
    # ...so no acknowledged write was lost: nothing had to be read again from Kafka (without
    # the wait, the records the replica lacked are read again behind the watermark)
    recovered = worker.metric_or_zero("support_recovered_records_total")
    assert recovered == recovered_before[0], log[-3000:]


def test_redis_cluster_sh_says_what_it_is() -> None:
    said = subprocess.run([str(SCRIPT), "bogus"], capture_output=True, check=False)
    assert said.returncode == 2
    assert b"usage:" in said.stderr
    helped = subprocess.run([str(SCRIPT), "--help"], capture_output=True, check=False)
    assert helped.returncode == 0 and b"usage:" in helped.stderr
    env = {**os.environ, "ROI_REDIS_CLUSTER_PORT": "65533"}  # the last node would be 65538
    refused = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, check=False)
    assert refused.returncode == 2 and b"1024 to 65530" in refused.stderr
    assert Path(SCRIPT).stat().st_mode & 0o111


def test_the_wrong_cluster_setting_is_refused_with_one_line(cluster: dict[str, str]) -> None:
    """A plain client at a cluster node would pause on MOVED for ever, a cluster client at a
    plain server cannot start: both are settings to fix, said at start (exit 2)."""
    plain_redis = redis_url().rsplit("/", 1)[0] + "/0"  # the stack's Redis
    cases = [
        (f"redis://127.0.0.1:{FIRST_PORT}/0", "false", "set ROI_REDIS_CLUSTER=true"),
        (plain_redis, "true", "set ROI_REDIS_CLUSTER=false"),
    ]
    for url, is_cluster, fix in cases:
        for command in ("report", "worker"):
            env = {**os.environ, "ROI_REDIS_URL": url, "ROI_REDIS_CLUSTER": is_cluster}
            env.pop("REDIS_URL", None)
            said = subprocess.run(
                [str(ROOT / ".venv/bin/roi-metrics"), command],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            lines = [line for line in said.stderr.splitlines() if line.startswith("error:")]
            assert said.returncode == 2, said.stderr[-2000:]
            assert len(lines) == 1 and fix in lines[0], said.stderr[-2000:]
            assert "Traceback" not in said.stderr

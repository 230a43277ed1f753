"""What a Redis Cluster failover loses: a master killed with kill -9 during traffic, with the
default acknowledgement (ROI_REDIS_WAIT_REPLICAS=0) and with WAIT for one replica (=1).

    make stack-up && .venv/bin/python -m bench.failover            # 3 runs of each mode
    .venv/bin/python -m bench.failover --runs 5 --conversations 400 --seconds 8

Each run: a fresh cluster of three masters and three replicas (deploy/local/redis-cluster.sh,
ports 17201-17206, a folder of its own), four channel topics on the local stack's Kafka, one
worker on the cluster. The seeded traffic of the integration tests is published over
`--seconds`; at 40 % the master holding the `web` channel's slot is killed (its replica
takes over after the 2-second node timeout) and brought back 6 s later (it rejoins as a
replica). A master killed on one host has usually sent its replica everything (the kernel
delivers what it wrote); with `--cut-replica`, from 20 % of the traffic what the master
sends its replica is dropped (iptables, loopback only, root), as a network that stops
delivering or a host that dies with data unsent would. Once every partition's
watermark reached its last record, every valid event of the traffic is looked up by its
dedup mark: a missing mark is an event the figures lost.
The run also says whether every bucket equals the independent recomputation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio.cluster import RedisCluster
from roi_metrics.state import keys
from roi_metrics.state.store import PartitionRead, StateStore

from bench.throughput import BOOTSTRAP
from tests.integration.harness import Deployment
from tests.integration.pipeline import bucket_state, create_channels, publish, wait_applied
from tests.integration.traffic import Generator, Traffic, recompute

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy/local/redis-cluster.sh"
FIRST_PORT = int(os.environ.get("ROI_BENCH_CLUSTER_PORT", "17201"))
"""The benchmark's cluster: this port and the next 5 (17201 unless ROI_BENCH_CLUSTER_PORT)."""
CHANNELS = ["whatsapp", "slack", "web", "voice"]  # on all three masters


def control(env: dict[str, str], action: str) -> str:
    said = subprocess.run(
        [str(SCRIPT), action], check=False, env=env, capture_output=True, timeout=120
    )
    if said.returncode:
        sys.exit(f"error: redis-cluster.sh {action}: {said.stderr.decode().strip()}")
    return said.stdout.decode()


async def lost_events(client: RedisCluster, traffic: Traffic) -> dict[str, int]:
    """Valid events of `traffic` whose dedup mark is missing, by channel."""
    store = StateStore(client, 86_400, 2_592_000)
    wanted: dict[str, set[tuple[str, str]]] = {}
    for labelled in traffic.events:
        if labelled.valid:
            wanted.setdefault(labelled.channel, set()).add(
                (labelled.body["source"], labelled.body["id"])
            )
    lost: dict[str, int] = {}
    for channel, identities in wanted.items():
        marks = sorted(identities)
        for start in range(0, len(marks), 1000):
            chunk = marks[start : start + 1000]
            [state] = await store.read([PartitionRead(channel, "", 0, [], chunk)])
            missing = len(chunk) - len(state.seen)
            if missing:
                lost[channel] = lost.get(channel, 0) + missing
    return lost


def _replica_of(master: int, folder: Path) -> int:
    """The pid of `master`'s replica."""
    for port in range(FIRST_PORT, FIRST_PORT + 6):
        said = subprocess.run(
            ["redis-cli", "-p", str(port), "role"], capture_output=True, text=True, check=False
        ).stdout.split()
        if said[:1] == ["slave"] and said[2:3] == [str(master)]:
            return int((folder / "redis-cluster" / str(port) / "redis.pid").read_text())
    sys.exit(f"error: no replica of the master on port {master}")


def _iptables(action: str, rule: list[str]) -> None:
    subprocess.run(["iptables", action, "OUTPUT", *rule], check=True, capture_output=True)


def _cut(master: int, replica: int) -> list[str]:
    """Drop what the master sends its replica on their replication link (loopback only),
    as a network that stops delivering would: the master goes on acknowledging writes its
    replica never gets. Returns the iptables rule (to delete it)."""
    said = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dport", "=", f":{master}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in said.splitlines():
        if f"pid={replica}," in line:
            local_port = line.split()[2].rsplit(":", 1)[1]  # Local Address:Port
            rule = ["-o", "lo", "-p", "tcp", "--sport", str(master), "--dport", local_port]
            rule += ["-j", "DROP"]
            _iptables("-I", rule)
            return rule
    sys.exit(f"error: no replication link from the replica (pid {replica}) to port {master}")


recovered: list[int] = []
"""Per run: the records the worker found missing behind its watermark and read again."""


async def one_run(
    mode: int, seed: int, conversations: int, seconds: float, cut: bool
) -> tuple[dict[str, int], bool]:
    with tempfile.TemporaryDirectory(prefix="roi-failover-") as folder:
        env = {
            **os.environ,
            "ROI_STATE_DIR": folder,
            "ROI_REDIS_CLUSTER_PORT": str(FIRST_PORT),
        }
        control(env, "start")
        url = f"redis://127.0.0.1:{FIRST_PORT}/0"
        client = RedisCluster.from_url(url)
        await client.initialize()
        deployment = Deployment(BOOTSTRAP, url, Path(folder))
        rules: list[list[str]] = []
        try:
            now = int(time.time())
            traffic = Generator(seed=seed, now=now, channels=CHANNELS).traffic(conversations)
            await create_channels(deployment, CHANNELS)
            deployment.start_worker(
                env={"ROI_REDIS_CLUSTER": "true", "ROI_REDIS_WAIT_REPLICAS": str(mode)}
            )
            victim = client.get_node_from_key(keys.watermarks("web")).port
            pid = next(
                int(line.split()[1])
                for line in control(env, "masters").splitlines()
                if int(line.split()[0]) == victim
            )
            replica = _replica_of(victim, Path(folder)) if cut else None
            killed: list[float] = []

            async def kill(progress: float) -> None:
                if replica is not None and progress >= 0.2 and not killed and not rules:
                    rules.append(_cut(victim, replica))
                if progress >= 0.4 and not killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(time.monotonic())

            offsets = await publish(deployment, traffic, seconds=seconds, during=kill)
            await asyncio.sleep(max(0.0, killed[0] + 6 - time.monotonic()))
            for rule in rules:  # the replica took over what it had; the link may heal now
                _iptables("-D", rule)
            rules.clear()
            control(env, "start")  # the killed node rejoins as a replica
            await wait_applied(client, deployment, offsets, seconds=180)
            exact = await bucket_state(client) == recompute(traffic, now)
            log = deployment.workers[0].log.read_text()
            found = re.findall(r": (\d+) records (?:before|after) offset", log)
            recovered.append(sum(int(count) for count in found))
            return await lost_events(client, traffic), exact
        finally:
            for rule in rules:
                _iptables("-D", rule)
            deployment.stop_all()
            await client.aclose()
            control(env, "stop")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode (3)")
    parser.add_argument("--conversations", type=int, default=300, help="per channel (300)")
    parser.add_argument("--seconds", type=float, default=8.0, help="publishing time (8)")
    parser.add_argument(
        "--cut-replica",
        action="store_true",
        help="from 20 %% of the traffic, drop what the master sends its replica (iptables on "
        "loopback; root): the writes it acknowledges then never reach the replica",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.conversations < 1 or args.seconds <= 0:
        parser.error("--runs and --conversations must be at least 1, --seconds above 0")
    results: dict[int, list[tuple[int, bool]]] = {0: [], 1: []}
    for run in range(args.runs):
        for mode in (0, 1):
            lost, exact = await one_run(
                mode, 100 + run, args.conversations, args.seconds, args.cut_replica
            )
            results[mode].append((sum(lost.values()), exact))
            where = f" ({', '.join(f'{c}: {n}' for c, n in sorted(lost.items()))})" if lost else ""
            print(
                f"run {run + 1}/{args.runs}  ROI_REDIS_WAIT_REPLICAS={mode}: "
                f"{sum(lost.values())} events lost{where}, buckets "
                f"{'exact' if exact else 'NOT exact'}; {recovered[-1]} records read again "
                "from Kafka behind a watermark",
                flush=True,
            )
    valid = sum(
        e.valid
        for e in Generator(100, int(time.time()), CHANNELS).traffic(args.conversations).events
    )
    print(f"\nabout {valid} valid events per run, a master killed at 40 % of the traffic")
    for mode, runs in results.items():
        counts = [count for count, _ in runs]
        exact_runs = sum(ok for _, ok in runs)
        print(
            f"ROI_REDIS_WAIT_REPLICAS={mode}: lost {counts} (total {sum(counts)}); "
            f"exact in {exact_runs} of {len(runs)} runs"
        )


if __name__ == "__main__":
    asyncio.run(main())

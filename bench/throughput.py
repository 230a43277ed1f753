"""End-to-end throughput of the worker against baselines, on the local stack.

    .venv/bin/python -m bench.throughput            # the full run reported in docs/performance.md
    .venv/bin/python -m bench.throughput --quick    # a smaller run

Publishes realistic events to fresh topics, then measures, one process at a time:
the worker on single-event records, the worker on records of 100 events (with its RSS
sampled over the whole run), a bare Faust agent loop that only decodes JSON, a naive
Faust design with hopping windowed tables, and Quix Streams (bench/quix_baseline.py: a
1-minute tumbling window sum with RocksDB state, in a virtualenv of its own under
.state/bench, made on first use). Prints the rates and the ratios to the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from roi_metrics.settings import Settings
from roi_metrics.worker.app import ensure_topic

from bench.common import local_redis, worker_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
console = Console()


def events(count: int, now: float) -> list[dict[str, object]]:
    """A realistic mix: each conversation starts, costs, resolves and is rated."""
    made: list[dict[str, object]] = []
    for number in range(count):
        conversation, step = f"c{number // 4}", number % 4
        kind, data = [
            ("conversation.started", {"handled_by": "ai"}),
            ("cost.recorded", {"amount": "0.0125", "currency": "USD", "category": "ai_usage"}),
            ("conversation.resolved", {"resolved_by": "ai", "confirmation": "assumed"}),
            ("csat.recorded", {"score": 4}),
        ][step]
        made.append(
            {
                "specversion": "1.0",
                "id": f"bench-{number}",
                "source": "/web/bench",
                "type": f"support.{kind}",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600 + number % 500)),
                "subject": conversation,
                "data": data,
            }
        )
    return made


@dataclass
class Run:
    name: str
    events: int
    seconds: float
    rss_mib: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def publish(topic: str, made: list[dict[str, object]], per_record: int) -> dict[int, int]:
    """Publish and return each partition's last offset."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    last: dict[int, int] = {}
    groups = [made[i : i + per_record] for i in range(0, len(made), per_record)]
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"publishing to {topic}", total=len(groups))
            for start in range(0, len(groups), 2000):
                pending = []
                for group in groups[start : start + 2000]:
                    value = json.dumps(group[0] if per_record == 1 else group).encode()
                    key = str(group[0]["subject"]).encode()
                    pending.append(await producer.send(topic, key=key, value=value))
                for delivery in pending:
                    meta = await delivery
                    last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
                progress.advance(task, len(pending))
    finally:
        await producer.stop()
    return last


async def run_worker(name: str, prefix: str, last: dict[int, int], count: int) -> Run:
    """Run the worker on `prefix`web until every partition is applied; time from the first
    applied batch to the last."""
    channel, db = "web", 12
    redis_url = f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{db}"
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    env = worker_env(
        BOOTSTRAP,
        redis_url,
        prefix,
        f"bench-{uuid.uuid4().hex[:6]}",
        worker_port="19475",
        data_dir="/tmp/bench-faust",
        discovery_interval_seconds="1",
    )
    process = subprocess.Popen(
        [str(BIN / "roi-metrics"), "worker", "--log-level", "warn"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watch = psutil.Process(process.pid)
    topic = prefix + channel
    first = None
    rss: list[float] = []
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(name, total=sum(v + 1 for v in last.values()))
            while True:
                marks = await client.hgetall(f"roi:{{{channel}}}:wm")
                done = {int(k.decode().rsplit(":", 1)[1]): int(v) for k, v in marks.items()}
                if done and first is None:
                    first = time.perf_counter()
                if first is not None:
                    rss.append(watch.memory_info().rss / 2**20)
                progress.update(task, completed=sum(done.get(p, -1) + 1 for p in last))
                if all(done.get(p, -1) >= offset for p, offset in last.items()):
                    break
                if process.poll() is not None:
                    raise RuntimeError(f"{name}: the worker exited")
                await asyncio.sleep(0.05)
    finally:
        process.terminate()
        process.wait(60)
        await client.aclose()
    assert first is not None and topic
    return Run(name, count, time.perf_counter() - first, rss)


def run_baseline(mode: str, topic: str, count: int) -> Run:
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_EVENTS": str(count),
        "BENCH_TOPIC": topic,
        "BENCH_BOOTSTRAP": BOOTSTRAP,
        "BENCH_APP": f"bench-{mode}-{uuid.uuid4().hex[:6]}",
    }
    command = [str(BIN / "faust"), "-A", "bench.baselines", "worker", "-l", "warn"]
    found = _baseline(f"{mode} Faust baseline", [*command, "--without-web"], env, count)
    return Run(f"Faust {mode} baseline", int(found.group(1)), float(found.group(2)))


def _baseline(name: str, command: list[str], env: dict[str, str], count: int) -> re.Match[str]:
    """Run a baseline to its `DONE <events> <seconds>` line (on either stream: Faust logs
    to stdout); RuntimeError with its output's end when it never says it."""
    with console.status(f"{name} on {count:,} events"):
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False
        )
    found = re.search(r"DONE (\d+) ([0-9.]+)", result.stdout + result.stderr)
    if found is None:
        raise RuntimeError(f"{name} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return found


QUIX_VERSION = "3.28.1"
QUIX_VENV = ROOT / ".state" / "bench" / f"quix-{QUIX_VERSION}"


def quix_python() -> Path:
    """The Python of a virtualenv of its own with Quix Streams, made on first use. Not the
    project's: Quix Streams 3.28 requires pydantic < 2.14 and would change the service's."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        with console.status(f"installing Quix Streams {QUIX_VERSION} into {QUIX_VENV}"):
            subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, f"quixstreams=={QUIX_VERSION}"], check=True)
    return python


def run_quix(topic: str, count: int) -> Run:
    env = {
        **os.environ,
        "BENCH_EVENTS": str(count),
        "BENCH_TOPIC": topic,
        "BENCH_BOOTSTRAP": BOOTSTRAP,
    }
    python = quix_python()
    command = [str(python), str(ROOT / "bench" / "quix_baseline.py")]
    found = _baseline("Quix Streams baseline", command, env, count)
    return Run("Quix Streams, tumbling window", int(found.group(1)), float(found.group(2)))


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--single", type=int, default=100_000, help="events in single-event records"
    )
    parser.add_argument("--batched", type=int, default=1_000_000, help="events in records of 100")
    parser.add_argument("--naive", type=int, default=5_000, help="events for the naive baseline")
    parser.add_argument("--quick", action="store_true", help="20k single, 200k batched, 2k naive")
    args = parser.parse_args()
    if args.quick:
        args.single, args.batched, args.naive = 20_000, 200_000, 2_000
    run = uuid.uuid4().hex[:6]
    settings = Settings(kafka_bootstrap_servers=BOOTSTRAP)
    single_prefix, batch_prefix = f"bench{run}s.", f"bench{run}b."
    await (await local_redis(12)).aclose()
    try:
        for topic in (single_prefix + "web", batch_prefix + "web"):
            await ensure_topic(settings, topic, partitions=4)
    except KafkaConnectionError:
        sys.exit(
            f"error: Kafka is not reachable at {BOOTSTRAP}; start the stack with `make stack-up`"
        )
    now = time.time()
    single_last = await publish(single_prefix + "web", events(args.single, now), 1)
    batch_last = await publish(batch_prefix + "web", events(args.batched, now), 100)

    bare = run_baseline("bare", single_prefix + "web", args.single)
    single = await run_worker(
        "worker, single-event records", single_prefix, single_last, args.single
    )
    batched = await run_worker(
        "worker, records of 100 events", batch_prefix, batch_last, args.batched
    )
    naive = run_baseline("naive", single_prefix + "web", args.naive)
    quix = run_quix(single_prefix + "web", args.single)
    report(bare, single, batched, naive, quix)


def report(bare: Run, single: Run, batched: Run, naive: Run, quix: Run) -> None:
    table = Table(title="End-to-end throughput, one process each (2 cores, loopback)")
    for column in ("run", "events", "seconds", "events/s"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for item in (bare, single, batched, naive, quix):
        table.add_row(item.name, f"{item.events:,}", f"{item.seconds:.2f}", f"{item.rate:,.0f}")
    console.print(table)
    rss = batched.rss_mib
    shares = (0.1, 0.25, 0.5, 0.75, 1.0)
    curve = {share: rss[min(len(rss) - 1, int(len(rss) * share))] for share in shares}
    warm = curve[0.25]  # after a quarter of the events: buffers and caches have filled
    growth = (max(rss[len(rss) // 4 :]) - warm) / warm
    checks = [
        (
            "single-event records / bare loop",
            single.rate / bare.rate,
            ">= 0.9",
            single.rate / bare.rate >= 0.9,
        ),
        (
            "single-event records / Quix Streams",
            single.rate / quix.rate,
            ">= 1",
            single.rate / quix.rate >= 1,
        ),
        ("records of 100, events/s", batched.rate, ">= 100,000", batched.rate >= 100_000),
        (
            "single-event records / naive",
            single.rate / naive.rate,
            ">= 30",
            single.rate / naive.rate >= 30,
        ),
        ("RSS growth from 25 % of the run", growth, "<= 10 %", growth <= 0.10),
    ]
    for name, value, target, ok in checks:
        shown = (
            f"{value:,.0f}" if value > 100 else f"{value:.2f}" if name[0] != "R" else f"{value:.1%}"
        )
        console.print(f"{'met ' if ok else 'MISSED'}  {name}: {shown} (target {target})")
    shown = ", ".join(f"{int(share * 100)} %: {mib:.0f}" for share, mib in curve.items())
    console.print(f"RSS of the batched run (MiB) by share of the run: {shown}; peak {max(rss):.0f}")


BOOTSTRAP = os.environ.get(
    "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('ROI_KAFKA_PORT', '19092')}"
)

if __name__ == "__main__":
    asyncio.run(main())

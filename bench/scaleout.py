"""Scale-out on one machine: 1, 2 and 3 workers on one channel topic of 12 partitions.

    make stack-up && .venv/bin/python -m bench.scaleout              # 60k single-event records
    .venv/bin/python -m bench.scaleout --events 30000 --per-record 100 --workers 1 2

For each worker count: a fresh topic holding `--events` events (records of `--per-record`),
then that many `roi-metrics worker` processes started together in one group; timed from the
first applied batch to the moment every partition's watermark reached its last record. The
CPU the workers, Kafka and Redis used over the run is sampled (psutil), so the report says
when the machine, not the design, is the limit: on 2 cores the workers share them with the
broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid

import psutil
import redis.asyncio as aioredis
from aiokafka.errors import KafkaConnectionError
from roi_metrics.settings import Settings
from roi_metrics.worker.app import ensure_topic

from bench.common import local_redis, worker_env
from bench.throughput import BIN, BOOTSTRAP, events, publish

DB = 12
PARTITIONS = 12


def _server(marker: str) -> list[psutil.Process]:
    """The local stack's process whose command line holds `marker`."""
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if marker in " ".join(process.info["cmdline"] or [])
    ]


async def one(workers: int, total: int, per_record: int) -> tuple[float, dict[str, float]]:
    """events/s and the CPU (cores) each part used, with `workers` workers."""
    prefix = f"scale{uuid.uuid4().hex[:6]}."
    topic = prefix + "web"
    await ensure_topic(Settings(kafka_bootstrap_servers=BOOTSTRAP), topic, partitions=PARTITIONS)
    last = await publish(topic, events(total, time.time()), per_record)
    redis_url = f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{DB}"
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    group = f"bench-scale-{uuid.uuid4().hex[:6]}"
    processes = []
    for index in range(workers):
        env = worker_env(
            BOOTSTRAP,
            redis_url,
            prefix,
            group,
            worker_port=str(19480 + index),
            data_dir=f"/tmp/bench-scale-{index}",
            discovery_interval_seconds="1",
        )
        processes.append(
            subprocess.Popen(
                [str(BIN / "roi-metrics"), "worker", "--log-level", "warn"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    watched = {
        "workers": [psutil.Process(p.pid) for p in processes],
        "kafka": _server("kafka.Kafka"),
        "redis": _server("redis-server 127.0.0.1:"),
    }
    first = None
    try:
        while True:
            marks = await client.hgetall("roi:{web}:wm")
            done = {int(k.decode().rsplit(":", 1)[1]): int(v) for k, v in marks.items()}
            if done and first is None:
                first = time.perf_counter()
                before = {
                    name: sum(sum(p.cpu_times()[:2]) for p in group_)
                    for name, group_ in watched.items()
                }
            if all(done.get(p, -1) >= offset for p, offset in last.items()):
                break
            if any(p.poll() is not None for p in processes):
                sys.exit("error: a worker exited during the run")
            await asyncio.sleep(0.05)
        assert first is not None
        seconds = time.perf_counter() - first
        cores = {
            name: (sum(sum(p.cpu_times()[:2]) for p in group_) - before[name]) / seconds
            for name, group_ in watched.items()
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
        await client.aclose()
    return total / seconds, cores


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=60_000, help="events per run (60,000)")
    parser.add_argument("--per-record", type=int, default=1, help="events per record (1)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 3], help="worker counts (1 2 3)"
    )
    args = parser.parse_args()
    if args.events < 1 or not 1 <= args.per_record <= 1000 or min(args.workers) < 1:
        parser.error("--events and --workers at least 1, --per-record from 1 to 1000")
    await (await local_redis(DB)).aclose()
    try:
        await ensure_topic(Settings(kafka_bootstrap_servers=BOOTSTRAP), "bench.scale.probe")
    except KafkaConnectionError:
        sys.exit(f"error: Kafka is not reachable at {BOOTSTRAP}; start it with `make stack-up`")
    print(
        f"{os.cpu_count()} cores; {args.events:,} events in records of {args.per_record}; "
        f"{PARTITIONS} partitions"
    )
    for workers in args.workers:
        rate, cores = await one(workers, args.events, args.per_record)
        used = ", ".join(f"{name} {value:.2f}" for name, value in cores.items())
        print(f"{workers} worker(s): {rate:,.0f} events/s; CPU cores used: {used}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())

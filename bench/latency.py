"""Event-to-figure latency on the local stack: how long after an event is published the
exporter's figure includes it, under a steady rate.

    make stack-up && .venv/bin/python -m bench.latency              # 1,000 events/s for 30 s
    .venv/bin/python -m bench.latency --rate 2000 --seconds 20

A fresh one-partition channel topic; a worker and an exporter started as the deployment runs
them (`roi-metrics worker`, `roi-metrics exporter`, default settings). Every event starts a
new conversation, so `support_conversations{channel="web",window="all"}` counts them; one
partition is applied in publish order, so once the figure reads k, events 1..k are in it.
The publisher stamps each event as it hands it to the producer; a poller scrapes /metrics
every 50 ms and stamps each answer as it arrives. An event's latency is the first answer
that includes it minus its stamp: an upper bound, by at most 50 ms and one scrape. (Scraping
back to back, 300 times a second, starved the worker of CPU on 2 cores and tripled the
figures.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from roi_metrics.settings import Settings
from roi_metrics.worker.app import ensure_topic

from bench.common import local_redis, worker_env
from bench.throughput import BOOTSTRAP

BIN = Path(sys.executable).parent
DB = 12
WORKER_PORT, EXPORTER_PORT = 19477, 19478
POLL_SECONDS = 0.05
FIGURE = re.compile(rb'^support_conversations\{channel="web",window="all"\} (\S+)$', re.M)


def event(number: int, now: float) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"lat-{number}",
            "source": "/web/latency",
            "type": "support.conversation.started",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "subject": f"c-{number}",
            "data": {"handled_by": "ai"},
        }
    ).encode()


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(BIN / "roi-metrics"), command, "--log-level", "warn"]
            if command == "worker"
            else [str(BIN / "roi-metrics"), command],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def fetch(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body: bytes = reply.read()
            return body
    except OSError:
        return None


async def wait_ready(url: str, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while await asyncio.to_thread(fetch, url) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"error: the {what} did not become ready (log: {log})")
        await asyncio.sleep(0.2)


async def publish(topic: str, rate: int, seconds: float, stamps: list[float]) -> None:
    """Events 1..rate*seconds at a steady rate, in slices of 10 ms; stamps[k] is event k's."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=1
    )
    await producer.start()
    try:
        total, per_slice = int(rate * seconds), max(1, rate // 100)
        began, number = time.perf_counter(), 0
        while number < total:
            for _ in range(min(per_slice, total - number)):
                number += 1
                stamps.append(time.perf_counter())
                await producer.send(topic, value=event(number, time.time()))
            delay = began + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
    finally:
        await producer.stop()


async def poll(url: str, total: int, seen: list[tuple[float, int]], scrapes: list[float]) -> None:
    """Scrape every POLL_SECONDS until the figure reads `total`; (arrival, figure) per answer."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        asked = time.perf_counter()
        body = await asyncio.to_thread(fetch, url)
        arrived = time.perf_counter()
        scrapes.append(arrived - asked)
        found = FIGURE.search(body or b"")
        count = int(float(found.group(1))) if found else 0
        seen.append((arrived, count))
        if count >= total:
            return
        await asyncio.sleep(POLL_SECONDS)  # back to back, the scrapes would starve the worker
    sys.exit("error: the figure never reached the events published (see the worker's log)")


def latencies(stamps: list[float], seen: list[tuple[float, int]]) -> list[float]:
    """Per event, the first answer that includes it minus its stamp."""
    found, answer = [], 0
    for number, stamp in enumerate(stamps, start=1):
        while seen[answer][1] < number:
            answer += 1
        found.append(seen[answer][0] - stamp)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long to publish")
    args = parser.parse_args()
    if args.rate < 1 or args.seconds <= 0:
        parser.error("--rate must be >= 1 and --seconds > 0")
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    await (await local_redis(DB)).aclose()
    try:
        await ensure_topic(Settings(kafka_bootstrap_servers=BOOTSTRAP), prefix + "web", 1)
    except KafkaConnectionError:
        sys.exit(
            f"error: Kafka is not reachable at {BOOTSTRAP}; start the stack with `make stack-up`"
        )
    redis_url = f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{DB}"
    env = worker_env(
        BOOTSTRAP,
        redis_url,
        prefix,
        f"bench-{prefix}",
        worker_port=str(WORKER_PORT),
        exporter_port=str(EXPORTER_PORT),
        data_dir=f"/tmp/bench-latency-{prefix}",
    )
    logs = Path("/tmp") / f"bench-latency-{prefix}"
    logs.mkdir(exist_ok=True)
    worker = start("worker", env, logs / "worker.log")
    exporter = start("exporter", env, logs / "exporter.log")
    metrics = f"http://127.0.0.1:{EXPORTER_PORT}/metrics"
    try:
        await wait_ready(
            f"http://127.0.0.1:{WORKER_PORT}/readyz", "worker", worker, logs / "worker.log"
        )
        await wait_ready(metrics, "exporter", exporter, logs / "exporter.log")
        stamps: list[float] = []
        seen: list[tuple[float, int]] = []
        scrapes: list[float] = []
        total = int(args.rate * args.seconds)
        settings = Settings()  # what the worker reads from this environment
        print(
            f"publishing {total:,} events at {args.rate:,}/s to {prefix}web (1 partition); "
            f"the worker's fetch hold {settings.consumer_fetch_wait_seconds} s, batch wait "
            f"{settings.batch_wait_seconds} s"
        )
        await asyncio.gather(
            publish(prefix + "web", args.rate, args.seconds, stamps),
            poll(metrics, total, seen, scrapes),
        )
        applied = await asyncio.to_thread(fetch, f"http://127.0.0.1:{WORKER_PORT}/metrics")
    finally:
        for process in (worker, exporter):
            process.terminate()
        for process in (worker, exporter):
            process.wait(60)
        client = aioredis.Redis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
    found = latencies(stamps, seen)
    ms = [value * 1000 for value in found]
    print(
        f"event to figure, {len(ms):,} events: p50 {percentile(ms, 0.5):.0f} ms, "
        f"p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms "
        f"(target p99 <= 2000 ms: {'met' if percentile(ms, 0.99) <= 2000 else 'missed'})"
    )
    slice_ = max(1, args.rate * 5)
    trend = [f"{percentile(ms[i : i + slice_], 0.5):.0f}" for i in range(0, len(ms), slice_)]
    tails = [f"{percentile(ms[i : i + slice_], 0.99):.0f}" for i in range(0, len(ms), slice_)]
    print(f"p50 by 5-second slice of publishing (ms): {' '.join(trend)}")
    print(f"p99 by 5-second slice of publishing (ms): {' '.join(tails)}")
    sums = {
        name: float(value)
        for name, value in re.findall(
            rb"^support_batch_apply_seconds_(sum|count) (\S+)$", applied or b"", re.M
        )
    }
    if sums.get(b"count"):
        print(
            f"worker: {sums[b'count']:.0f} batches, {len(ms) / sums[b'count']:.0f} events and "
            f"{sums[b'sum'] / sums[b'count'] * 1000:.1f} ms to apply each on average"
        )
    print(
        f"scrapes: {len(scrapes):,}, median {statistics.median(scrapes) * 1000:.1f} ms "
        f"(each latency is an upper bound by at most 50 ms and one scrape)"
    )


if __name__ == "__main__":
    asyncio.run(main())

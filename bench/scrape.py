"""How long the exporter takes to render /metrics, with every bucket of every window full.

    .venv/bin/python -m bench.scrape [--channels 50] [--scrapes 300] [--busy | --cold]

Fills database 11 of the local stack's Redis with `--channels` channels, each with all 60
minute, 24 hour and 30 day buckets and its cumulative hash holding every counter (the
largest state a scrape can meet), then times, after one warm-up scrape (the reader then
holds the closed buckets, as a running exporter does):
- in process: the collector's read of Redis plus computing every figure and rendering the
  text exposition, as the exporter's /metrics does;
- over HTTP: GET /metrics on a real `roi-metrics exporter` process, as Prometheus does.
By default no bucket is written between scrapes, so each channel's sums stand (an idle
channel). Pass `--busy` to write every channel's current buckets before each scrape, as an
apply does (not timed): the most a scrape reads without late events. Pass `--cold` to time a
fresh reader at every scrape (every bucket read: the first scrape of an exporter, or the one
after late events wrote closed buckets).
Targets (issue 13): with 50 channels, a p99 <= 20 ms and a cold scrape <= 30 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import redis
from rich.console import Console
from rich.progress import track
from roi_metrics.cardfile import load_cost_card
from roi_metrics.domain.events import Counter
from roi_metrics.domain.timebuckets import ROLLING_WINDOWS
from roi_metrics.export.collector import RoiCollector
from roi_metrics.state import keys
from roi_metrics.state.reader import StateReader

from tests.integration.harness import EXECUTABLE, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
DB = 11
console = Console()


def fill(client: redis.Redis, channels: int, now: int) -> int:
    """Every bucket any window reads, for every channel; returns the number of hashes."""
    rng = random.Random(7)
    hashes = 0
    pipe = client.pipeline(transaction=False)
    for index in range(channels):
        channel = f"channel{index:02d}"
        pipe.sadd(keys.CHANNELS, channel)
        pipe.set(keys.bucket_writes(channel), uuid.uuid4().hex)  # as the apply script does
        buckets = {
            (rolling.resolution.name, start)
            for rolling in ROLLING_WINDOWS
            for start in rolling.bucket_starts(now)
        }
        buckets.add(("all", 0))
        for resolution, start in buckets:
            counts = {counter.value: rng.randint(1, 10_000) for counter in Counter}
            pipe.hset(f"roi:{{{channel}}}:b:{resolution}:{start}", mapping=counts)
            hashes += 1
    pipe.execute()
    return hashes


def summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{label}: median {statistics.median(ordered) * 1000:.2f} ms, "
        f"p99 {p99 * 1000:.2f} ms, max {ordered[-1] * 1000:.2f} ms ({len(ordered)} scrapes)"
    )


def write_every_channel(client: redis.Redis, channels: int) -> None:
    """One event's worth in every channel's current buckets, as an apply writes it (the
    counters and a new bucket-writes token): the busiest case, where every channel was
    written since the last scrape."""
    now = int(time.time())
    pipe = client.pipeline(transaction=False)
    for index in range(channels):
        channel = f"channel{index:02d}"
        for rolling in ROLLING_WINDOWS:
            bucket = (rolling.resolution.name, rolling.bucket_starts(now)[-1])
            pipe.hincrby(keys.bucket(channel, bucket), Counter.CONVERSATIONS.value, 1)
        pipe.hincrby(keys.bucket(channel, ("all", 0)), Counter.CONVERSATIONS.value, 1)
        pipe.set(keys.bucket_writes(channel), uuid.uuid4().hex)
    pipe.execute()


def in_process(
    client: redis.Redis, scrapes: int, cold: bool, writes: int
) -> tuple[list[float], bytes]:
    """What the exporter does per scrape: read Redis, compute the figures, write the text
    (RoiCollector.exposition)."""
    card = load_cost_card(ROOT / "deploy" / "costs.toml")
    collector = RoiCollector(card, StateReader(client).snapshot)
    body = collector.exposition()  # warm: the reader learns channels and buckets
    gc.freeze()  # as the exporter does before it serves (roi_metrics/export/http.py)
    timings = []
    for _ in track(range(scrapes), description="in process", console=console):
        if writes:
            write_every_channel(client, writes)  # not timed
        started = time.perf_counter()
        if cold:
            collector = RoiCollector(card, StateReader(client).snapshot)
        body = collector.exposition()
        timings.append(time.perf_counter() - started)
    return timings, body


def over_http(url: str, scrapes: int, client: redis.Redis, writes: int) -> list[float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROI_")}
    env.update(ROI_REDIS_URL=url, ROI_COST_CARD=str(ROOT / "deploy" / "costs.toml"))
    process = subprocess.Popen(
        [str(EXECUTABLE), "exporter", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = f"http://127.0.0.1:{port}/metrics"
    try:
        try:
            wait_http(target, 30, "the exporter")
        except AssertionError as error:
            sys.exit(f"error: {error}")
        timings = []
        for _ in track(range(scrapes), description="over HTTP", console=console):
            if writes:
                write_every_channel(client, writes)  # not timed
            started = time.perf_counter()
            with urllib.request.urlopen(target, timeout=5) as reply:
                reply.read()
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--cold", action="store_true", help="a fresh reader every scrape")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="write every channel's current buckets before each scrape (not timed)",
    )
    args = parser.parse_args()
    url = f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{DB}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError:
        sys.exit(f"error: Redis is not reachable at {url}; start the stack with `make stack-up`")
    hashes = fill(client, args.channels, int(time.time()))
    writes = args.channels if args.busy else 0
    local, body = in_process(client, args.scrapes, args.cold, writes)
    http = [] if args.cold else over_http(url, args.scrapes, client, writes)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    console.print(
        f"{args.channels} channels, {hashes} bucket hashes, /metrics: {series} series, "
        f"{len(body) / 1024:.0f} KiB"
    )
    state = "cold: every bucket read" if args.cold else "warm"
    state += ", every channel written before each scrape" if args.busy else ""
    console.print(summary(f"in process, {state} (Redis read + figures + text)", local))
    if http:
        console.print(summary(f"over HTTP, {state} (GET /metrics on the exporter)", http))
    client.flushdb()


if __name__ == "__main__":
    main()

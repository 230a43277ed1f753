"""A flood of large invalid records through a real worker: time to move past them and the
worker's peak memory (issue 9: 500 records of 1 MiB invalid events once took 13 s of
decoding on the event loop and 1.5 GB of RSS, batches being bounded by record count only).

    .venv/bin/python -m bench.hostile                       # 500 records of ~1 MB
    .venv/bin/python -m bench.hostile --records 200 --size 500000
    .venv/bin/python -m bench.hostile --per-record 1000        # batches of invalid events

Each record is one event with a bad `specversion` and a large extension attribute: the
worker parses all of it, dead-letters it (`invalid_envelope`, the whole record kept as far
as the dead-letter limit allows) and moves on. Needs the local stack (`make stack-up`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from rich.console import Console
from roi_metrics.ingest.topics import ensure_topic
from roi_metrics.settings import Settings

from bench.common import local_redis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
console = Console()


def record(number: int, size: int, per_record: int) -> bytes:
    """One invalid event of about `size` bytes, or a batch of `per_record` invalid events
    that weighs about `size` bytes in all."""
    if per_record > 1:
        each = json.loads(record(number, max(0, size // per_record - 200), 1))
        return json.dumps([{**each, "id": f"h{number}-{n}"} for n in range(per_record)]).encode()
    body = {
        "specversion": "0.3",
        "id": f"h{number}",
        "source": "/web/flood",
        "type": "support.conversation.started",
        "time": "2026-01-01T00:00:00Z",
        "subject": f"c{number}",
        "data": {"handled_by": "ai"},
        "pad": "x" * size,
    }
    return json.dumps(body).encode()


async def publish(
    bootstrap: str, topic: str, records: int, size: int, per_record: int
) -> dict[int, int]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024, linger_ms=5
    )
    await producer.start()
    last: dict[int, int] = {}
    try:
        for number in range(records):
            value = record(number, size, per_record)
            metadata = await producer.send_and_wait(topic, value, key=b"%d" % number)
            last[metadata.partition] = metadata.offset
    finally:
        await producer.stop()
    return last


async def applied(client: aioredis.Redis, topic: str, last: dict[int, int]) -> bool:
    for partition, offset in last.items():
        mark = await client.hget("roi:{web}:wm", f"{topic}:{partition}")
        if mark is None or int(mark) < offset:
            return False
    return True


async def run(records: int, size: int, per_record: int, db: int) -> tuple[float, float]:
    run_id = uuid.uuid4().hex[:8]
    prefix, dead_letters = f"bench{run_id}.", f"bench{run_id}.deadletter"
    topic = prefix + "web"
    settings = Settings()
    await ensure_topic(settings, topic, 4)
    await ensure_topic(settings, dead_letters)
    last = await publish(settings.kafka_bootstrap_servers, topic, records, size, per_record)
    client = await local_redis(db)
    env = {
        **os.environ,
        "ROI_TOPIC_PREFIX": prefix,
        "ROI_DEAD_LETTER_TOPIC": dead_letters,
        "ROI_GROUP_ID": f"bench{run_id}",
        "ROI_REDIS_URL": f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{db}",
        "ROI_WORKER_PORT": str(19_700 + db),
        "ROI_DATA_DIR": f"/tmp/bench-{run_id}",
        "ROI_COST_CARD": str(ROOT / "deploy" / "costs.toml"),
    }
    worker = subprocess.Popen(
        [str(BIN / "roi-metrics"), "worker", "--log-level", "warn"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = psutil.Process(worker.pid)
    peak = 0.0
    started = time.monotonic()
    try:
        while not await applied(client, topic, last):
            if worker.poll() is not None:
                sys.exit(f"error: the worker exited with status {worker.returncode}")
            peak = max(peak, process.memory_info().rss / 2**20)
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(60)
        await client.flushdb()
        await client.aclose()
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes of padding per record")
    parser.add_argument(
        "--per-record", type=int, default=1, help="invalid events per record (a batch)"
    )
    parser.add_argument("--db", type=int, default=6, help="Redis database to use (emptied)")
    args = parser.parse_args()
    elapsed, peak = asyncio.run(run(args.records, args.size, args.per_record, args.db))
    console.print(
        f"{args.records} records of {args.size:,} bytes ({args.per_record} events each): "
        f"all applied {elapsed:.1f} s after "
        f"the worker started; its peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()

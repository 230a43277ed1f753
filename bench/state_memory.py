"""Redis memory per event and per conversation, measured on the local stack's Redis.

    .venv/bin/python -m bench.state_memory [--conversations 20000]

Applies conversations of 4 events each through the real processor into an empty database
and reports the growth of Redis's used_memory split by key kind: dedup marks (one per event,
kept for the dedup horizon), conversation states (one per resolved conversation, kept 30
days after its last event) and buckets (fixed per channel, whatever the rate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import track
from roi_metrics.worker.processor import Record

from bench.common import local_processor, local_redis
from bench.throughput import events

console = Console()


async def used(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def sample_usage(client: aioredis.Redis, pattern: str, limit: int = 200) -> float:
    sizes = []
    async for key in client.scan_iter(match=pattern, count=1000):
        sizes.append(await client.memory_usage(key, samples=0) or 0)
        if len(sizes) >= limit:
            break
    return sum(sizes) / len(sizes)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=20_000)
    args = parser.parse_args()
    client = await local_redis(10)
    processor = local_processor(client)
    made = events(args.conversations * 4, time.time())
    records = [
        Record("support.events.web", 0, offset, None, json.dumps(e).encode())
        for offset, e in enumerate(made)
    ]
    before = await used(client)
    for start in track(range(0, len(records), 500), description="applying", console=console):
        await processor.process(records[start : start + 500])
    after = await used(client)
    mark = await sample_usage(client, "roi:{web}:s:*")
    conversation = await sample_usage(client, "roi:{web}:c:*")
    marks = len([k async for k in client.scan_iter(match="roi:{web}:s:*", count=1000)])
    conversations = len([k async for k in client.scan_iter(match="roi:{web}:c:*", count=1000)])
    grown = after - before
    console.print(f"events applied: {len(records):,}; dedup marks: {marks:,}")
    console.print(f"conversation states: {conversations:,}")
    console.print(f"used_memory grew {grown:,} bytes: {grown / len(records):.1f} bytes per event")
    console.print(
        f"MEMORY USAGE: dedup mark {mark:.0f} bytes, conversation {conversation:.0f} bytes"
    )
    await client.flushdb()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())

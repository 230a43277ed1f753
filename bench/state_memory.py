"""Redis memory per event and per conversation, measured on the local stack's Redis.

    .venv/bin/python -m bench.state_memory [--conversations 20000]

Applies conversations of 4 events each through the real processor into an empty database,
in two buckets of dedup marks: the first (a new channel: its hashes grow in generations)
and the next (opened with enough hashes for the first one's count, as every bucket of a
running channel is). Each kind of key is then deleted in turn and Redis's used_memory read
again, so each figure includes the key names and Redis's own tables (keyspace, expiries):
dedup marks (one per event, kept from 1 to 2 dedup horizons), conversation states (one
per resolved conversation, kept 30 days after its last event) and buckets (fixed per
channel, whatever the rate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import track
from roi_metrics.state import keys
from roi_metrics.worker.processor import BatchProcessor, Record

from bench.common import local_processor, local_redis
from bench.throughput import events

console = Console()


async def used(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def freed(client: aioredis.Redis, patterns: list[str]) -> tuple[int, int]:
    """(bytes freed, keys) by deleting every key matching `patterns`."""
    names = [k for p in patterns async for k in client.scan_iter(match=p, count=1000)]
    before = await used(client)
    for start in range(0, len(names), 1000):
        await client.delete(*names[start : start + 1000])
    return before - await used(client), len(names)


async def apply(processor: BatchProcessor, records: list[Record], what: str) -> None:
    for start in track(range(0, len(records), 500), description=what, console=console):
        await processor.process(records[start : start + 500])


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=20_000)
    args = parser.parse_args()
    client = await local_redis(10)
    processor = local_processor(client)
    store = processor.store
    made = events(args.conversations * 8, time.time())
    records = [
        Record("support.events.web", 0, offset, None, json.dumps(e).encode())
        for offset, e in enumerate(made)
    ]
    half = len(records) // 2
    now = time.time()
    store.clock = lambda: now - store.mark_bucket_seconds  # the bucket before this one
    await apply(processor, records[:half], "first bucket")
    first, first_marks = await freed(client, ["roi:{web}:s:*"])
    store.clock = lambda: now
    await apply(processor, records[half:], "next bucket")
    marks, mark_keys = await freed(client, ["roi:{web}:s:*", keys.dedup_directory("web")])
    states, conversations = await freed(client, ["roi:{web}:c:*"])
    applied = len(records) - half
    console.print(f"events applied per bucket: {applied:,}")
    console.print(
        f"dedup marks, first bucket (hashes grown in generations): {first / half:.1f} bytes "
        f"a mark ({first_marks:,} hashes)"
    )
    console.print(
        f"dedup marks, next bucket (sized from the first): {marks / applied:.1f} bytes a mark "
        f"({mark_keys:,} keys with the directory); over the horizon (a mark lives 1.5 "
        f"horizons on average): {marks / applied * 1.5:.1f} bytes an event"
    )
    console.print(
        f"conversation states: {conversations:,}, {states / max(conversations, 1):.1f} bytes each"
    )
    await client.flushdb()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())

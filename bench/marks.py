"""What the dedup marks cost Redis: server time per mark of the read (seen.lua) and apply
(apply.lua) scripts, in a steady state, on the local stack's Redis.

    .venv/bin/python -m bench.marks [--previous 200000] [--batch 1000] [--batches 50]

A channel runs as it would after two dedup horizons: the bucket of marks before the current
one holds --previous marks (sized from the one before it, as every bucket of a running
channel is), then batches of --batch new events, each read and applied as the worker does,
are timed by Redis itself (INFO commandstats: the scripts' own time, no network).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import redis.asyncio as aioredis
from rich.console import Console
from roi_metrics.domain.aggregate import BatchDelta
from roi_metrics.domain.events import Counter
from roi_metrics.state.store import ApplyResult, PartitionApply, PartitionRead, StateStore

from bench.common import local_redis

console = Console()
HORIZON = 86_400


class Channel:
    """One partition of channel `web`, read and applied as the processor does."""

    def __init__(self, client: aioredis.Redis, now: float) -> None:
        self.now = now
        self.store = StateStore(client, HORIZON, 30 * 86_400, clock=lambda: self.now)
        self.watermark: int | None = None
        self.events = 0

    async def batch(self, count: int) -> None:
        marks = [("/bench", f"event-{self.events + n}") for n in range(count)]
        self.events += count
        [state] = await self.store.read([PartitionRead("web", "bench", 0, [], marks)])
        delta = BatchDelta()
        delta.add("web", ("all", 0), {Counter.CONVERSATIONS: count})
        delta.dedup_marks.update(("web", source, name) for source, name in marks)
        new = (self.watermark or 0) + 1
        request = PartitionApply(
            "web",
            "bench",
            0,
            self.watermark,
            new,
            delta,
            digests=state.digests,
            marks_read=state.mark_token,
        )
        [result] = await self.store.apply([request])
        if result is not ApplyResult.OK:
            raise SystemExit(f"error: an apply answered {result.value}")
        self.watermark = new


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--previous", type=int, default=200_000, help="marks a bucket holds")
    parser.add_argument("--batch", type=int, default=1_000, help="events per timed batch")
    parser.add_argument("--batches", type=int, default=50, help="timed batches")
    args = parser.parse_args()
    client = await local_redis(11)
    now = time.time()
    channel = Channel(client, now)
    bucket = channel.store.mark_bucket_seconds
    for back in (2, 1):  # the bucket two back sizes the one before the current one
        channel.now = now - back * bucket
        for _ in range(0, args.previous, 5_000):
            await channel.batch(5_000)
    channel.now = now
    await client.config_resetstat()
    for _ in range(args.batches):
        await channel.batch(args.batch)
    stats = await client.info("commandstats")
    marks = args.batch * args.batches
    script = stats["cmdstat_evalsha"]["usec"] / marks
    console.print(
        f"{marks:,} marks after a bucket of {args.previous:,}: the scripts took "
        f"{script:.2f} µs of Redis time a mark (read and apply)"
    )
    for name, stat in sorted(stats.items()):
        if name != "cmdstat_evalsha" and stat["calls"] >= marks // 10:
            console.print(
                f"  of which {name.removeprefix('cmdstat_')}: {stat['calls'] / marks:.2f} calls "
                f"and {stat['usec'] / marks:.2f} µs a mark"
            )
    await client.flushdb()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())

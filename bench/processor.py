"""The batch processor alone: decode, read, fold and apply on the local stack's Redis, no
Kafka and no Faust. Separates the worker's own cost from the consumer's.

    .venv/bin/python -m bench.processor                      # records of 100, 10 per batch
    .venv/bin/python -m bench.processor --per-record 1 --batch-records 500
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time

from rich.console import Console
from roi_metrics.worker.processor import Record

from bench.common import local_processor, local_redis
from bench.throughput import events

console = Console()


async def run(count: int, per_record: int, batch_records: int) -> float:
    client = await local_redis(9)
    processor = local_processor(client)
    made = events(count, time.time())
    groups = [made[i : i + per_record] for i in range(0, len(made), per_record)]
    values = [json.dumps(g[0] if per_record == 1 else g).encode() for g in groups]
    records = [Record("support.events.web", 0, n, None, v) for n, v in enumerate(values)]
    started = time.perf_counter()
    for start in range(0, len(records), batch_records):
        await processor.process(records[start : start + batch_records])
    elapsed = time.perf_counter() - started
    await client.flushdb()
    await client.aclose()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--per-record", type=int, default=100, help="events per record")
    parser.add_argument(
        "--batch-records", type=int, default=10, help="records per batch (500 for single events)"
    )
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        rate = profiler.runcall(asyncio.run, run(args.events, args.per_record, args.batch_records))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    else:
        rate = asyncio.run(run(args.events, args.per_record, args.batch_records))
    console.print(f"{args.events:,} events, {args.per_record} per record: {rate:,.0f} events/s")


if __name__ == "__main__":
    main()

"""The decoder alone, in one process: the fast path (ingest/fastpath.py) against the pydantic
models for the same records, timed in turn so the machine's drift hits both alike.

    .venv/bin/python -m bench.decode                    # records of 100 events
    .venv/bin/python -m bench.decode --per-record 1     # single-event records
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from roi_metrics.ingest.decode import Decoder

from bench.throughput import events


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-record", type=int, default=100, help="events per record")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds of each path")
    args = parser.parse_args()
    if args.events < 1 or args.per_record < 1 or args.rounds < 1:
        parser.error("--events, --per-record and --rounds must be >= 1")
    now = time.time()
    made = events(args.events, now)
    step = args.per_record
    records = [
        json.dumps(made[i] if step == 1 else made[i : i + step]).encode()
        for i in range(0, len(made), step)
    ]
    clock = int((now + 60) * 1_000_000)
    paths = {"fast path": Decoder("USD"), "pydantic models": Decoder("USD", fast=False)}
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(args.rounds):
        order = list(paths.items())
        for name, decoder in order if round_ % 2 == 0 else reversed(order):  # neither always first
            started = time.perf_counter()
            decoded = sum(len(decoder.decode_record(r, "web", clock).events) for r in records)
            seconds[name].append(time.perf_counter() - started)
            assert decoded == len(made), (name, decoded)
    for name, spent in seconds.items():
        median = statistics.median(spent)
        print(
            f"{name:16} {len(made) / median:>10,.0f} events/s "
            f"({median / len(made) * 1e6:.2f} µs per event, median of {args.rounds})"
        )
    ratios = [m / f for f, m in zip(seconds["fast path"], seconds["pydantic models"], strict=True)]
    print(f"speed-up, round by round: median {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()

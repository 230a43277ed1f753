"""Baselines for bench/throughput.py, run as `faust -A bench.baselines worker`.

BENCH_MODE=bare: a Faust agent that only decodes each record's JSON and counts it in a dict.
BENCH_MODE=naive: the textbook Faust design: a hopping windowed table (1 h windows every
minute) per figure, updated per event; its changelog gets one record per covered window.
Both print `DONE <events> <seconds>` (first to last event) and exit once BENCH_EVENTS were seen.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

import faust

MODE = os.environ.get("BENCH_MODE", "bare")
EXPECTED = int(os.environ.get("BENCH_EVENTS", "1000"))

app = faust.App(
    os.environ.get("BENCH_APP", f"bench-{MODE}"),
    broker=f"kafka://{os.environ.get('BENCH_BOOTSTRAP', '127.0.0.1:19092')}",
    store="memory://",
    web_enabled=False,
    autodiscover=False,
    consumer_auto_offset_reset="earliest",
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "4")),
    datadir=os.environ.get("BENCH_DATADIR", "/tmp/bench-faust"),
)
source = app.topic(os.environ.get("BENCH_TOPIC", "bench.events.web"), value_serializer="raw")
seen = {"events": 0, "first": 0.0}
counts: Counter[str] = Counter()
conversations = app.Table("naive-conversations", default=int).hopping(3600, 60, expires=7200)
costs = app.Table("naive-costs", default=int).hopping(3600, 60, expires=7200)


def _done() -> None:
    elapsed = time.perf_counter() - seen["first"]
    print(f"DONE {seen['events']} {elapsed:.3f}", flush=True)
    sys.stdout.flush()
    os._exit(0)


def _tick() -> None:
    if not seen["events"]:
        seen["first"] = time.perf_counter()
    seen["events"] += 1
    if seen["events"] >= EXPECTED:
        _done()


@app.agent(source)
async def consume(stream: Any) -> None:
    async for value in stream:
        event = json.loads(value)
        if MODE == "naive":
            kind = event["type"]
            if kind.endswith("started"):
                conversations["web"] += 1
            elif kind.endswith("cost.recorded"):
                costs["web"] += int(float(event["data"]["amount"]) * 1_000_000)
        else:
            counts[event["type"]] += 1
        _tick()

"""The Quix Streams baseline of bench/throughput.py: a windowed aggregation over the same
topic of single-event records, as a Quix user would write it.

    BENCH_TOPIC=... BENCH_EVENTS=100000 <a Python with quixstreams> bench/quix_baseline.py

Each record's JSON is decoded (Quix's JSON deserializer), the event counted in a 1-minute
tumbling window sum keyed by the record key, with Quix's RocksDB state and its changelog
topic (Quix's defaults). Prints `DONE <events> <seconds>` (first to last event) and stops
once BENCH_EVENTS were seen. bench/throughput.py runs it in a virtualenv of its own
(Quix Streams 3.28 requires pydantic < 2.14; the project's environment has a newer one).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from typing import Any

EXPECTED = int(os.environ.get("BENCH_EVENTS", "1000"))
TOPIC = os.environ.get("BENCH_TOPIC", "bench.events.web")
BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:19092")


def main() -> None:
    try:
        from quixstreams import Application  # noqa: PLC0415  (an optional dependency)
    except ImportError:
        sys.exit("error: Quix Streams is not installed here: pip install quixstreams==3.28.1")
    seen = {"events": 0, "first": 0.0}
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state:
        app = Application(
            broker_address=BOOTSTRAP,
            consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            state_dir=state,
            loglevel="WARNING",
        )
        topic = app.topic(TOPIC, value_deserializer="json")

        def count(value: Any) -> None:
            seen["events"] += 1
            if seen["events"] == 1:
                seen["first"] = time.perf_counter()
            if seen["events"] == EXPECTED:
                print(f"DONE {EXPECTED} {time.perf_counter() - seen['first']:.3f}", flush=True)
                app.stop()

        sdf = app.dataframe(topic)
        sdf = sdf.update(count)
        sdf = sdf.apply(lambda value: 1).tumbling_window(duration_ms=60_000).sum().final()
        app.run()


if __name__ == "__main__":
    main()

"""The exporter on real Redis: window sums done by the script equal the bucket hashes summed
here, and the real `roi-metrics exporter` process serves them."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from roi_metrics import __version__
from roi_metrics.domain.events import Counter
from roi_metrics.domain.timebuckets import Window
from roi_metrics.state.channels import remove_channel
from roi_metrics.state.reader import StateReader
from roi_metrics.worker.processor import Record

from tests.cloudevents import encode, event
from tests.integration.batches import TOPIC, processor, records
from tests.integration.harness import EXECUTABLE, ROOT, TEST_DB, free_port, wait_http
from tests.stack import redis_url

pytestmark = pytest.mark.integration
WINDOWS = {
    "1h": ("m", 60, 60),
    "24h": ("h", 3600, 24),
    "7d": ("d", 86400, 7),
    "30d": ("d", 86400, 30),
}


def summed_here(client: redis.Redis, channel: str, window: str, now: int) -> dict[str, int]:
    name, size, count = WINDOWS[window]
    current = now - now % size
    totals: dict[str, int] = {}
    for back in range(count):
        for field, value in client.hgetall(
            f"roi:{{{channel}}}:b:{name}:{current - back * size}"
        ).items():
            totals[field.decode()] = totals.get(field.decode(), 0) + int(value)
    return totals


async def test_window_sums_equal_the_buckets(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    await processor(redis_db, producer, topic_name).process(records())
    url = redis_db.connection_pool.connection_kwargs
    client = redis.Redis(host=url["host"], port=url["port"], db=TEST_DB)
    now = int(time.time())
    snapshot = StateReader(client).snapshot(now)
    assert list(snapshot.counts) == ["web"]
    for window in WINDOWS:
        got = {c.value: v for c, v in snapshot.counts["web"][Window(window)].items()}
        assert got == summed_here(client, "web", window, now), window
        assert got["conversations"] == 1
    cumulative = {k.decode(): int(v) for k, v in client.hgetall("roi:{web}:b:all:0").items()}
    assert {c.value: v for c, v in snapshot.counts["web"][Window.ALL].items()} == cumulative
    client.close()


async def test_the_exporter_process_serves_what_redis_holds(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str, tmp_path: Path
) -> None:
    await processor(redis_db, producer, topic_name).process(records())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROI_")}
    env["ROI_REDIS_URL"] = f"{redis_url().rsplit('/', 1)[0]}/{TEST_DB}"
    env["ROI_COST_CARD"] = str(ROOT / "deploy/costs.toml")
    log = (tmp_path / "exporter.log").open("wb")
    process = subprocess.Popen(
        [str(EXECUTABLE), "exporter", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 20, "exporter", tmp_path / "exporter.log")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runbooks", timeout=5) as reply:
            page = reply.read().decode()
            assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    web_all = (("channel", "web"), ("window", "all"))
    assert samples[("support_conversations", web_all)] == 1
    assert samples[("support_ai_cost", web_all)] == 0.125
    assert samples[("support_ai_revenue", web_all)] == 40.0
    # one AI resolution, no reopen: 6.50 avoided + 40 revenue against 0.125 of AI cost
    assert samples[("support_channel_roi_ratio", web_all)] == (46.5 - 0.125) / 0.125
    assert samples[("support_state_store_up", ())] == 1
    # after the figures: the process, the Python runtime and the build
    assert samples[("roi_metrics_build_info", (("version", __version__),))] == 1
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert ("python_info" in {name for name, _ in samples}) and text.startswith("# HELP support_")
    # the page every alert's runbook_url points at
    assert "<h2 id='supportchannelsilent'>SupportChannelSilent</h2>" in page


def start_redis(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    """A redis-server of this test's own (Debian's), so that stopping it harms no other test."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            client.close()
            return process
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_exporter_answers_while_redis_is_down_and_recovers(tmp_path: Path) -> None:
    redis_port, port = free_port(), free_port()
    server = start_redis(redis_port, tmp_path)
    client = redis.Redis(port=redis_port)
    client.hset("roi:{web}:b:all:0", mapping={"conversations": 3})
    client.sadd("roi:channels", "web")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROI_")}
    env["ROI_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env["ROI_COST_CARD"] = str(ROOT / "deploy/costs.toml")
    log = (tmp_path / "exporter.log").open("wb")
    exporter = subprocess.Popen(
        [str(EXECUTABLE), "exporter", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 20, "exporter", tmp_path / "exporter.log")
        status, up = get(port, "/metrics")
        assert status == 200 and "support_state_store_up 1.0" in up
        assert 'support_conversations{channel="web",window="all"} 3.0' in up
        server.terminate()
        server.wait(10)
        status, down = get(port, "/metrics")
        assert status == 200
        assert "support_state_store_up 0.0" in down
        assert "support_conversations{" not in down  # no stale figures
        assert "support_info{" in down and "support_target_roi_ratio" in down
        assert get(port, "/readyz")[0] == 503
        assert get(port, "/healthz")[0] == 200  # alive: do not restart it for Redis's sake
        server = start_redis(redis_port, tmp_path)  # back, empty (no persistence here)
        status, again = get(port, "/metrics")
        assert status == 200 and "support_state_store_up 1.0" in again
        assert get(port, "/readyz")[0] == 200
    finally:
        exporter.terminate()
        exporter.wait(10)
        server.terminate()
        server.wait(10)
        log.close()
        client.close()


async def test_a_cached_reader_sees_late_events_exactly_as_a_fresh_one(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    """The reader keeps closed buckets' sums between scrapes, and all of a channel's sums
    while no bucket of it was written and no window slid; events landing in closed buckets
    (late ones) must show at once, events in hot buckets too."""
    work = processor(redis_db, producer, topic_name)
    base = f"{redis_url().rsplit('/', 1)[0]}/{TEST_DB}"
    cached, offset = StateReader(redis.Redis.from_url(base)), 0

    async def apply(*ages: int) -> None:
        nonlocal offset
        now = int(time.time())
        batch = []
        for age in ages:
            offset += 1
            started = event(
                "conversation.started", f"e{offset}", f"c{offset}", now - age, handled_by="ai"
            )
            batch.append(Record(TOPIC, 0, offset, f"c{offset}".encode(), encode(started)))
        await work.process(batch)

    def agree() -> dict[str, dict[Window, dict[object, int]]]:
        now = int(time.time())
        fresh = StateReader(redis.Redis.from_url(base)).snapshot(now)
        seen = cached.snapshot(now)
        assert seen.counts == fresh.counts
        return seen.counts

    await apply(0, 30, 200, 4 * 3600, 2 * 86400)
    first = agree()
    assert first["web"][Window.HOUR_1][Counter.CONVERSATIONS] == 3
    # nothing written since: the sums stand (the very same ones), until a window slides
    again = int(time.time())
    assert cached.snapshot(again).counts["web"] is cached.snapshot(again).counts["web"]
    slid = cached.snapshot(again + 3600).counts  # an hour on: every window slid
    assert slid["web"] is not first["web"]
    assert slid == StateReader(redis.Redis.from_url(base)).snapshot(again + 3600).counts
    assert slid["web"][Window.HOUR_1] == {}  # the events are over an hour old by then
    writes = redis.Redis.from_url(base).get("roi:{web}:cw")
    await apply(1, 2)  # hot buckets only: the closed-writes token stands
    assert redis.Redis.from_url(base).get("roi:{web}:cw") == writes
    assert agree()["web"][Window.HOUR_1][Counter.CONVERSATIONS] == 5
    await apply(600, 10 * 3600, 3 * 86400)  # late: minute, hour and day buckets already closed
    assert redis.Redis.from_url(base).get("roi:{web}:cw") not in (None, writes)
    counts = agree()
    assert counts["web"][Window.HOUR_1][Counter.CONVERSATIONS] == 6
    assert counts["web"][Window.HOURS_24][Counter.CONVERSATIONS] == 8
    assert counts["web"][Window.DAYS_7][Counter.CONVERSATIONS] == 10


async def test_a_channel_removed_and_counted_again_between_scrapes_is_read_again(
    redis_db: aioredis.Redis, producer: AIOKafkaProducer, topic_name: str
) -> None:
    """`channel remove`, then an event registers the channel again before the next scrape
    (the set of channels looks the same to the reader): nothing of the first life's sums
    may stand, closed buckets included, even when that life never wrote a closed bucket."""
    base = f"{redis_url().rsplit('/', 1)[0]}/{TEST_DB}"
    now = int(time.time())
    first = processor(redis_db, producer, topic_name)
    first.store.clock = lambda: now - 4 * 86400  # the buckets were hot when written
    started = [
        event("conversation.started", f"e{i}", f"c{i}", now - 4 * 86400, handled_by="ai")
        for i in range(3)
    ]
    await first.process([Record(TOPIC, 0, 1, b"c", encode(started))])
    assert await redis_db.get("roi:{web}:cw") is not None  # made by the first bucket write
    cached = StateReader(redis.Redis.from_url(base))
    assert cached.snapshot(now).counts["web"][Window.DAYS_7][Counter.CONVERSATIONS] == 3
    assert remove_channel(redis.Redis.from_url(base), "web") > 0
    again = processor(redis_db, producer, topic_name)
    again_started = event("conversation.started", "n1", "n1", now, handled_by="ai")
    await again.process([Record(TOPIC, 1, 1, b"n", encode(again_started))])
    seen = cached.snapshot(now).counts
    assert seen == StateReader(redis.Redis.from_url(base)).snapshot(now).counts
    assert seen["web"][Window.DAYS_7][Counter.CONVERSATIONS] == 1


def test_a_value_written_by_hand_counts_as_zero_and_spoils_no_other_figure(
    redis_db: aioredis.Redis,
) -> None:
    """Only a hand can put a non-integer in a bucket (the apply script refuses to add to
    one); the scrape still answers, with that value as 0 and every other as stored."""
    client = redis.Redis.from_url(f"{redis_url().rsplit('/', 1)[0]}/{TEST_DB}")
    now = int(time.time())
    minute = now - now % 60
    client.sadd("roi:channels", "web", "slack")
    client.hset(f"roi:{{web}}:b:m:{minute}", mapping={"conversations": "inf", "escalations": 2})
    client.hset(f"roi:{{web}}:b:m:{minute - 60}", mapping={"conversations": "1e20"})
    client.hset(f"roi:{{web}}:b:m:{minute - 600}", mapping={"conversations": "-5"})
    client.hset("roi:{web}:b:all:0", mapping={"conversations": "nan", "escalations": 2})
    client.hset(f"roi:{{slack}}:b:m:{minute}", mapping={"conversations": 7})
    counts = StateReader(client).snapshot(now).counts
    assert counts["web"][Window.HOUR_1] == {Counter.ESCALATIONS: 2}
    assert counts["web"][Window.ALL] == {Counter.ESCALATIONS: 2}
    assert counts["slack"][Window.HOUR_1] == {Counter.CONVERSATIONS: 7}


@pytest.mark.parametrize("value", [2**53 + 1, 3 * 10**18, 2**63 - 1, 10**13, 99_999_999_999_999])
def test_window_sums_are_exact_for_any_64_bit_value_and_never_wrap(
    redis_db: aioredis.Redis, value: int
) -> None:
    """Buckets near 2^63 sum exactly (no double rounding in the script) and a window over
    2^63 stays a positive exact integer: exported sums never wrap."""
    url = redis_db.connection_pool.connection_kwargs
    client = redis.Redis(host=url["host"], port=url["port"], db=TEST_DB)
    now = int(time.time())
    minute = now - now % 60
    client.sadd("roi:channels", "web")
    for back in range(3):  # the current minute and the two before: the window's hot part
        client.hset(f"roi:{{web}}:b:m:{minute - 60 * back}", "ai_cost_micros", value)
    client.hset(f"roi:{{web}}:b:m:{minute - 600}", "ai_cost_micros", value)  # a closed one
    client.hset(f"roi:{{web}}:b:m:{minute - 660}", "ai_cost_micros", 7)
    snapshot = StateReader(client).snapshot(now)
    assert snapshot.counts["web"][Window.HOUR_1][Counter.AI_COST_MICROS] == 4 * value + 7

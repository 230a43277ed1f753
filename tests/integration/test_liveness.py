"""Honest liveness on the real stack: a worker that stops counting says so on /readyz and
exits non-zero within 30 s; lag is there from assignment on; an evicting Redis is refused.

A bug is injected from the outside: the test runs the real CLI in a Python process that
first replaces one function of the pipeline, so the service carries no fault hook.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics import __version__
from roi_metrics.worker.liveness import EXIT_STALLED

from tests.cloudevents import encode, event
from tests.integration.harness import Deployment, WorkerProcess
from tests.integration.pipeline import Offsets, create_channels, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 9  # this module's Redis database (the deployment and state fixtures)
BUG = """
import roi_metrics.worker.pipeline as pipeline
real = pipeline.records_of
def records_of(events):
    if any(b"boom" in (e.message.value or b"") for e in events):
        raise RuntimeError("an injected bug")
    return real(events)
pipeline.records_of = records_of
from roi_metrics.cli.main import main
main()
"""


async def send(deployment: Deployment, channel: str, values: list[bytes]) -> Offsets:
    """Send records keyed c0, c1, ...; the last offset written to each partition."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap)
    await producer.start()
    offsets: Offsets = {}
    try:
        for number, value in enumerate(values):
            topic = deployment.prefix + channel
            metadata = await producer.send_and_wait(topic, value, key=f"c{number}".encode())
            offsets[(topic, metadata.partition)] = metadata.offset
    finally:
        await producer.stop()
    return offsets


def started(number: int) -> bytes:
    return encode(
        event(
            "conversation.started",
            f"e{number}",
            f"c{number}",
            time.time() - 5,
            "/web/live",
            handled_by="ai",
        )
    )


def lag(worker: WorkerProcess) -> float:
    try:
        return worker.labelled("support_consumer_lag")
    except OSError:  # not serving yet
        return 0.0


def watch_until_exit(worker: WorkerProcess, seconds: float) -> tuple[list[int], float]:
    """Poll /readyz until the process exits; the statuses seen and when it exited."""
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    while worker.process.poll() is None:
        assert time.monotonic() < deadline, f"still running: {worker.log.read_text()[-2000:]}"
        statuses.append(worker.readyz())
        time.sleep(0.2)
    return statuses, time.monotonic()


async def test_a_bug_that_kills_the_agent_fails_readiness_and_exits_70(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["web"])
    worker = deployment.start_worker(command=[sys.executable, "-c", BUG])
    await wait_applied(state, deployment, await send(deployment, "web", [started(1), started(2)]))
    assert worker.readyz() == 200
    await send(deployment, "web", [started(3).replace(b"/web/live", b"/web/boom")])
    sent = time.monotonic()
    statuses, exited = await asyncio.to_thread(watch_until_exit, worker, 30)
    assert exited - sent < 30
    assert worker.process.returncode == EXIT_STALLED
    assert 200 not in statuses[-3:]  # a dead agent never looked alive
    log = worker.log.read_text()
    assert "stalled: the agent stopped consuming; exiting with status 70" in log
    assert "RuntimeError: an injected bug" in log


@pytest.fixture
def full_redis(own_redis: tuple[str, Callable[[str], None]]) -> Iterator[tuple[str, redis.Redis]]:
    url, _ = own_redis
    client = redis.Redis.from_url(url)
    yield url, client
    client.config_set("maxmemory", 0)
    client.close()


async def test_a_redis_that_refuses_writes_shows_lag_then_stops_the_worker(
    bootstrap: str, tmp_path: Path, full_redis: tuple[str, redis.Redis]
) -> None:
    """Redis answers but is full (noeviction: writes refused). Lag is exported for every
    assigned partition although nothing was ever applied; the batch cannot be applied, so
    the worker fails readiness and exits 70 within 30 s of its first try."""
    url, client = full_redis
    deployment = Deployment(bootstrap, url, tmp_path)
    try:
        await create_channels(deployment, ["web"])
        await send(deployment, "web", [started(n) for n in range(40)])
        client.config_set("maxmemory", 1)
        worker = deployment.start_worker(wait=False)
        deadline = time.monotonic() + 60
        while lag(worker) != 40:  # from assignment on, though nothing was ever applied
            assert time.monotonic() < deadline, worker.log.read_text()[-2000:]
            await asyncio.sleep(0.5)
        assert worker.labelled("support_applied_offset") == -4  # none applied, 4 partitions
        first_try = time.monotonic()
        statuses, exited = await asyncio.to_thread(watch_until_exit, worker, 40)
        assert exited - first_try < 30
        assert worker.process.returncode == EXIT_STALLED
        assert statuses[-1] in (503, 0)
        assert "stalled: one batch has not been applied for" in worker.log.read_text()
    finally:
        deployment.stop_all()


async def test_transaction_markers_are_not_lag_and_never_a_stall(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["web"])
    worker = deployment.start_worker(env={"ROI_STALL_SECONDS": "3"})
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap, transactional_id=f"{deployment.run}-tx"
    )
    await producer.start()
    try:
        for batch in range(2):
            async with producer.transaction():
                for number in range(10):
                    await producer.send(
                        deployment.prefix + "web",
                        started(batch * 10 + number),
                        key=f"c{number}".encode(),
                    )
    finally:
        await producer.stop()
    await asyncio.sleep(12)  # four stall periods
    assert worker.process.poll() is None, worker.log.read_text()[-2000:]
    assert worker.readyz() == 200
    assert worker.labelled("support_events_total", outcome="counted") == 20
    assert worker.labelled("support_consumer_lag") == 0


async def test_an_evicting_redis_is_refused_at_start_and_while_running(
    bootstrap: str, tmp_path: Path, own_redis: tuple[str, Callable[[str], None]]
) -> None:
    url, _ = own_redis
    client = redis.Redis.from_url(url)
    deployment = Deployment(bootstrap, url, tmp_path)
    try:
        await create_channels(deployment, ["web"])
        client.config_set("maxmemory-policy", "allkeys-lru")
        refused = [deployment.start_worker(wait=False), deployment.start_exporter(wait=False)]
        for process in refused:
            assert process.process.wait(60) == 2
            lines = process.log.read_text().strip().splitlines()
            assert lines[-1] == (
                "error: Redis maxmemory-policy is allkeys-lru: Redis may evict the figures' "
                "state; set it to noeviction (redis-cli CONFIG SET maxmemory-policy "
                "noeviction, and in redis.conf)"
            )
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 64 * 1024 * 1024)
        worker, exporter = deployment.start_worker(), deployment.start_exporter()
        assert exporter.labelled("support_state_store_memory_max_bytes") == 64 * 1024 * 1024
        assert 0 < exporter.labelled("support_state_store_memory_used_bytes") < 64 * 1024 * 1024
        client.config_set("maxmemory-policy", "volatile-lru")
        assert worker.process.wait(30) == 2
        assert "stopping: Redis maxmemory-policy is volatile-lru" in worker.log.read_text()
        assert exporter.readyz() == 503
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
        deployment.stop_all()


def test_the_worker_serves_its_three_pages_and_nothing_of_faust(deployment: Deployment) -> None:
    """Faust's own pages (/router, /table, /graph, statistics, an index answering OK
    whatever the worker's state) are not served: only what says the truth about it."""
    worker = deployment.start_worker()

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{path}", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    pages = ["/metrics", "/healthz", "/readyz", "/", "/router/", "/table/", "/graph/", "/stats/"]
    assert {path: status(path) for path in pages} == {
        "/metrics": 200, "/healthz": 200, "/readyz": 200,
        "/": 404, "/router/": 404, "/table/": 404, "/graph/": 404, "/stats/": 404,
    }  # fmt: skip
    assert worker.labelled("roi_metrics_build_info", version=__version__) == 1
    assert worker.metric("process_resident_memory_bytes") > 0

"""The worker end to end on real Kafka and Redis: every event counted exactly once through
duplicates, bad input, kill -9, rebalances and a Redis outage, checked against an oracle."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from roi_metrics.ingest.contract import DeadLetterHeader

from tests.integration.harness import Deployment
from tests.integration.pipeline import (
    bucket_state,
    create_channels,
    matches_oracle,
    publish,
    read_topic,
    wait_applied,
)
from tests.integration.traffic import Generator, recompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
CHANNELS = ["whatsapp", "slack", "web", "email"]
REDIS_DB = 13  # this module's Redis database (the deployment and state fixtures)


async def test_fifty_thousand_events_match_the_oracle_exactly(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    now = int(time.time())
    traffic = Generator(seed=20261126, now=now, channels=CHANNELS, customers=True).traffic(2750)
    assert traffic.event_count >= 50_000
    await create_channels(deployment, CHANNELS)
    deployment.start_worker()
    offsets = await publish(deployment, traffic)
    await wait_applied(state, deployment, offsets)
    await matches_oracle(state, recompute(traffic, now))
    assert sum(v.get("ai_recontacts", 0) for v in recompute(traffic, now).values()) > 0

    letters = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 4 * 9)
    distinct = {(dict(r.headers)[DeadLetterHeader.ORIGIN_OFFSET], r.value) for r in letters}
    assert len(distinct) == 4 * 9
    reasons = Counter(dict(r.headers)[DeadLetterHeader.REASON].decode() for r in letters)
    assert reasons == {
        "invalid_json": 4,
        "invalid_envelope": 4,
        "invalid_data": 8,  # a bad score, and a bad handled_by inside a mixed batch
        "channel_mismatch": 4,
        "currency_mismatch": 4,
        "future_time": 4,
        "too_large": 8,  # a record over 1 MiB, and a batch of 1001 events
    }


async def test_kill_9_three_times_mid_stream_still_counts_each_event_once(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    now = int(time.time())
    traffic = Generator(seed=9, now=now, channels=CHANNELS, customers=True).traffic(1200)
    await create_channels(deployment, CHANNELS)
    worker = deployment.start_worker()
    rng = random.Random(9)
    kill_at = sorted(rng.uniform(0.1, 0.9) for _ in range(3))

    redelivered = 0.0

    async def kill_and_restart(progress: float) -> None:
        nonlocal worker, redelivered
        if kill_at and progress >= kill_at[0]:
            kill_at.pop(0)
            await asyncio.sleep(rng.uniform(0, 0.5))
            redelivered += worker.metric_or_zero("support_redelivered_records_total")
            worker.kill()
            worker = deployment.start_worker(wait=False)

    offsets = await publish(deployment, traffic, seconds=20, during=kill_and_restart)
    assert not kill_at
    await wait_applied(state, deployment, offsets)
    await matches_oracle(state, recompute(traffic, now))  # re-contacts flowed through the kills
    assert sum(w.process.returncode == -9 for w in deployment.workers) == 3
    # restarted workers read again what their killed predecessors applied but had not
    # committed (summed over all of them: one kill may land just after a commit)
    redelivered += worker.metric("support_redelivered_records_total")
    assert redelivered > 0


async def test_two_then_three_then_one_worker_while_producing(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    now = int(time.time())
    traffic = Generator(seed=23, now=now, channels=CHANNELS, customers=True).traffic(1200)
    await create_channels(deployment, CHANNELS)
    first, second = deployment.start_worker(), deployment.start_worker()
    steps = [0.25, 0.6]

    async def scale(progress: float) -> None:
        if steps and progress >= steps[0]:
            steps.pop(0)
            if len(steps) == 1:
                deployment.start_worker(wait=False)
            else:
                second.stop()
                deployment.workers[2].stop()

    offsets = await publish(deployment, traffic, seconds=25, during=scale)
    assert first.process.poll() is None
    await wait_applied(state, deployment, offsets)
    await matches_oracle(state, recompute(traffic, now))
    stopped = [second.process.returncode, deployment.workers[2].process.returncode]
    assert stopped == [0, 0]  # a graceful stop with Redis up finishes its batch


async def test_a_redis_outage_of_20_seconds_loses_nothing_and_is_reported(
    bootstrap: str, tmp_path: Path, own_redis: tuple[str, Callable[[str], None]]
) -> None:
    """Redis goes away for 20 s mid-stream. The worker says it is not ready; asked to stop
    meanwhile, it stops cleanly without committing the batch it could not apply; its
    replacement applies everything, once, when Redis is back."""
    url, control = own_redis
    deployment = Deployment(bootstrap, url, tmp_path)
    client = aioredis.Redis.from_url(url)
    try:
        now = int(time.time())
        traffic = Generator(seed=20, now=now, channels=CHANNELS).traffic(1200)
        await create_channels(deployment, CHANNELS)
        first = deployment.start_worker()
        readiness: list[int] = []

        async def outage() -> None:
            control("stop")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline - 12:
                readiness.append(await asyncio.to_thread(first.readyz))
                await asyncio.sleep(0.5)
            await asyncio.to_thread(first.stop)  # SIGTERM while a batch waits for Redis
            deployment.start_worker(wait=False)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            control("start")

        outages: list[asyncio.Task[None]] = []

        async def break_redis(progress: float) -> None:
            if progress >= 0.3 and not outages:
                outages.append(asyncio.create_task(outage()))

        offsets = await publish(deployment, traffic, seconds=12, during=break_redis)
        await outages[0]
        await wait_applied(client, deployment, offsets)
        assert await bucket_state(client) == recompute(traffic, now)
        assert 503 in readiness  # it said it was not ready while Redis was away
        assert first.process.returncode == 0, first.log.read_text()[-2000:]
        replacement = deployment.workers[-1]
        replacement.wait_ready()
    finally:
        await client.aclose()
        deployment.stop_all()


async def test_a_channel_topic_created_mid_run_is_counted_within_60_seconds(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["web"])
    deployment.start_worker()
    await asyncio.sleep(2)  # the worker runs, subscribed to web only
    now = int(time.time())
    traffic = Generator(seed=5, now=now, channels=["voice"]).traffic(50)
    created = time.monotonic()
    await create_channels(deployment, ["voice"])
    offsets = await publish(deployment, traffic)
    took = await wait_applied(state, deployment, offsets, seconds=60)
    assert time.monotonic() - created < 60, took
    assert await bucket_state(state) == recompute(traffic, now)
    assert await state.smembers("roi:channels") == {b"voice"}

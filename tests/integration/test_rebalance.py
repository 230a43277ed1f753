"""Rebalances never kill a worker: channel topics plugged in while two workers consume.

Each new topic makes the workers resubscribe, so the group rebalances about every 2 s under
steady traffic. Before roi_metrics.worker.consumer, Faust's fetcher crashed on such a rebalance
(`AssertionError: Partition is not assigned`, from `highwater` on a partition revoked while
its records were in flight) and took the worker with it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from tests.integration.harness import Deployment
from tests.integration.pipeline import (
    Offsets,
    bucket_state,
    create_channels,
    publish,
    wait_applied,
)
from tests.integration.traffic import Generator, Traffic, recompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
CHANNELS = ["whatsapp", "slack", "web", "email"]
NEW_CHANNELS = [f"new-{number:02d}" for number in range(12)]
REDIS_DB = 11  # this module's Redis database (the deployment and state fixtures)


def only(traffic: Traffic, channel: str) -> Traffic:
    return Traffic(records=[record for record in traffic.records if record[0] == channel])


async def test_twelve_channel_topics_plugged_in_while_two_workers_consume(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    now = int(time.time())
    steady = Generator(seed=12, now=now, channels=CHANNELS).traffic(500)
    plugged = Generator(seed=13, now=now, channels=NEW_CHANNELS).traffic(12)
    await create_channels(deployment, CHANNELS)
    workers = [deployment.start_worker(), deployment.start_worker()]
    offsets: Offsets = {}

    async def plug_in() -> None:
        for channel in NEW_CHANNELS:
            await asyncio.sleep(0.3)  # creating and publishing take about 2 s more
            await create_channels(deployment, [channel])
            offsets.update(await publish(deployment, only(plugged, channel)))

    plugging = asyncio.create_task(plug_in())
    offsets.update(await publish(deployment, steady, seconds=26))  # the 12 plugged in meanwhile
    await plugging
    await wait_applied(state, deployment, offsets, seconds=240)
    for worker in workers:
        log = worker.log.read_text()
        assert worker.process.poll() is None, log[-3000:]
        assert "Partition is not assigned" not in log
        assert "Traceback" not in log, log[-3000:]
    combined = Traffic(
        records=steady.records + plugged.records, events=steady.events + plugged.events
    )
    assert await bucket_state(state) == recompute(combined, now)
    assert await state.scard("roi:channels") == len(CHANNELS) + len(NEW_CHANNELS)

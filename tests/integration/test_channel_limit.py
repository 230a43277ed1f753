"""Bounded channels on the real stack (CONTRACT.md §1 v2): a channel is known from its
first counted event, at most ROI_MAX_CHANNELS are, events of further channels are
dead-lettered `channel_limit`; removing a channel frees its place and takes its figures
off /metrics."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections import Counter

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics.ingest.contract import DeadLetterHeader as H

from tests.cloudevents import encode, event
from tests.integration.harness import EXECUTABLE, Deployment, WorkerProcess, free_port
from tests.integration.pipeline import Offsets, create_channels, read_topic, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 7  # this module's Redis database (the deployment and state fixtures)


async def publish(deployment: Deployment, channel: str, first: int, count: int) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap)
    await producer.start()
    offsets: Offsets = {}
    try:
        for number in range(first, first + count):
            body = event(
                "conversation.started",
                f"{channel}-{number}",
                f"c{number}",
                time.time() - 5,
                f"/{channel}/limit",
                handled_by="ai",
            )
            metadata = await producer.send_and_wait(
                deployment.prefix + channel, encode(body), key=f"c{number}".encode()
            )
            offsets[(metadata.topic, metadata.partition)] = metadata.offset
    finally:
        await producer.stop()
    return offsets


def exported_channels(exporter: WorkerProcess) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        line.split('channel="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("support_conversations{")
    }


async def test_channels_beyond_the_limit_are_dead_lettered_until_one_is_removed(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["alpha", "beta", "gamma"])
    worker = deployment.start_worker(env={"ROI_MAX_CHANNELS": "2"})
    exporter = deployment.start_exporter()
    await wait_applied(state, deployment, await publish(deployment, "alpha", 0, 5))
    await wait_applied(state, deployment, await publish(deployment, "beta", 0, 5))
    await wait_applied(state, deployment, await publish(deployment, "gamma", 0, 7))
    assert await state.smembers("roi:channels") == {b"alpha", b"beta"}
    letters = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 7)
    reasons = Counter(dict(letter.headers)[H.REASON] for letter in letters)
    assert reasons == {b"channel_limit": 7}
    assert worker.labelled("support_dead_letters_total", reason="channel_limit") == 7
    assert worker.labelled("support_events_total", channel="_unregistered") == 7
    assert exported_channels(exporter) == {"alpha", "beta"}

    removed = subprocess.run(
        [str(EXECUTABLE), "channel", "remove", "beta", "--yes"],
        env=deployment.env(free_port()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    assert exported_channels(exporter) == {"alpha"}
    await wait_applied(state, deployment, await publish(deployment, "gamma", 7, 3))
    assert await state.smembers("roi:channels") == {b"alpha", b"gamma"}
    assert exported_channels(exporter) == {"alpha", "gamma"}
    assert await state.hget("roi:{gamma}:b:all:0", "conversations") == b"3"

"""Publishing generated traffic to real Kafka and reading back what the workers made of it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from roi_metrics.settings import Settings
from roi_metrics.worker.app import ensure_topic

from tests.integration.harness import Deployment
from tests.integration.traffic import Traffic

BUCKET_KEY = re.compile(rb"^roi:\{[a-z0-9_-]+\}:b:(m|h|d|all):[0-9]+$")
Offsets = dict[tuple[str, int], int]
"""(topic, partition) -> offset of the last record published there."""


async def create_channels(deployment: Deployment, channels: list[str], partitions: int = 4) -> None:
    settings = Settings(kafka_bootstrap_servers=deployment.bootstrap)
    for channel in channels:
        await ensure_topic(settings, deployment.prefix + channel, partitions)
    await ensure_topic(settings, deployment.dead_letter_topic)


async def publish(
    deployment: Deployment,
    traffic: Traffic,
    seconds: float = 0.0,
    during: Callable[[float], Awaitable[None]] | None = None,
) -> Offsets:
    """Publish every record, spread over about `seconds`; `during(progress)` is awaited
    between chunks (progress from 0 to 1) to kill, scale or break things mid-stream."""
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=2 * 1024 * 1024,
        linger_ms=5,
    )
    await producer.start()
    offsets: Offsets = {}
    chunks = 40
    size = max(1, len(traffic.records) // chunks + 1)
    try:
        for start in range(0, len(traffic.records), size):
            pending = [
                await producer.send(deployment.prefix + channel, key=key, value=value)
                for channel, key, value in traffic.records[start : start + size]
            ]
            for delivery in pending:
                metadata = await delivery
                tp = (metadata.topic, metadata.partition)
                offsets[tp] = max(offsets.get(tp, -1), metadata.offset)
            if during is not None:
                await during(min(1.0, (start + size) / len(traffic.records)))
            if seconds:
                await asyncio.sleep(seconds / chunks)
    finally:
        await producer.stop()
    return offsets


async def wait_applied(
    client: aioredis.Redis, deployment: Deployment, offsets: Offsets, seconds: float = 180
) -> float:
    """Wait until every partition's watermark reached its last published offset; returns
    how long it took."""
    started = time.monotonic()
    while True:
        behind = 0
        for (topic, partition), last in offsets.items():
            channel = topic.removeprefix(deployment.prefix)
            applied = await client.hget(f"roi:{{{channel}}}:wm", f"{topic}:{partition}")
            if applied is None or int(applied) < last:
                behind += 1
        if not behind:
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{behind} partitions not applied after {seconds}s")
        await asyncio.sleep(0.25)


async def matches_oracle(
    client: Any, expected: dict[str, dict[str, int]], seconds: float = 60
) -> None:
    """Wait until the bucket state is `expected`: the customer agent joins its facts after
    the batches that sent them are applied (CONTRACT.md §9), so re-contacts come a moment
    after the watermarks; AssertionError (the state against the oracle) when they never do."""
    deadline = time.monotonic() + seconds
    while (found := await bucket_state(client)) != expected:
        if time.monotonic() > deadline:
            differing = {
                key: {
                    field: (found.get(key, {}).get(field), expected.get(key, {}).get(field))
                    for field in set(found.get(key, {})) | set(expected.get(key, {}))
                    if found.get(key, {}).get(field) != expected.get(key, {}).get(field)
                }
                for key in sorted(set(found) | set(expected))
                if found.get(key) != expected.get(key)
            }
            assert found == expected, f"{len(differing)} buckets differ: {differing}"
        await asyncio.sleep(0.25)


async def bucket_state(client: aioredis.Redis) -> dict[str, dict[str, int]]:
    """Every bucket hash in the database, as the oracle describes them."""
    state = {}
    async for key in client.scan_iter(match="roi:*:b:*", count=1000):
        if not BUCKET_KEY.match(key):
            continue  # a dedup mark whose binary digest happens to contain ":b:"
        raw = await client.hgetall(key)
        state[key.decode()] = {k.decode(): int(v) for k, v in raw.items() if int(v)}
    return state


async def read_topic(
    bootstrap: str, topic: str, at_least: int, seconds: float = 30
) -> list[ConsumerRecord]:
    """Every record of `topic` from the start, once at least `at_least` are there."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(seconds):
            while len(records) < at_least:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records

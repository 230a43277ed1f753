"""Fixtures on the real stack: a clean Redis database, a producer, a fresh topic, a Redis of
a test's own and a deployment of workers. Plain helpers live in harness.py and pipeline.py."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics.settings import Settings
from roi_metrics.worker.app import ensure_topic

from tests.integration.harness import ROOT, TEST_DB, Deployment, free_port
from tests.stack import redis_url


@pytest.fixture
async def redis_db(redis_client: aioredis.Redis) -> AsyncIterator[aioredis.Redis]:
    """A flushed Redis database of its own (the stack's Redis, database 14)."""
    base = redis_url().rsplit("/", 1)[0]
    client = aioredis.Redis.from_url(f"{base}/{TEST_DB}")
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture
async def topic_name(bootstrap: str) -> str:
    """A new topic of one partition."""
    name = f"test.{uuid.uuid4().hex[:10]}"
    await ensure_topic(Settings(kafka_bootstrap_servers=bootstrap), name)
    return name


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A Redis of this test's own, started and stopped by the project's redis.sh."""
    port = free_port()
    env = {**os.environ, "ROI_STATE_DIR": str(tmp_path / "state"), "ROI_REDIS_PORT": str(port)}
    env.pop("REDIS_URL", None)

    def control(action: str) -> None:
        subprocess.run(
            [str(ROOT / "deploy/local/redis.sh"), action], env=env, check=True, capture_output=True
        )

    control("start")
    yield f"redis://127.0.0.1:{port}/0", control
    control("stop")


@pytest.fixture
def deployment(
    bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """Real workers and exporters of one test, on the Redis database its module names in
    REDIS_DB (each module has its own, so modules never share state); all stopped after."""
    base = redis_url().rsplit("/", 1)[0]
    deployed = Deployment(bootstrap, f"{base}/{request.module.REDIS_DB}", tmp_path)
    yield deployed
    deployed.stop_all()


@pytest.fixture
async def state(deployment: Deployment) -> AsyncIterator[aioredis.Redis]:
    """The deployment's Redis database, emptied first."""
    client = aioredis.Redis.from_url(deployment.redis_url)
    await client.flushdb()
    yield client
    await client.aclose()

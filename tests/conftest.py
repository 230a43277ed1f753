"""Where the real services of the local stack are; the same variables as deploy/local/*.sh.

Integration and e2e tests talk to real Kafka, Redis and Prometheus started by
`make stack-up`; they fail with a hint, never skip, when a service is not there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or (
        f"127.0.0.1:{os.environ.get('ROI_KAFKA_PORT', '19092')}"
    )


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or (
        f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/15"
    )


def prometheus_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ROI_PROMETHEUS_PORT', '19090')}"


def _require(host_port: str, what: str) -> None:
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"{what} is not reachable at {host_port}; start it with `make stack-up`")


@pytest.fixture(scope="session")
def bootstrap() -> str:
    servers = kafka_bootstrap()
    _require(servers.split(",")[0], "Kafka")
    return servers


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    url = redis_url()
    _require(url.split("//")[1].split("/")[0].split("@")[-1], "Redis")
    client = aioredis.Redis.from_url(url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def prometheus() -> str:
    url = prometheus_url()
    _require(url.removeprefix("http://"), "Prometheus")
    return url

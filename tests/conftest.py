"""Fixtures on the real services of the local stack, whose addresses are in tests/stack.py.

Integration and e2e tests talk to real Kafka, Redis and Prometheus started by
`make stack-up`; they fail with a hint, never skip, when a service is not there.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.stack import kafka_bootstrap, prometheus_url, redis_url


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

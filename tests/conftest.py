"""Fixtures on the real services of the local stack, whose addresses are in tests/stack.py.

Integration and e2e tests talk to real Kafka, Redis and Prometheus started by
`make stack-up`; they fail with a hint, never skip, when a service is not there.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests import containers
from tests.stack import kafka_bootstrap, prometheus_url, redis_url

_prepared: dict[str, containers.Preparation] = {}
"""The image's preparation, once a container test is collected."""


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


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a container test will run, start the Docker engine and, in the background, the
    image build, so that the minute or two it takes overlaps the tests before it."""
    if any(item.path.name == containers.CONTAINER_TESTS for item in session.items):
        log = Path(tempfile.mkdtemp(prefix="roi-image-")) / "build.log"
        _prepared["image"] = containers.start_preparing(log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    preparation = _prepared.get("image")
    if preparation is not None:
        preparation.finish()


@pytest.fixture(scope="session")
def image() -> str:
    """The roi-metrics image, built on the private engine; skips, saying why, where no Docker
    engine can run."""
    preparation = _prepared.get("image")
    if preparation is None:  # selected some other way than collection (never in a normal run)
        pytest.skip("the image is prepared only when test_docker.py is collected")
    if preparation.skip is not None:
        pytest.skip(preparation.skip)
    preparation.wait()
    return containers.IMAGE

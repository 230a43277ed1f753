"""The real local stack: records round-trip through Apache Kafka (from Python and from kcat,
a non-Python publisher) and hashes round-trip through Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.harness import ROOT, free_port

pytestmark = pytest.mark.integration


async def create_topic(bootstrap: str, partitions: int = 3) -> str:
    name = f"test.stack.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def consume(
    bootstrap: str, topic: str, count: int
) -> list[tuple[bytes | None, bytes | None, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for partition, records in batches.items():
                    received.extend((r.key, r.value, partition.partition) for r in records)
    finally:
        await consumer.stop()
    return received


async def test_records_round_trip_through_kafka_in_key_order(bootstrap: str) -> None:
    topic = await create_topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for index in range(300):
            key = f"conv-{index % 7}".encode()
            await producer.send(topic, key=key, value=f"{index}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    received = await consume(bootstrap, topic, 300)
    assert sorted(int(value or b"") for _, value, _ in received) == list(range(300))
    partitions_of: dict[bytes | None, set[int]] = {}
    for key, _, partition in received:
        partitions_of.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partitions_of.values())  # a key stays in one partition
    for key in partitions_of:
        values = [int(value or b"") for k, value, _ in received if k == key]
        assert values == sorted(values)  # and in order


async def test_a_non_python_publisher_plugs_in(bootstrap: str) -> None:
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat is missing; run deploy/local/install.sh"
    topic = await create_topic(bootstrap, partitions=1)
    lines = 'conv-1:{"n": 1}\nconv-2:{"n": 2}\n'
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-K", ":"],
        input=lines.encode(),
        check=True,
        timeout=30,
    )
    received = await consume(bootstrap, topic, 2)
    assert [(key, value) for key, value, _ in received] == [
        (b"conv-1", b'{"n": 1}'),
        (b"conv-2", b'{"n": 2}'),
    ]


async def test_a_hash_round_trips_through_redis(redis_client: aioredis.Redis) -> None:
    key = f"test:{{stack}}:{uuid.uuid4().hex}"
    try:
        async with redis_client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "conversations", 3)
            pipe.hincrby(key, "ai_cost_micros", 2_500_000)
            pipe.hincrby(key, "conversations", 2)
            pipe.expire(key, 60)
            await pipe.execute()
        assert await redis_client.hgetall(key) == {
            b"conversations": b"5",
            b"ai_cost_micros": b"2500000",
        }
        assert 0 < await redis_client.ttl(key) <= 60
    finally:
        await redis_client.delete(key)


async def test_redis_appends_to_its_log(redis_client: aioredis.Redis) -> None:
    config = await redis_client.config_get("appendonly")
    assert config == {"appendonly": "yes"}
    assert (await redis_client.config_get("appendfsync")) == {"appendfsync": "everysec"}


def test_the_stack_scripts_refuse_a_port_another_server_holds(tmp_path: Path) -> None:
    """A Redis this project did not start listens on the port: redis.sh (and prometheus.sh)
    must refuse it, not take it for their own (the demo empties its database next)."""
    port = free_port()
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--daemonize", "yes", "--pidfile", str(other / "redis.pid"),
         "--logfile", str(other / "redis.log")],
        check=True,
    )  # fmt: skip
    try:
        asyncio.run(_set(port, "precious", "1"))
        env = {**os.environ, "ROI_STATE_DIR": str(tmp_path / "state"), "REDIS_URL": ""}
        for script, variable in (
            ("redis.sh", "ROI_REDIS_PORT"),
            ("prometheus.sh", "ROI_PROMETHEUS_PORT"),
        ):
            result = subprocess.run(
                [str(ROOT / "deploy/local" / script), "start"],
                check=False,
                env={**env, variable: str(port)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, result.stderr
            name = script.removesuffix(".sh")
            assert result.stderr == (
                f"error: {name}: 127.0.0.1:{port} is taken by a process this project did not "
                f"start; set {variable} to a free port\n"
            )
        assert asyncio.run(_get(port, "precious")) == b"1"
    finally:
        subprocess.run(["kill", (other / "redis.pid").read_text().strip()], check=False)


async def _set(port: int, key: str, value: str) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=port)
    await client.set(key, value)
    await client.aclose()


async def _get(port: int, key: str) -> bytes | None:
    client = aioredis.Redis(host="127.0.0.1", port=port)
    value = await client.get(key)
    await client.aclose()
    return value

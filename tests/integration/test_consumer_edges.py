"""What reaches the worker from Kafka itself, on the real stack: records the client cannot
read, compressed records, aborted transactions, a topic deleted and created again, and a
flood of dead letters. None of them stops, stalls or fools the worker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from roi_metrics.ingest.contract import DeadLetterHeader as H

from tests.cloudevents import encode, event
from tests.integration.harness import Deployment
from tests.integration.pipeline import Offsets, create_channels, read_topic, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 4  # this module's Redis database (the deployment and state fixtures)


def started(name: str) -> bytes:
    body = event(
        "conversation.started", name, f"c-{name}", time.time() - 5, "/web/edge", handled_by="ai"
    )
    return encode(body)


async def send(
    deployment: Deployment, values: list[bytes], topic: str | None = None, **options: object
) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, **options)  # type: ignore[arg-type]
    await producer.start()
    offsets: Offsets = {}
    try:
        for value in values:
            target = topic or deployment.prefix + "web"
            metadata = await producer.send_and_wait(target, value, key=b"edge", partition=0)
            offsets[(target, 0)] = metadata.offset
    finally:
        await producer.stop()
    return offsets


async def conversations(state: aioredis.Redis) -> int:
    return int(await state.hget("roi:{web}:b:all:0", "conversations") or 0)


async def test_unreadable_and_compressed_records_neither_crash_nor_stop_the_worker(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    """A header name that is not UTF-8 once crashed the consumer (and again after every
    restart); snappy, lz4 and zstd records too, for want of their codecs."""
    await create_channels(deployment, ["web"], partitions=1)
    worker = deployment.start_worker()
    await send(deployment, [started("plain")])
    subprocess.run(  # kcat: a header name of bytes 0xff 0xfe, which no producer API allows
        f"printf '%s\\n' '{started('bad-header').decode()}' | kcat -P -b {deployment.bootstrap}"
        f" -t {deployment.prefix}web -p 0 -k edge -H $'\\xff\\xfe=v'",
        shell=True,
        executable="/bin/bash",
        check=True,
    )
    for codec in ("snappy", "lz4", "zstd", "gzip"):
        padded = event(
            "conversation.started",
            codec,
            f"c-{codec}",
            time.time() - 5,
            "/web/edge",
            handled_by="ai",
            pad="x" * 5000,
        )
        await send(deployment, [encode(padded)], compression_type=codec)
    offsets = await send(deployment, [started("after")])
    await wait_applied(state, deployment, offsets, seconds=60)
    assert await conversations(state) == 6  # plain, four compressed, after
    assert worker.process.poll() is None and worker.readyz() == 200
    [letter] = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 1)
    headers = dict(letter.headers)
    assert (headers[H.REASON], headers[H.ORIGIN_OFFSET]) == (b"unprocessable", b"1")
    assert headers[H.ERROR].startswith(b"UnicodeDecodeError")
    assert (letter.key, letter.value) == (None, b"")


async def test_aborted_transactions_are_not_counted(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["web"], partitions=1)
    deployment.start_worker()
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap, transactional_id=f"{deployment.run}-abort"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(deployment.prefix + "web", started("committed"), key=b"edge")
        await producer.begin_transaction()
        for number in range(5):
            await producer.send(deployment.prefix + "web", started(f"aborted-{number}"), key=b"e")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    offsets = await send(deployment, [started("after")])
    await wait_applied(state, deployment, offsets, seconds=60)
    assert await conversations(state) == 2  # the committed one and the one after


async def test_a_topic_created_again_counts_its_new_records(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    """A channel topic deleted and created again behind the service's back (then the
    workers restarted): its old watermark names offsets the new topic has not reached; the
    new records at those offsets are not redeliveries and must count."""
    await create_channels(deployment, ["web"], partitions=1)
    worker = deployment.start_worker()
    old = await send(deployment, [started(f"old-{n}") for n in range(4)])
    await wait_applied(state, deployment, old)
    worker.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([deployment.prefix + "web"])
        await asyncio.sleep(3)
    finally:
        await admin.close()
    await create_channels(deployment, ["web"], partitions=1)
    await send(deployment, [started("new-0"), started("new-1")])
    restarted = deployment.start_worker()
    deadline = time.monotonic() + 60
    while await conversations(state) < 6:
        assert time.monotonic() < deadline, restarted.log.read_text()[-2000:]
        await asyncio.sleep(0.5)
    assert await conversations(state) == 6
    assert "was deleted and created again" in restarted.log.read_text()
    assert await state.hgetall("roi:{web}:wm") == {f"{deployment.prefix}web:0".encode(): b"1"}


async def test_a_flood_of_dead_letters_is_progress_not_a_stall(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    """100 small records of 1000 invalid elements each: 100,000 dead letters, which take
    longer to send than the stall time the worker is given here. It keeps going, sends each
    letter once, and counts the valid event behind the flood."""
    await create_channels(deployment, ["web"], partitions=1)
    worker = deployment.start_worker(env={"ROI_STALL_SECONDS": "2"})
    flood = b"[" + b",".join([b"1"] * 1000) + b"]"
    offsets = await send(deployment, [flood] * 100 + [started("behind")], linger_ms=20)
    await wait_applied(state, deployment, offsets, seconds=240)
    assert await conversations(state) == 1
    assert worker.process.poll() is None, worker.log.read_text()[-2000:]
    letters = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 100_000)
    assert len(letters) == 100_000
    per_record = Counter(dict(letter.headers)[H.ORIGIN_OFFSET] for letter in letters)
    assert set(per_record.values()) == {1000}

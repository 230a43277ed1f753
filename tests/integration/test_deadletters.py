"""Dead letters always deliverable, on real Kafka: the whole letter is sized against the
dead-letter topic's max.message.bytes (read when the worker starts), key and payload are
cut with headers saying so, and a size refusal (the limit lowered under a running worker)
is answered once with a headers-only letter, never retried: the partition moves on."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from roi_metrics.ingest.contract import DeadLetterHeader as H

from tests.cloudevents import encode, event
from tests.integration.harness import Deployment
from tests.integration.pipeline import Offsets, create_channels, read_topic, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 8  # this module's Redis database (the deployment and state fixtures)
SMALL = 64 * 1024


async def dead_letter_topic(deployment: Deployment, max_message_bytes: int) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    config = {"max.message.bytes": str(max_message_bytes)}
    await admin.create_topics([NewTopic(deployment.dead_letter_topic, 1, 1, topic_configs=config)])
    return admin


async def send(deployment: Deployment, records: list[tuple[bytes, bytes]]) -> Offsets:
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap, max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    offsets: Offsets = {}
    try:
        for key, value in records:
            metadata = await producer.send_and_wait(deployment.prefix + "web", value, key=key)
            offsets[(metadata.topic, metadata.partition)] = metadata.offset
    finally:
        await producer.stop()
    return offsets


def started(number: int, **over: object) -> dict[str, object]:
    body = event(
        "conversation.started",
        f"d{number}",
        f"c{number}",
        time.time() - 5,
        "/web/dl",
        handled_by="ai",
    )
    body.update(over)
    return body


async def test_dead_letters_fit_the_topic_and_a_size_refusal_is_not_retried(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    admin = await dead_letter_topic(deployment, SMALL)
    try:
        await create_channels(deployment, ["web"])
        worker = deployment.start_worker()
        big_invalid = b'{"pad": "' + b"x" * 900_000 + b'"'
        batch = [
            started(1, specversion="0.3", pad="y" * 100_000),
            started(2),
            started(3, data={"handled_by": "bot"}, pad="z" * 100_000),
        ]
        offsets = await send(deployment, [(b"k" * 2000, big_invalid), (b"c", encode(batch))])
        await wait_applied(state, deployment, offsets)
        letters = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 3)
        assert len(letters) == 3
        for letter in letters:
            size = (
                len(letter.value)
                + len(letter.key or b"")
                + sum(len(k) + len(v) for k, v in letter.headers)
            )
            assert size <= SMALL
        first, *events = letters
        headers = dict(first.headers)
        assert (len(first.key), headers[H.KEY_TRUNCATED]) == (1024, b"2000")
        assert headers[H.TRUNCATED] == str(len(big_invalid)).encode()
        assert big_invalid.startswith(first.value) and len(first.value) > SMALL - 4096
        for letter, original in zip(events, (encode(batch[0]), encode(batch[2])), strict=True):
            assert dict(letter.headers)[H.TRUNCATED] == str(len(original)).encode()
            assert original.startswith(letter.value)  # the event's own bytes, cut
        assert worker.labelled("support_events_total", outcome="counted") == 1

        # the topic's limit lowered under the running worker: the broker refuses the letter
        lowered = {"max.message.bytes": "4096"}
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, deployment.dead_letter_topic, lowered)]
        )
        offsets = await send(
            deployment, [(b"c9", b"{" + b"w" * 50_000), (b"c10", encode(started(10)))]
        )
        await wait_applied(state, deployment, offsets, seconds=30)  # not held by retries
        letters = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 4)
        stripped = letters[3]
        assert (stripped.key, stripped.value) == (None, b"")
        assert dict(stripped.headers)[H.TRUNCATED] == b"50001"
        assert dict(stripped.headers)[H.REASON] == b"invalid_json"
        assert worker.labelled("support_events_total", outcome="counted") == 2
        assert worker.labelled("support_dead_letters_undeliverable_total") == 0
        assert worker.readyz() == 200
    finally:
        await admin.close()

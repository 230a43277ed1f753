"""CloudEvents binary content mode through real Kafka and a real worker: records made by the
official CloudEvents SDK, half binary and half structured, count exactly as worked out by
hand; an invalid binary record is dead-lettered with its ce_ headers, so it is still an
event someone can read and send again. Records made by kcat's -H headers count too."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from roi_metrics.ingest.contract import DeadLetterHeader as H
from roi_metrics.state import keys

from tests.integration.harness import Deployment
from tests.integration.pipeline import Offsets, create_channels, read_topic, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 5  # this module's Redis database (the deployment and state fixtures)
CONVERSATIONS = 20


def conversation(number: int, at: dt.datetime) -> list[CloudEvent]:
    """Started by the AI, resolved by it, 0.25 USD of AI usage."""
    kinds = [
        ("support.conversation.started", {"handled_by": "ai"}),
        ("support.conversation.resolved", {"resolved_by": "ai"}),
        ("support.cost.recorded", {"amount": "0.25", "currency": "USD", "category": "ai_usage"}),
    ]
    return [
        CloudEvent(
            attributes={
                "id": f"b{number}-{step}",
                "source": "/web/binary-test",
                "type": kind,
                "time": at + dt.timedelta(seconds=step),
                "subject": f"conv-{number}",
                "datacontenttype": "application/json",
            },
            data=data,
        )
        for step, (kind, data) in enumerate(kinds)
    ]


async def send(deployment: Deployment, messages: list[KafkaMessage]) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap)
    await producer.start()
    offsets: Offsets = {}
    try:
        for message in messages:
            headers = list(message.headers.items())
            key = message.key.encode() if isinstance(message.key, str) else message.key
            metadata = await producer.send_and_wait(
                deployment.prefix + "web", message.value, key=key, headers=headers
            )
            offsets[(metadata.topic, metadata.partition)] = metadata.offset
    finally:
        await producer.stop()
    return offsets


async def test_binary_and_structured_records_count_alike(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    await create_channels(deployment, ["web"])
    worker = deployment.start_worker()
    at = dt.datetime.fromtimestamp(int(time.time()) - 120, dt.UTC)
    messages: list[KafkaMessage] = []
    for number in range(CONVERSATIONS):
        convert = to_binary if number % 2 else to_structured
        for sdk_event in conversation(number, at):
            message = convert(sdk_event, JSONFormat(), lambda e: e.get_subject())
            messages.append(message)
    valid = to_binary(conversation(99, at)[0], JSONFormat())  # its data made invalid:
    messages.append(KafkaMessage(valid.headers, b"conv-99", b'{"handled_by": "robot"}'))
    offsets = await send(deployment, messages)
    await wait_applied(state, deployment, offsets)
    totals = await state.hgetall(keys.bucket("web", ("all", 0)))
    assert {name.decode(): int(value) for name, value in totals.items()} == {
        "conversations": CONVERSATIONS,
        "ai_conversations": CONVERSATIONS,
        "ai_resolutions_assumed": CONVERSATIONS,
        "ai_cost_micros": CONVERSATIONS * 250_000,
    }
    [letter] = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 1)
    headers = dict(letter.headers)
    assert headers[H.REASON.value] == b"invalid_data"
    assert headers["ce_id"] == b"b99-0" and headers["ce_subject"] == b"conv-99"
    assert headers["content-type"] == b"application/json"
    assert letter.value == b'{"handled_by": "robot"}' and letter.key == b"conv-99"
    assert worker.labelled("support_events_total", outcome="counted") == CONVERSATIONS * 3
    assert worker.process.poll() is None and worker.readyz() == 200


async def test_binary_records_made_by_kcat_count(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    """kcat (Debian's) as a producer that knows nothing of CloudEvents: the attributes as -H
    headers, the data as the value. A record without ce_specversion is not an event."""
    await create_channels(deployment, ["web"], partitions=1)
    deployment.start_worker()
    when = dt.datetime.fromtimestamp(int(time.time()) - 60, dt.UTC).isoformat()
    attributes = {
        "ce_specversion": "1.0",
        "ce_source": "/web/kcat",
        "ce_subject": "conv-k",
        "ce_time": when,
        "content-type": "application/json",
    }
    records = [
        ({**attributes, "ce_id": "k1", "ce_type": "support.conversation.started"},
         '{"handled_by":"ai"}'),
        ({**attributes, "ce_id": "k2", "ce_type": "support.conversation.resolved"},
         '{"resolved_by":"ai"}'),
        ({"ce_id": "k3", "ce_type": "support.conversation.started"}, '{"handled_by":"ai"}'),
    ]  # fmt: skip
    for headers, data in records:
        options = [item for name, value in headers.items() for item in ("-H", f"{name}={value}")]
        sent = subprocess.run(
            ["kcat", "-P", "-b", deployment.bootstrap, "-t", deployment.prefix + "web",
             "-k", "conv-k", *options],
            input=data.encode(), capture_output=True, check=False, timeout=30,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    await wait_applied(state, deployment, {(deployment.prefix + "web", 0): len(records) - 1})
    totals = await state.hgetall(keys.bucket("web", ("all", 0)))
    assert {name.decode(): int(value) for name, value in totals.items()} == {
        "conversations": 1,
        "ai_conversations": 1,
        "ai_resolutions_assumed": 1,  # no satisfaction score: assumed to hold
    }
    [letter] = await read_topic(deployment.bootstrap, deployment.dead_letter_topic, 1)
    assert dict(letter.headers)[H.REASON.value] == b"invalid_envelope"

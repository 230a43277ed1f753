"""A batch processor on a given Redis and dead-letter topic, and one batch of records for it
that covers counting, a duplicate and a dead letter; shared by test_processor.py and
test_exporter.py."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics.ingest.decode import Decoder
from roi_metrics.state.store import StateStore
from roi_metrics.worker.deadletter import KafkaDeadLetters
from roi_metrics.worker.metrics import WorkerMetrics
from roi_metrics.worker.processor import BatchProcessor, Record

from tests.cloudevents import encode, event

NOW = float(int(time.time()))  # whole seconds: the expected micros are exact
TOPIC = "support.events.web"


def processor(
    client: aioredis.Redis,
    producer: AIOKafkaProducer,
    dlq: str,
    topic_prefix: str = "support.events.",
) -> BatchProcessor:
    return BatchProcessor(
        decoder=Decoder("USD"),
        store=StateStore(client, dedup_horizon_seconds=86_400, conversation_ttl_seconds=2_592_000),
        dead_letters=KafkaDeadLetters(producer, dlq),
        metrics=WorkerMetrics(),
        topic_prefix=topic_prefix,
        max_lateness_seconds=7 * 86_400,
    )


async def mark_count(client: aioredis.Redis, channel: str = "web") -> int:
    """How many dedup marks `channel` holds (a field each in its mark hashes)."""
    names = [key async for key in client.scan_iter(f"roi:{{{channel}}}:s:*", count=1000)]
    return sum([await client.hlen(name) for name in names])


def records() -> list[Record]:
    started = event("conversation.started", "1", "c1", NOW - 60, handled_by="ai")
    resolved = event("conversation.resolved", "2", "c1", NOW - 30, resolved_by="ai")
    cost = event(
        "cost.recorded", "3", "c1", NOW - 20, amount="0.125", currency="USD", category="ai_usage"
    )
    revenue = event("revenue.attributed", "4", "c1", NOW - 10, amount=40, currency="USD")
    return [
        Record(TOPIC, 0, 10, b"c1", encode([started, resolved])),
        Record(TOPIC, 0, 11, b"c1", encode(cost)),
        Record(TOPIC, 0, 12, b"c1", encode(started)),  # a duplicate of offset 10's first event
        Record(TOPIC, 0, 13, b"c1", b"{broken"),
        Record(TOPIC, 0, 14, b"c1", encode(revenue)),
    ]

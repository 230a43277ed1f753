"""Shared by the benchmarks: a processor on the local stack's Redis."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from roi_metrics.ingest.decode import Decoder
from roi_metrics.state.store import StateStore
from roi_metrics.worker.deadletter import DeadLetter
from roi_metrics.worker.metrics import WorkerMetrics
from roi_metrics.worker.processor import BatchProcessor


class NoDeadLetters:
    """The benchmarks' input is valid: nothing is dead-lettered (asserted)."""

    async def deliver(self, letters: list[DeadLetter]) -> list[BaseException | None]:
        raise AssertionError(f"unexpected dead letters: {letters[:1]}")


def local_processor(client: aioredis.Redis) -> BatchProcessor:
    """The worker's processor with the default settings, on `client`."""
    return BatchProcessor(
        decoder=Decoder("USD"),
        store=StateStore(client, 86_400, 2_592_000),
        dead_letters=NoDeadLetters(),
        metrics=WorkerMetrics(),
        topic_prefix="support.events.",
        max_lateness_seconds=7 * 86_400,
    )


async def local_redis(db: int) -> aioredis.Redis:
    """A client on database `db` of the local stack's Redis, emptied; exits with one line
    when Redis is not running."""
    url = f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/{db}"
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    except RedisConnectionError:
        sys.exit(f"error: Redis is not reachable at {url}; start the stack with `make stack-up`")
    return client


ROOT = Path(__file__).resolve().parents[1]


def worker_env(
    bootstrap: str, redis_url: str, prefix: str, group: str, **more: str
) -> dict[str, str]:
    """The environment of a worker (or exporter) the benchmarks start: this one's, then the
    local stack, the channel prefix, a dead-letter and a customer topic outside the channels
    (a dot after the prefix), the committed cost card and `more` (ROI_ names without the prefix)."""
    return {
        **os.environ,
        "ROI_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ROI_REDIS_URL": redis_url,
        "ROI_TOPIC_PREFIX": prefix,
        "ROI_GROUP_ID": group,
        "ROI_DEAD_LETTER_TOPIC": f"{prefix}dead.letters",
        "ROI_CUSTOMER_TOPIC": f"{prefix}customer.facts",  # outside the channels, as above
        "ROI_COST_CARD": str(ROOT / "deploy/costs.toml"),
        **{f"ROI_{name.upper()}": value for name, value in more.items()},
    }

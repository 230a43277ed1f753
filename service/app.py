"""The Faust worker: one agent counts every channel topic; a timer discovers new channels.

Faust does the consumer group, rebalancing, offset commits and the web server; the state is
ours (service.state). A record is acknowledged only after its batch is applied, so offsets
are never committed past what Redis holds (see service.pipeline).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

import faust
import mode
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.contract import CHANNEL_PATTERN
from service.deadletter import KafkaDeadLetters
from service.decode import Decoder
from service.domain.costcard import CostCard
from service.metrics import WorkerMetrics
from service.pipeline import apply_then_ack
from service.processor import BatchProcessor
from service.settings import Settings
from service.state.store import StateStore
from service.topics import ensure_topic

log = logging.getLogger(__name__)
CHANNEL: Final = re.compile(CHANNEL_PATTERN)
RESUBSCRIBE_DELAY_SECONDS: Final = 1.0
"""Faust coalesces subscription changes for 45 s by default; a new channel should count
within seconds."""


def channel_topics(names: set[str], prefix: str) -> list[str]:
    """The topics among `names` that are channel topics: the prefix, then a channel name."""
    return sorted(
        name for name in names if name.startswith(prefix) and CHANNEL.match(name[len(prefix) :])
    )


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    context = settings.ssl_context()
    if settings.kafka_security_protocol.startswith("SASL"):
        assert settings.kafka_sasl_password is not None
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


@dataclass
class Runtime:
    """What the agent, timers and pages share; filled in when the worker starts."""

    settings: Settings
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    processor: BatchProcessor | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    subscribed: list[str] = field(default_factory=list)
    discovered_once: bool = False

    @property
    def ready(self) -> bool:
        return bool(self.processor and self.processor.ready and self.discovered_once)


def create_app(settings: Settings, card: CostCard) -> tuple[faust.App, Runtime]:
    """The worker's Faust app and its shared runtime."""
    runtime = Runtime(settings)
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=broker_credentials(settings),
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.consumer_session_timeout_seconds,
        broker_heartbeat_interval=settings.consumer_heartbeat_seconds,
        broker_rebalance_timeout=settings.rebalance_timeout_seconds,
        datadir=str(settings.data_dir),
        # On stop, Faust would wait for every unacknowledged event without limit (forever
        # while Redis is away); unapplied events stay unacknowledged, hence uncommitted.
        stream_wait_empty=False,
    )
    topic = app.topic(value_serializer="raw", key_serializer="raw", allow_empty=True)

    @app.service
    class Resources(mode.Service):
        """Redis client, dead-letter producer and the batch processor."""

        async def on_start(self) -> None:
            client = aioredis.Redis.from_url(
                settings.redis_url.get_secret_value(), **settings.redis_options()
            )
            self.redis = client
            self.producer = AIOKafkaProducer(
                acks="all", enable_idempotence=True, **settings.kafka_client_options()
            )
            await self.producer.start()
            await ensure_topic(settings, settings.dead_letter_topic)
            runtime.processor = BatchProcessor(
                decoder=Decoder(card.currency),
                store=StateStore(
                    client, settings.dedup_horizon_seconds, settings.conversation_ttl_seconds
                ),
                dead_letters=KafkaDeadLetters(self.producer, settings.dead_letter_topic),
                metrics=runtime.metrics,
                topic_prefix=settings.topic_prefix,
                max_lateness_seconds=settings.max_lateness_seconds,
            )
            runtime.started.set()

        async def on_stop(self) -> None:
            await self.producer.stop()
            await self.redis.aclose()

    @app.agent(topic, name="count-events")
    async def count_events(stream: Any) -> None:
        await runtime.started.wait()
        processor = runtime.processor
        assert processor is not None
        async for events in stream.noack_take(
            settings.batch_max_records, settings.batch_wait_seconds
        ):
            await apply_then_ack(processor, events, stream.ack)

    @app.timer(settings.discovery_interval_seconds)  # type: ignore[untyped-decorator]
    async def discover_channels() -> None:
        await _discover(app, runtime)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        _report_lag(app, runtime)

    @app.page("/metrics")
    async def metrics_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        body = generate_latest(runtime.metrics.registry).decode()
        return web.text(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def health_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.text("ok\n")

    @app.page("/readyz")
    async def ready_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        if runtime.ready:
            return web.text("ready\n")
        return web.text("not ready\n", status=503)

    _conductor(app)._resubscribe_sleep_lock_seconds = RESUBSCRIBE_DELAY_SECONDS
    del count_events, discover_channels, report_lag, metrics_page, health_page, ready_page
    return app, runtime


def _conductor(app: faust.App) -> Any:
    """Faust's topic conductor, for the two private hooks channel discovery needs: its
    resubscribe delay and its change flag. Faust's pattern subscription subscribes to
    nothing (faust-streaming issue #62), so this is how new channels are picked up."""
    return app.topics


async def _discover(app: faust.App, runtime: Runtime) -> None:
    """Subscribe to channel topics that appeared since the last look."""
    settings = runtime.settings
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    try:
        await admin.start()
        names = set(await admin.list_topics())
    except Exception as error:
        log.warning("could not list topics: %s", error)
        return
    finally:
        await admin.close()
    found = channel_topics(names, settings.topic_prefix)
    runtime.discovered_once = True
    if found == runtime.subscribed:
        return
    log.info("channel topics: %s", ", ".join(found))
    # The agent iterates a clone of its topic; update every copy the conductor holds.
    for candidate in list(app.topics):
        if list(candidate.topics) == runtime.subscribed:
            candidate.topics = list(found)
    runtime.subscribed = found
    runtime.metrics.channels.set(len(found))
    for name in found:
        runtime.metrics.channel_known(name[len(settings.topic_prefix) :])
    _conductor(app)._flag_changes()


def _report_lag(app: faust.App, runtime: Runtime) -> None:
    processor = runtime.processor
    if processor is None:
        return
    lag = runtime.metrics.lag
    assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
    for (topic, partition), offset in list(processor.applied_offsets.items()):
        if (topic, partition) not in assigned:
            del processor.applied_offsets[(topic, partition)]
            lag.remove(topic, str(partition))
            continue
        highwater = app.consumer.highwater(faust.types.TP(topic, partition))
        if highwater is not None:
            lag.labels(topic, str(partition)).set(max(0, highwater - offset - 1))

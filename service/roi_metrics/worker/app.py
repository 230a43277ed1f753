"""The Faust worker: one agent counts every channel topic; a timer discovers new channels.

Faust does the consumer group, rebalancing, offset commits and the web server; the state is
ours (roi_metrics.state). A record is acknowledged only after its batch is applied, so offsets
are never committed past what Redis holds (see roi_metrics.worker.pipeline).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

import faust
import mode
from aiokafka import AIOKafkaProducer
from faust.types import TP
from faust.web.base import BlueprintManager
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from roi_metrics.domain.costcard import CostCard
from roi_metrics.ingest.decode import Decoder
from roi_metrics.ingest.topics import ensure_topic, topic_config
from roi_metrics.settings import DAY_SECONDS, Settings
from roi_metrics.state.connect import async_client
from roi_metrics.state.customers import CustomerStore
from roi_metrics.state.store import StateStore
from roi_metrics.worker.consumer import consumer_class
from roi_metrics.worker.customers import CustomerAgent, FactPost
from roi_metrics.worker.deadletter import PRODUCER_MAX_REQUEST_BYTES, KafkaDeadLetters
from roi_metrics.worker.gaps import RangeReader
from roi_metrics.worker.monitor import (
    LAG_INTERVAL_SECONDS,
    WATCH_INTERVAL_SECONDS,
    check_health,
    discover,
    flush_unreadable,
    report_lag,
    set_resubscribe_delay,
)
from roi_metrics.worker.pipeline import applier, record_bytes
from roi_metrics.worker.processor import BatchProcessor
from roi_metrics.worker.runtime import Runtime

JOIN_IDLE_SECONDS: Final = 1.0
"""The joiner, idle this long, looks for facts never handed over at its partitions' end."""
TAILS_SECONDS: Final = 10.0
"""... and busy, it looks at least this often."""

log = logging.getLogger(__name__)


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


def _faust_app(settings: Settings) -> faust.App:
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
        topic_replication_factor=settings.topic_replication_factor,  # its leader topic
        # On stop, Faust would wait for every unacknowledged event without limit (forever
        # while Redis is away); unapplied events stay unacknowledged, hence uncommitted.
        stream_wait_empty=False,
    )
    # The transport builds the consumer from this class attribute (roi_metrics.worker.consumer).
    app.transport.Consumer = consumer_class(settings.consumer_fetch_wait_seconds)  # type: ignore[misc]
    # Only this service's pages (/metrics, /healthz, /readyz, in _pages): none of Faust's
    # built-in ones (/router, /table, /graph, statistics, an index that says OK whatever the
    # worker's state).
    app.web.blueprints = BlueprintManager([])
    set_resubscribe_delay(app)
    return app


async def _dead_letter_limit(settings: Settings) -> int:
    """The largest dead letter the producer and the topic both take."""
    topic_limit = await topic_config(settings, settings.dead_letter_topic, "max.message.bytes")
    return min(PRODUCER_MAX_REQUEST_BYTES, int(topic_limit or PRODUCER_MAX_REQUEST_BYTES))


async def _end_offset(app: faust.App, tp: TP) -> int | None:
    """The partition's end offset, asked of the broker."""
    ends = await app.consumer.highwaters(tp)
    end: int | None = ends.get(tp)
    return end


def _committed(app: faust.App, tp: TP) -> int | None:
    """The group's committed offset of `tp` as Faust's consumer last knew it (read when the
    partition was assigned, moved by its commits); None when it knows none."""
    offset = getattr(app.consumer, "_committed_offset", {}).get(tp)
    return None if offset is None else int(offset)


def _resources(app: faust.App, runtime: Runtime, card: CostCard) -> None:
    """Registers the service that opens Redis and the dead-letter producer and builds the
    batch processor when the worker starts."""
    settings = runtime.settings

    @app.service
    class Resources(mode.Service):
        """Redis client, dead-letter producer and the batch processor."""

        async def on_start(self) -> None:
            client = async_client(
                settings.redis_url.get_secret_value(),
                settings.redis_options(),
                settings.redis_cluster,
            )
            self.redis = client
            # Not idempotent: after the broker refuses a letter's size, an idempotent
            # aiokafka producer fails every later send to that partition (out of order
            # sequence). Dead letters are at least once anyway (count distinct origins).
            self.producer = AIOKafkaProducer(
                acks="all",
                enable_idempotence=False,
                max_request_size=PRODUCER_MAX_REQUEST_BYTES,
                **settings.kafka_client_options(),
            )
            await self.producer.start()
            # customer facts keep their order per customer: idempotent, one at a time per
            # partition (CONTRACT.md §9; roi_metrics.worker.customers)
            self.fact_producer = AIOKafkaProducer(
                acks="all", enable_idempotence=True, **settings.kafka_client_options()
            )
            await self.fact_producer.start()
            await ensure_topic(
                settings, settings.customer_topic, settings.customer_topic_partitions
            )
            self.ranges = RangeReader(  # a gap's chunk is held as a batch is: bounded alike
                settings.kafka_client_options(), max_bytes=settings.batch_max_bytes
            )
            await ensure_topic(settings, settings.dead_letter_topic)
            letters = KafkaDeadLetters(
                self.producer,
                settings.dead_letter_topic,
                await _dead_letter_limit(settings),
                on_dropped=lambda letter: runtime.metrics.undeliverable.inc(),
            )
            runtime.processor = BatchProcessor(
                decoder=Decoder(card.currency),
                store=StateStore(
                    client,
                    settings.dedup_horizon_seconds,
                    settings.conversation_ttl_seconds,
                    wait_replicas=settings.redis_wait_replicas,
                    wait_timeout_ms=round(settings.redis_wait_timeout_seconds * 1000),
                ),
                dead_letters=letters,
                metrics=runtime.metrics,
                topic_prefix=settings.topic_prefix,
                max_lateness_seconds=settings.max_lateness_seconds,
                max_channels=settings.max_channels,
                on_progress=lambda: runtime.watch.progress(time.monotonic()),
                highwater=lambda topic, partition: app.consumer.highwater(TP(topic, partition)),
                end_offset=lambda topic, partition: _end_offset(app, TP(topic, partition)),
                ranges=self.ranges,
                committed=lambda topic, partition: _committed(app, TP(topic, partition)),
                facts=FactPost(self.fact_producer.send, settings.customer_topic, runtime.metrics),
            )
            self.fact_ranges = RangeReader(  # its own: a long catch-up holds it
                settings.kafka_client_options(), max_bytes=settings.batch_max_bytes
            )
            runtime.customer_agent = CustomerAgent(
                store=runtime.processor.store,
                customers=CustomerStore(client, settings.recontact_window_seconds + DAY_SECONDS),
                metrics=runtime.metrics,
                topic=settings.customer_topic,
                topic_prefix=settings.topic_prefix,
                window_seconds=settings.recontact_window_seconds,
                max_lateness_seconds=settings.max_lateness_seconds,
                ranges=self.fact_ranges,
            )
            runtime.joiner = asyncio.ensure_future(join_loop(app, runtime))
            runtime.started.set()

        async def on_stop(self) -> None:
            if runtime.joiner is not None:
                runtime.joiner.cancel()
            await self.fact_ranges.stop()
            await self.ranges.stop()
            await self.fact_producer.stop()
            await self.producer.stop()
            await self.redis.aclose()


def _pages(app: faust.App, runtime: Runtime) -> None:
    """/metrics (the worker's own registry), /healthz and /readyz."""

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


def _timers(app: faust.App, runtime: Runtime) -> None:
    """Channel discovery, lag, the watchdog, and rebalances for the watchdog."""

    @app.timer(runtime.settings.discovery_interval_seconds)  # type: ignore[untyped-decorator]
    async def discover_channels() -> None:
        await discover(app, runtime)

    @app.timer(LAG_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        await report_lag(app, runtime)

    @app.timer(WATCH_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
    async def watchdog() -> None:
        await check_health(runtime)

    @app.timer(WATCH_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
    async def unreadable_letters() -> None:  # apart: a slow Kafka must not delay the watchdog
        await flush_unreadable(app, runtime)

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        runtime.watch.rebalanced(time.monotonic())

    app.on_partitions_assigned.connect(on_assigned)


def create_app(settings: Settings, card: CostCard) -> tuple[faust.App, Runtime]:
    """The worker's Faust app and its shared runtime."""
    runtime = Runtime(settings)
    app = _faust_app(settings)
    topic = app.topic(value_serializer="raw", key_serializer="raw", allow_empty=True)
    _resources(app, runtime, card)

    @app.agent(topic, name="count-events")
    async def count_events(stream: Any) -> None:
        """Pumps records into the batcher; the applier task applies the batches."""
        await runtime.started.wait()
        processor = runtime.processor
        assert processor is not None
        events = stream.noack()
        runtime.applier = asyncio.ensure_future(
            applier(runtime.batcher, processor, events.ack, runtime.watch)
        )
        runtime.agent_running = True
        try:
            async for _ in events:  # Stream.events() without its extra generator
                event = events.current_event
                if event is not None:
                    await runtime.batcher.add(event, record_bytes(event))
        finally:
            runtime.agent_running = False
            runtime.applier.cancel()

    facts = app.topic(runtime.settings.customer_topic, value_serializer="raw", key_serializer="raw")

    @app.agent(facts, name="join-customers")
    async def join_customers(stream: Any) -> None:
        """Hands the customer facts to the joiner (join_loop) and acknowledges them at once.
        A join can take long (a fact waits until its own record is applied, or catches up
        thousands of facts), and an agent that holds its event holds the Faust consumer all
        agents share: the channels would stop being counted. What is joined is the agent's
        progress mark in Redis, not the committed offset; a fact the joiner never got (its
        queue full) is read again from Kafka."""
        await runtime.started.wait()
        queue = runtime.fact_queue
        events = stream.noack()
        async for _ in events:
            event = events.current_event
            if event is None:
                continue
            message = event.message
            try:
                queue.put_nowait((message.partition, message.offset, message.value))
            except asyncio.QueueFull:
                runtime.metrics.facts.labels("deferred").inc()
            runtime.metrics.facts_pending.set(queue.qsize())
            await events.ack(event)

    _timers(app, runtime)
    _pages(app, runtime)
    return app, runtime


async def join_loop(app: faust.App, runtime: Runtime) -> None:
    """The joiner: joins the facts the agent hands over, in order, each only while its
    partition is still this worker's (else its new owner reads it from its committed
    offset, which this one has passed: it finds it not joined by the progress mark). Idle
    for JOIN_IDLE_SECONDS, and at least every TAILS_SECONDS, it joins what was never handed
    over at the end of its partitions (facts deferred while it was behind). It never ends
    but cancelled: an error it did not expect is logged and the next fact goes on."""
    agent = runtime.customer_agent
    assert agent is not None
    topic = runtime.settings.customer_topic
    queue = runtime.fact_queue
    tails_at = time.monotonic()
    while True:
        try:
            if time.monotonic() - tails_at > TAILS_SECONDS:
                tails_at = time.monotonic()
                await _join_tails(app, runtime, agent, topic)
            try:
                partition, offset, value = await asyncio.wait_for(queue.get(), JOIN_IDLE_SECONDS)
            except TimeoutError:
                tails_at = time.monotonic()
                await _join_tails(app, runtime, agent, topic)
                continue
            runtime.metrics.facts_pending.set(queue.qsize())
            if _assigned(app, TP(topic, partition)):
                await _join_until_done(agent, partition, offset, value)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the customer facts' joiner failed; it goes on with the next")
            await asyncio.sleep(1.0)


def _assigned(app: faust.App, tp: TP) -> bool:
    """Whether `tp` is this worker's now (False while the consumer restarts)."""
    try:
        return tp in app.consumer.assignment()
    except Exception:
        return False


async def _join_tails(app: faust.App, runtime: Runtime, agent: CustomerAgent, topic: str) -> None:
    """Join the facts at the end of this worker's customer partitions that were never
    handed to the joiner, and say how many wait (`support_customer_facts_lag`); a partition
    that moved away meanwhile is passed, Redis or Kafka away: the next look tries again."""
    try:
        mine = sorted(tp for tp in app.consumer.assignment() if tp.topic == topic)
    except Exception:  # the consumer restarts
        return
    waiting = 0
    for tp in mine:
        try:
            if not _assigned(app, tp):
                continue
            end = app.consumer.highwater(tp)
            if not end:
                continue
            await agent.catch_up(tp.partition, end)
            last = agent.joined.get(tp.partition)  # what catch_up knows, else Redis's mark
            if last is None:
                last = await agent.customers.progress(topic, tp.partition)
            waiting += max(0, end - 1 - (last if last is not None else -1))
        except Exception as error:
            log.warning("customer facts of partition %d not joined yet (%s)", tp.partition, error)
    runtime.metrics.facts_lag.set(waiting)


async def _join_until_done(agent: CustomerAgent, partition: int, offset: int, value: Any) -> None:
    """Join one customer fact, retrying while Redis or Kafka are away (a fact that meets a
    corrupt state is given up by the agent: CustomerAgent.take)."""
    backoff = 0.1
    while True:
        try:
            await agent.take(partition, offset, value)
            return
        except Exception as error:
            log.warning("customer fact %d@%d not joined yet (%s)", partition, offset, error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

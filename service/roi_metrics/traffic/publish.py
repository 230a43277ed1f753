"""What the operator commands do against Kafka: create, list and delete channels' topics,
publish a file of events, run the simulator. Failures a user can cause raise OperatorError
with one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, UnknownTopicOrPartitionError, for_code

from roi_metrics.domain.channels import channel_of_topic, not_channel_topics
from roi_metrics.ingest.topics import TopicCreationError, ensure_topic
from roi_metrics.settings import Settings
from roi_metrics.traffic.events import OperatorError, OutRecord
from roi_metrics.traffic.simulator import Options, Simulator


class _ConnectionFailures(logging.Handler):
    """The reason aiokafka logs for a failed connection (it raises only "Unable to
    bootstrap"): a refused password, an untrusted certificate, a closed connection."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reason: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Unable connect to"):
            self.reason = message.partition('": ')[2].strip() or self.reason


@contextlib.contextmanager
def _quiet_kafka() -> Iterator[_ConnectionFailures]:
    """aiokafka logs each failed connection attempt; the user gets one line from us, with
    the reason it logged."""
    logger = logging.getLogger("aiokafka")
    failures = _ConnectionFailures()
    propagate = logger.propagate
    logger.addHandler(failures)
    logger.propagate = False
    try:
        yield failures
    finally:
        logger.removeHandler(failures)
        logger.propagate = propagate


def _unreachable(settings: Settings, error: Exception, reason: str | None = None) -> OperatorError:
    """One line saying why Kafka could not be used, naming the settings to look at: exit
    status 2 when the broker answered and refused this client's settings, 1 otherwise."""
    where = f"Kafka at {settings.kafka_bootstrap_servers}"
    said = reason or str(error) or error.__class__.__name__
    refused = _refused_settings(settings, said)
    if refused is not None:
        return OperatorError(f"{where} {refused} ({said})", configuration=True)
    return OperatorError(f"cannot reach {where} ({said}); {_reach_hint(settings, said)}")


def _refused_settings(settings: Settings, said: str) -> str | None:
    """What the broker refused, when the failure says it refused this client's settings."""
    if "SaslAuthenticationFailed" in said or "Authentication failed" in said:
        return (
            "refused the credentials; check ROI_KAFKA_SASL_USERNAME, ROI_KAFKA_SASL_PASSWORD "
            "and ROI_KAFKA_SASL_MECHANISM"
        )
    if "UnsupportedSaslMechanism" in said:
        return (
            f"does not take the SASL mechanism {settings.kafka_sasl_mechanism}; set "
            "ROI_KAFKA_SASL_MECHANISM to one it enables"
        )
    if "mismatch" in said and "CERTIFICATE_VERIFY_FAILED" in said:
        return (
            "has a certificate for another name than the one in ROI_KAFKA_BOOTSTRAP_SERVERS; "
            "use a host name the certificate was issued for"
        )
    if "certificate has expired" in said:
        return "has an expired certificate; the broker's operators must renew it"
    if "CERTIFICATE_VERIFY_FAILED" in said:
        return (
            "has a certificate this client does not trust; set ROI_KAFKA_SSL_CAFILE to the CA "
            "that signed it"
        )
    return None


def _reach_hint(settings: Settings, said: str) -> str:
    """What to try when Kafka could not be used. A connection that was refused or timed
    out: the broker is away. One the broker closed: most likely the security settings do
    not match its listener (or it was restarting, so this stays exit status 1)."""
    if "Connect call failed" in said or "Errno" in said or "imeout" in said:
        return "start it (`make stack-up`) or set ROI_KAFKA_BOOTSTRAP_SERVERS"
    protocol = settings.kafka_security_protocol
    if protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        return f"if the broker expects TLS, set ROI_KAFKA_SECURITY_PROTOCOL (it is {protocol})"
    hints = ["the security settings may not match the broker's listener"]
    if settings.kafka_ssl_certfile is None:
        hints.append(
            "if the broker requires a client certificate, set ROI_KAFKA_SSL_CERTFILE and "
            "ROI_KAFKA_SSL_KEYFILE"
        )
    else:
        hints.append("the broker may refuse the client certificate in ROI_KAFKA_SSL_CERTFILE")
    if protocol == "SSL":
        hints.append("if it expects SASL, set ROI_KAFKA_SECURITY_PROTOCOL=SASL_SSL")
    return "; ".join(hints)


async def create_channel(settings: Settings, channel: str, partitions: int) -> bool:
    """Create `<prefix><channel>`; False when it already existed."""
    with _quiet_kafka() as failures:
        try:
            return await ensure_topic(settings, settings.topic_prefix + channel, partitions)
        except (KafkaConnectionError, OSError) as error:
            raise _unreachable(settings, error, failures.reason) from None
        except (KafkaError, TopicCreationError) as error:
            raise OperatorError(
                f"cannot create topic {settings.topic_prefix}{channel}: {error} (does this "
                "principal have Create on the topic prefix? see docs/security.md)"
            ) from None


async def _start(
    settings: Settings, start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]]
) -> None:
    """Start a Kafka client; when Kafka is away, stop it (nothing left open) and raise
    OperatorError with one line."""
    with _quiet_kafka() as failures:
        try:
            await start()
        except (KafkaConnectionError, KafkaError, OSError) as error:
            await stop()
            raise _unreachable(settings, error, failures.reason) from None


async def _admin(settings: Settings) -> AIOKafkaAdminClient:
    """A started admin client; OperatorError (and nothing left open) when Kafka is away."""
    admin = AIOKafkaAdminClient(request_timeout_ms=10_000, **settings.kafka_client_options())
    await _start(settings, admin.start, admin.close)
    return admin


async def channel_topics(settings: Settings) -> set[str]:
    """The channels that have a topic: the names after the topic prefix that are channel
    names. OperatorError (one line) when Kafka cannot be reached or answer."""
    channels, _ = await prefixed_topics(settings)
    return channels


async def prefixed_topics(settings: Settings) -> tuple[set[str], list[str]]:
    """The channels that have a topic, and the topics under the prefix that are not
    channel topics (nothing reads them). OperatorError as channel_topics."""
    admin = await _admin(settings)
    try:
        with _quiet_kafka():
            names = await admin.list_topics()
    except (KafkaConnectionError, KafkaError, OSError) as error:
        raise _unreachable(settings, error) from None
    finally:
        await admin.close()
    channels = (channel_of_topic(name, settings.topic_prefix) for name in names)
    found = {channel for channel in channels if channel is not None}
    return found, not_channel_topics(names, settings.topic_prefix)


async def delete_channel_topic(settings: Settings, channel: str, wait: float = 10.0) -> bool:
    """Delete the topic `<prefix><channel>`; False when there is none. Kafka deletes
    asynchronously: waits up to `wait` seconds until the brokers no longer list it.
    OperatorError (one line) when Kafka cannot be reached or refuses (e.g. the brokers run
    with delete.topic.enable=false, or this client may not delete topics)."""
    topic = settings.topic_prefix + channel
    admin = await _admin(settings)
    try:
        with _quiet_kafka():
            if topic not in await admin.list_topics():
                return False
            response = await admin.delete_topics([topic], timeout_ms=int(wait * 1000))
            for _, code in response.topic_error_codes:
                if code == UnknownTopicOrPartitionError.errno:
                    return False
                if code:
                    raise OperatorError(f"cannot delete topic {topic}: {for_code(code).__name__}")
            deadline = time.monotonic() + wait
            while topic in await admin.list_topics() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            return True
    except KafkaConnectionError as error:
        raise _unreachable(settings, error) from None
    except (KafkaError, OSError) as error:
        raise OperatorError(f"cannot delete topic {topic}: {error.__class__.__name__}") from None
    finally:
        await admin.close()


async def ensure_dead_letter_topic(settings: Settings) -> None:
    """Create the dead-letter topic before the worker starts, so that a refusal (a
    replication factor the cluster cannot give, no permission to create it) is one line and
    exit status 2, not a traceback from inside Faust."""
    topic = settings.dead_letter_topic
    with _quiet_kafka() as failures:
        try:
            await ensure_topic(settings, topic)
        except (KafkaConnectionError, OSError) as error:
            raise _unreachable(settings, error, failures.reason) from None
        except (KafkaError, TopicCreationError) as error:
            # a refusal (replication factor, policy, authorization) is the settings' to fix;
            # a timeout or a broker restarting may pass
            refused = isinstance(error, TopicCreationError) or any(
                word in type(error).__name__ for word in ("Authorization", "Policy", "Invalid")
            )
            raise OperatorError(
                f"cannot create the dead-letter topic {topic}: {error} "
                f"(ROI_TOPIC_REPLICATION_FACTOR is {settings.topic_replication_factor}; may "
                "this principal create it? see docs/security.md)",
                configuration=refused,
            ) from None


async def check_kafka(settings: Settings) -> None:
    """Fail with one line unless the brokers answer (before a long-running command starts)."""
    admin = await _admin(settings)
    await admin.close()


async def _producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_request_size=2 * 1024 * 1024,
        request_timeout_ms=15_000,
        **settings.kafka_client_options(),
    )
    await _start(settings, producer.start, producer.stop)
    return producer


# --- publish -------------------------------------------------------------------------------


def _encode(value: Any) -> bytes:
    """Compact JSON of an event the simulator made (its amounts are decimal strings)."""
    return json.dumps(value, separators=(",", ":")).encode()


async def send_records(settings: Settings, topic: str, records: list[OutRecord]) -> None:
    """Send records to an existing topic: the broker does not create topics (auto-creation
    is off), so a missing one is said in one line with how to create it."""
    channel = topic.removeprefix(settings.topic_prefix)
    if channel not in await channel_topics(settings):
        raise OperatorError(
            f"topic {topic} does not exist; create the channel first: "
            f"roi-metrics channel add {channel}"
        )
    producer = await _producer(settings)
    try:
        pending = [
            await producer.send(topic, key=key, value=value, headers=headers or None)
            for key, value, headers in records
        ]
        await asyncio.gather(*pending)
    except KafkaError as error:
        raise OperatorError(f"publishing to {topic} failed: {error}") from None
    finally:
        await producer.stop()


# --- simulate ------------------------------------------------------------------------------


@dataclass
class Progress:
    started: float
    sent: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Limits:
    duration: float = 0.0  # seconds; 0: until stopped
    max_events: int = 0  # 0: no limit
    partitions: int = 3  # for the topics the simulator creates
    report_every: float = 5.0  # seconds between progress reports


class Simulation:
    """Publishes the simulator's events to the channel topics (and to `output`, as NDJSON
    an offline replay reads) until a limit is reached or `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        options: Options,
        limits: Limits,
        report: Callable[[Progress, Simulator], None],
        output: IO[str] | None = None,
    ) -> None:
        self.settings = settings
        self.simulator = Simulator(options)
        self.limits = limits
        self.report = report
        self.output = output
        self.progress = Progress(self.simulator.started)
        self.stop = asyncio.Event()
        self._last_report = time.monotonic()

    @property
    def full(self) -> bool:
        limit = self.limits.max_events
        return bool(limit and self.progress.sent >= limit)

    async def run(self) -> Progress:
        self.producer = await _producer(self.settings)
        try:
            for channel in self.simulator.channels:
                await self._topic(channel)
            await self._send(self.simulator.backfill(time.time()))
            while not self.full and not self.stop.is_set():
                now = time.time()
                if self.limits.duration and now - self.simulator.started >= self.limits.duration:
                    break
                await self._send(self.simulator.due(now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=0.1)
            # conversations under way end as planned (their last events are at most about a
            # minute ahead, well inside the 5 minutes the worker accepts)
            await self._send(self.simulator.drain())
            self.report(self.progress, self.simulator)
        except KafkaError as error:
            raise OperatorError(f"publishing failed: {error}") from None
        finally:
            await self.producer.stop()
            if self.output is not None:
                self.output.flush()
        return self.progress

    async def _topic(self, channel: str) -> str:
        topic = self.settings.topic_prefix + channel
        if topic not in self.progress.topics:
            await create_channel(self.settings, channel, self.limits.partitions)
            self.progress.topics.add(topic)
        return topic

    async def _send(self, events: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        pending = []
        for channel, key, event in events:
            if self.full:
                break
            value = _encode(event)
            topic = await self._topic(channel)
            pending.append(await self.producer.send(topic, key=key.encode(), value=value))
            if self.output is not None:
                self.output.write(value.decode() + "\n")
            self.progress.sent += 1
            self.progress.by_channel[channel] = self.progress.by_channel.get(channel, 0) + 1
        if pending:
            await asyncio.gather(*pending)
        if time.monotonic() - self._last_report >= self.limits.report_every:
            self.report(self.progress, self.simulator)
            self._last_report = time.monotonic()

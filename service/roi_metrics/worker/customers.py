"""Cross-channel re-contact (CONTRACT.md §9) in the worker.

A customer's conversations live on many channels, so in many partitions and, on a Redis
Cluster, in many slots. The facts a batch's counted events give about their customers
(roi_metrics.domain.recontact) are therefore sent, before the batch is applied, to one topic
keyed by customer (`ROI_CUSTOMER_TOPIC`): all the facts of a customer reach one partition, in
the order the worker applied them. The customer agent reads that topic and, fact by fact:

1. waits until the fact's own record is applied (its partition's watermark passed it): the
   fact was sent before that apply, and what it joins must be in Redis first;
2. skips a fact it joined before (sent again after a crash: the same event gives the same
   fact id);
3. joins it with the customer's standing AI resolution (`join`); a revocation is applied to
   the resolved conversation's channel as a batch of its own, guarded by the watermark of
   the customer topic's partition in that channel (so it counts once through a crash and a
   redelivery) and by the conversation's state (so it counts only while the resolution still
   stands, whatever the conversation's own worker did meanwhile);
4. writes the customer's new standing resolution, if nothing moved it since it was read.

docs/architecture.md says why this is exact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from roi_metrics.domain.aggregate import revoke
from roi_metrics.domain.channels import is_channel_name
from roi_metrics.domain.events import MICROS_PER_SECOND
from roi_metrics.domain.recontact import Fact, FactKind, Revocation, Standing, join
from roi_metrics.state.customers import CustomerStore
from roi_metrics.state.store import (
    ApplyResult,
    PartitionApply,
    PartitionRead,
    StateCorrupt,
    StateStore,
)
from roi_metrics.worker.batch import Partition
from roi_metrics.worker.gaps import Chunk, RangeReader
from roi_metrics.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)
APPLIED_POLL_SECONDS: Final = 0.05
"""How often the agent looks whether a fact's own record is applied yet."""
APPLIED_WAIT_SECONDS: Final = 600.0
"""How long it waits for that before it joins the fact anyway (with an error line): a
partition that never gets there (its topic deleted) must not hold every customer back."""
APPLIED_KNOWN_SECONDS: Final = 5.0
"""How long a channel watermark read is trusted without asking Redis again."""
_FACT_ID: Final = re.compile(r"[0-9a-f]{24}")

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[Any]]]
"""AIOKafkaProducer.send(topic, value, key): enqueues, and gives the delivery to await."""


@dataclass(frozen=True, slots=True)
class Origin:
    """The channel record a fact came from."""

    topic: str
    partition: int
    offset: int


def encode_fact(fact: Fact, origin: Origin) -> bytes:
    return json.dumps(
        {
            "id": fact.id,
            "kind": fact.kind.value,
            "customer": fact.customer,
            "channel": fact.channel,
            "conversation": fact.conversation,
            "time_micros": fact.time_micros,
            "confirmed": fact.confirmed,
            "topic": origin.topic,
            "partition": origin.partition,
            "offset": origin.offset,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _text(value: object, longest: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest


def decode_fact(value: bytes | None) -> tuple[Fact, Origin] | None:
    """A fact as encode_fact wrote it; None for anything else (the topic is internal, but
    whoever can write to it must not make the agent fail)."""
    try:
        item = json.loads(value or b"")
        kind = FactKind(item["kind"])
        numbers = (item["partition"], item["offset"])
    except Exception:  # a nesting too deep is a RecursionError
        return None
    if not (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and _FACT_ID.fullmatch(item["id"])
        and _text(item.get("customer"), 128)
        and _text(item.get("conversation"), 128)
        and isinstance(item.get("channel"), str)
        and is_channel_name(item["channel"])
        and _text(item.get("topic"), 249)
        and isinstance(item.get("confirmed"), bool)
        and type(item.get("time_micros")) is int  # before 1970 too, as the events' times
        and all(type(number) is int and number >= 0 for number in numbers)
    ):
        return None
    fact = Fact(
        item["id"],
        kind,
        item["customer"],
        item["channel"],
        item["conversation"],
        item["time_micros"],
        item["confirmed"],
    )
    return fact, Origin(item["topic"], item["partition"], item["offset"])


class FactPost:
    """Sends a batch's facts to the customer topic before the batch is applied, each once
    per batch however often the batch is tried (Partition.facts_sent)."""

    def __init__(self, send: Send, topic: str, metrics: WorkerMetrics) -> None:
        self.send_one = send
        self.topic = topic
        self.metrics = metrics

    async def send(self, part: Partition, facts: Sequence[tuple[Fact, Origin]]) -> None:
        """Raises what the producer raises (Kafka unavailable): the batch is tried again."""
        fresh = [(fact, origin) for fact, origin in facts if fact.id not in part.facts_sent]
        if not fresh:
            return
        deliveries = [
            await self.send_one(self.topic, encode_fact(fact, origin), fact.customer.encode())
            for fact, origin in fresh
        ]
        await asyncio.gather(*deliveries)
        part.facts_sent.update(fact.id for fact, _ in fresh)
        self.metrics.facts_sent.inc(len(fresh))


class CustomerAgent:
    """Joins the customer topic's facts, one at a time, in the order of their partition."""

    def __init__(
        self,
        *,
        store: StateStore,
        customers: CustomerStore,
        metrics: WorkerMetrics,
        topic: str,
        topic_prefix: str,
        window_seconds: int,
        max_lateness_seconds: int,
        ranges: RangeReader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ranges = ranges
        """Reads the customer topic's records Faust dropped (None: not looked for)."""
        self.given_up: dict[tuple[str, int], int | None] = {}
        """Channel partitions whose records a fact waited for in vain, at that watermark."""
        self.store = store
        self.customers = customers
        self.metrics = metrics
        self.topic = topic
        self.topic_prefix = topic_prefix
        self.window_micros = window_seconds * MICROS_PER_SECOND
        self.max_lateness_micros = max_lateness_seconds * MICROS_PER_SECOND
        self.clock = clock
        self.applied: dict[tuple[str, int], tuple[int, float]] = {}
        """The channel watermarks last read, and when (they only grow, but for a channel
        removed or a topic created again): a fact whose record is at or before one read
        less than APPLIED_KNOWN_SECONDS ago does not ask Redis again."""
        self.joined: dict[int, int] = {}
        """The last offset this agent joined per partition of the customer topic (its
        progress mark in Redis is at least that, or moves there at the next advance)."""

    async def take(self, partition: int, offset: int, value: bytes | None) -> str:
        """Join the record at `offset` of the customer topic's `partition` as it is handed
        over, after any records of the partition before it that were never joined (catch_up).
        A record at or before the last one joined is joined again (a redelivery: each fact is
        known by its id), not skipped: after the topic was deleted and created again its
        offsets start over. Returns what became of the record (a FACT_OUTCOMES value).
        Raises what Redis or Kafka raise (the caller retries)."""
        await self.catch_up(partition, offset)
        outcome = await self._handle_or_give_up(partition, offset, value)
        await self.customers.advance(self.topic, partition, offset)
        self.joined[partition] = offset
        return outcome

    async def catch_up(self, partition: int, end: int) -> int:
        """Join the records of `partition` before offset `end` that were never joined, read
        from Kafka a chunk at a time: those Faust dropped around a rebalance (as it drops
        channel records: roi_metrics.worker.gaps), those not handed to the joiner while it
        was behind (its queue full), those of a Redis that lost the agent's progress.
        Returns how many; 0 without a RangeReader. Raises what Redis or Kafka raise."""
        ranges = self.ranges
        if ranges is None:
            return 0
        last = self.joined.get(partition)
        if last is None or end > last + 1:  # Redis knows better (another agent, a restart)
            last = await self.customers.progress(self.topic, partition)
        if last is not None and end <= last and await self._past_the_end(ranges, partition, last):
            # a mark past the partition's end: of a topic deleted and created again, whose
            # offsets started over; from its first record, then
            log.warning(
                "%s partition %d: the progress mark %d is past the partition's end (the "
                "topic was created again); its facts are joined from its start",
                self.topic,
                partition,
                last,
            )
            await self.customers.forget(self.topic, partition)
            self.joined.pop(partition, None)
            last = None
        if last is not None and end <= last + 1:
            return 0
        start = last + 1 if last is not None else await ranges.first(self.topic, partition)
        if start >= end:
            return 0
        joined = 0

        async def join_chunk(chunk: Chunk) -> bool:
            nonlocal joined
            for record in chunk.records:
                await self._handle_or_give_up(partition, record.offset, record.value)
            if chunk.records:  # the progress mark once a chunk: a crash joins it again
                last = chunk.records[-1].offset
                await self.customers.advance(self.topic, partition, last)
                self.joined[partition] = last
            joined += len(chunk.records)
            return True

        await ranges.each_chunk(self.topic, partition, start, end, join_chunk)
        if joined:
            log.info(
                "%s partition %d: %d customer facts before offset %d read from Kafka and "
                "joined (not handed over: a rebalance, the joiner behind, or a new Redis)",
                self.topic,
                partition,
                joined,
                end,
            )
        return joined

    async def _past_the_end(self, ranges: RangeReader, partition: int, last: int) -> bool:
        """Whether `last` lies past the partition's end: a mark of a topic created again.
        A known end (a lower bound) past it settles it without asking Kafka again."""
        if last < await ranges.end(self.topic, partition):
            return False
        return last >= await ranges.end(self.topic, partition, fresh=True)

    async def _handle_or_give_up(self, partition: int, offset: int, value: bytes | None) -> str:
        """handle(); a fact that meets a corrupt state (written by hand) is given up with an
        error line, not retried forever, and counts as joined: the customers after it in
        the partition go on."""
        try:
            return await self.handle(partition, offset, value)
        except StateCorrupt as error:
            log.error("customer fact %d@%d given up: %s", partition, offset, error)
            return self._count("invalid")

    async def handle(self, partition: int, offset: int, value: bytes | None) -> str:
        """Join one record of the customer topic; returns what became of it (a
        FACT_OUTCOMES value). Raises what Redis raises (the caller retries)."""
        decoded = decode_fact(value)
        if decoded is None:
            log.error("%s:%d@%d is not a customer fact; skipped", self.topic, partition, offset)
            return self._count("invalid")
        fact, origin = decoded
        if not origin.topic.startswith(self.topic_prefix):
            log.error("%s:%d@%d names a topic not ours; skipped", self.topic, partition, offset)
            return self._count("invalid")
        await self._wait_applied(origin)
        while True:
            state = await self.customers.read(fact.customer, fact.id)
            if state.joined:
                return self._count("seen")
            failed: set[Standing] = set()
            outcome = "joined"
            while True:  # again without a resolution found not to stand
                kept, revoked = join(state.customer, fact, self.window_micros, failed)
                if revoked is None:
                    break
                if await self._revoke(revoked, partition, offset):
                    outcome = "revoked"
                    break
                failed.add(revoked.resolution)
            written = await self.customers.write(fact.customer, fact.id, state.version, kept)
            if written == "seen":
                return self._count("seen")
            if written == "ok":
                return self._count(outcome)
            # another instance of the agent moved this customer on (a rebalance): again

    def _count(self, outcome: str) -> str:
        self.metrics.facts.labels(outcome).inc()
        return outcome

    async def _wait_applied(self, origin: Origin) -> None:
        """Until the fact's own record is applied (the fact was sent before its apply); at
        most APPLIED_WAIT_SECONDS, and not again for a partition given up on whose
        watermark has not moved since (a channel removed, a topic gone)."""
        channel = origin.topic.removeprefix(self.topic_prefix)
        started = time.monotonic()
        where = (origin.topic, origin.partition)
        known, read_at = self.applied.get(where, (-1, 0.0))
        if known >= origin.offset and started - read_at < APPLIED_KNOWN_SECONDS:
            return
        while True:
            marks = await self.store.watermarks([(channel, origin.topic, origin.partition)])
            applied = marks[where]
            if applied is not None and applied >= origin.offset:
                self.applied[where] = (applied, time.monotonic())
                return
            if where in self.given_up and self.given_up[where] == applied:
                return
            if time.monotonic() - started > APPLIED_WAIT_SECONDS:
                self.given_up[where] = applied
                log.error(
                    "%s:%d@%d is still not applied after %.0f s; its customer fact is joined "
                    "anyway",
                    origin.topic,
                    origin.partition,
                    origin.offset,
                    APPLIED_WAIT_SECONDS,
                )
                return
            await asyncio.sleep(APPLIED_POLL_SECONDS)

    async def _revoke(self, revoked: Revocation, partition: int, offset: int) -> bool:
        """Apply `revoked`, which the fact at `offset` of the customer topic's `partition`
        makes; False when the resolution no longer stands there. Once per fact: the
        watermark of that partition in the resolved conversation's channel."""
        resolution = revoked.resolution
        channel = resolution.channel
        while True:
            read = PartitionRead(channel, self.topic, partition, [resolution.conversation], [])
            [state] = await self.store.read([read])
            conversation = state.states.get((channel, resolution.conversation))
            holds = (
                conversation is not None
                and conversation.resolved_by is not None
                and conversation.resolved_at_micros == resolution.resolved_micros
            )
            if state.watermark is not None and state.watermark >= offset and not holds:
                # applied before a crash or a rebalance (a watermark past the fact while the
                # resolution still stands is one of a topic deleted and created again). If
                # this fact revoked another resolution of this channel after this one did not
                # apply, the join drops this one all the same: the older are superseded.
                self.store.expect(channel, self.topic, partition, state.watermark)
                await self.store.confirm()
                return True
            now = int(self.clock() * MICROS_PER_SECOND)
            delta = None
            if conversation is not None:
                delta = revoke(
                    resolution, conversation, revoked.at_micros, now, self.max_lateness_micros
                )
            if delta is None:
                return False
            request = PartitionApply(
                channel,
                self.topic,
                partition,
                state.watermark,
                offset,
                delta,
                guarded=state.guarded,
            )
            [result] = await self.store.apply([request])
            if result is ApplyResult.OK:
                self.store.expect(channel, self.topic, partition, offset)
                await self.store.confirm()
                return True
            if result is ApplyResult.OVERFLOW:
                log.error("%s: a sum is full; a re-contact is not counted", channel)
                return False
            # the conversation changed, or another agent applied it: read again

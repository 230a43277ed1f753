"""The Redis adapter of the worker: reads what a batch needs in one round trip and applies a
fold's result atomically per (topic, partition), guarded by the partition's watermark.

At-least-once delivery plus this guard counts each event once: a batch read against
watermark W applies only if W is still there, and only records after W are folded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any, Final

import redis.asyncio as aioredis

from roi_metrics.domain.aggregate import (
    ALL,
    INT64_MAX,
    BatchDelta,
    BucketKey,
    ConversationKey,
    DedupMark,
    SumKey,
)
from roi_metrics.domain.events import UNRESOLVED, Actor, ConversationState, Counter
from roi_metrics.domain.timebuckets import RESOLUTIONS
from roi_metrics.state import keys

APPLY_SCRIPT: Final = resources.files("roi_metrics.state").joinpath("apply.lua").read_text()
SEEN_SCRIPT: Final = resources.files("roi_metrics.state").joinpath("seen.lua").read_text()
REGISTER_SCRIPT: Final = resources.files("roi_metrics.state").joinpath("register.lua").read_text()
DROP_WATERMARK_SCRIPT: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
"""Deletes a partition's watermark only if it still holds the offset the caller read."""
_EXPIRY: Final = {resolution.name: resolution for resolution in RESOLUTIONS}


@dataclass(frozen=True, slots=True)
class PartitionRead:
    """What to read for one (topic, partition) batch."""

    channel: str
    topic: str
    partition: int
    conversations: Sequence[str]
    marks: Sequence[tuple[str, str]]
    """(source, id) of the batch's events."""


class ApplyResult(Enum):
    OK = "ok"
    CONFLICT = "conflict"
    """Another worker applied this partition, or a dedup mark appeared: read again."""
    OVERFLOW = "overflow"
    """A sum would pass INT64_MAX: read the headroom, fold again, apply again."""


class StateCorrupt(Exception):
    """A stored sum is not an integer (written by hand?): nothing can be applied to it."""


@dataclass(slots=True)
class PartitionState:
    watermark: int | None
    registered: bool = False
    """The channel is in the registry (`roi:channels`)."""
    states: dict[ConversationKey, ConversationState] = field(default_factory=dict)
    seen: set[DedupMark] = field(default_factory=set)
    digests: dict[DedupMark, bytes] = field(default_factory=dict)
    """The digest of every mark read, so an apply does not hash them again."""


@dataclass(frozen=True, slots=True)
class PartitionApply:
    channel: str
    topic: str
    partition: int
    expected_watermark: int | None
    new_watermark: int
    delta: BatchDelta
    digests: dict[DedupMark, bytes] = field(default_factory=dict)


def encode_state(state: ConversationState) -> str:
    if state.resolved_by is None or state.resolved_at_micros is None:
        return ""
    return f"{state.resolved_by.value}:{state.resolved_at_micros}"


def decode_state(raw: bytes | None) -> ConversationState:
    if not raw:
        return UNRESOLVED
    actor, _, micros = raw.decode().partition(":")
    return ConversationState(Actor(actor), int(micros))


def _closed(bucket: BucketKey, now: float) -> bool:
    """True for a bucket older than the one before the current one at `now` (the worker's
    clock, read when the batch is applied: later means more buckets count as closed, the safe
    side for the exporter's cache)."""
    resolution, start = bucket
    if resolution == ALL:
        return False
    size = _EXPIRY[resolution]
    return start < size.bucket_start(int(now)) - size.seconds


class StateStore:
    """The worker's view of Redis. Raises redis.exceptions.ConnectionError / TimeoutError
    when Redis is unreachable; the caller retries."""

    def __init__(
        self,
        client: aioredis.Redis,
        dedup_horizon_seconds: int,
        conversation_ttl_seconds: int,
    ) -> None:
        self.client = client
        self.mark_ttl_ms = str(dedup_horizon_seconds * 1000)
        self.conversation_ttl_ms = str(conversation_ttl_seconds * 1000)
        self._apply = client.register_script(APPLY_SCRIPT)
        self._seen = client.register_script(SEEN_SCRIPT)
        self._register = client.register_script(REGISTER_SCRIPT)
        self._drop_watermark = client.register_script(DROP_WATERMARK_SCRIPT)

    async def read(self, requests: Sequence[PartitionRead]) -> list[PartitionState]:
        """Watermarks, conversation states and dedup marks of every request, one round trip."""
        states = [PartitionState(None) for _ in requests]
        async with self.client.pipeline(transaction=False) as pipe:
            for request, state in zip(requests, states, strict=True):
                channel = request.channel
                pipe.hget(
                    keys.watermarks(channel), keys.watermark_field(request.topic, request.partition)
                )
                pipe.sismember(keys.CHANNELS, channel)
                if request.conversations:
                    pipe.mget([keys.conversation(channel, c) for c in request.conversations])
                if request.marks:
                    state.digests = {
                        (channel, s, i): keys.dedup_digest(s, i) for s, i in request.marks
                    }
                    blob = b"".join(state.digests.values())
                    await self._seen(
                        keys=[keys.watermarks(channel)],
                        args=[keys.dedup_prefix(channel), blob],
                        client=pipe,
                    )
            replies = iter(await pipe.execute())
        for request, state in zip(requests, states, strict=True):
            watermark = next(replies)
            state.watermark = None if watermark is None else int(watermark)
            state.registered = bool(next(replies))
            if request.conversations:
                for conversation, raw in zip(request.conversations, next(replies), strict=True):
                    if raw:
                        state.states[(request.channel, conversation)] = decode_state(raw)
            if request.marks:
                found = next(replies)
                state.seen.update(m for m, f in zip(state.digests, found, strict=True) if f == 49)
        return states

    async def apply(self, requests: Sequence[PartitionApply]) -> list[ApplyResult]:
        """Apply each request atomically, or nothing of it (re-read and fold again unless
        OK). Raises StateCorrupt when a stored sum is not an integer."""
        async with self.client.pipeline(transaction=False) as pipe:
            for request in requests:
                script_keys, script_args = self._script_arguments(request)
                await self._apply(keys=script_keys, args=script_args, client=pipe)
            replies = await pipe.execute()
        results = []
        for reply in replies:
            verdict = reply[0].decode()
            if verdict == "corrupt":
                key, name = reply[1].decode(), reply[2].decode()
                raise StateCorrupt(f"{key} field {name!r} holds something else than an integer")
            results.append(
                ApplyResult.OK
                if verdict == "ok"
                else ApplyResult.OVERFLOW
                if verdict == "overflow"
                else ApplyResult.CONFLICT
            )
        return results

    async def headroom(self, request: PartitionApply) -> dict[SumKey, int]:
        """What is left under INT64_MAX of every sum `request` would add to."""
        channel = request.channel
        wanted = [
            (bucket, list(counters))
            for (owner, bucket), counters in request.delta.increments.items()
            if owner == channel
        ]
        async with self.client.pipeline(transaction=False) as pipe:
            for bucket, counters in wanted:
                pipe.hmget(keys.bucket(channel, bucket), [c.value for c in counters])
            replies = await pipe.execute()
        room: dict[SumKey, int] = {}
        for (bucket, counters), values in zip(wanted, replies, strict=True):
            for counter, value in zip(counters, values, strict=True):
                room[(channel, bucket, Counter(counter))] = INT64_MAX - int(value or 0)
        return room

    async def watermarks(
        self, partitions: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, int], int | None]:
        """The last applied offset of each (channel, topic, partition), None if never."""
        async with self.client.pipeline(transaction=False) as pipe:
            for channel, topic, partition in partitions:
                pipe.hget(keys.watermarks(channel), keys.watermark_field(topic, partition))
            replies = await pipe.execute()
        return {
            (topic, partition): None if reply is None else int(reply)
            for (_, topic, partition), reply in zip(partitions, replies, strict=True)
        }

    async def drop_watermark(self, channel: str, topic: str, partition: int, expected: int) -> bool:
        """Delete the partition's watermark if it is still `expected`; True when deleted."""
        deleted = await self._drop_watermark(
            keys=[keys.watermarks(channel)],
            args=[keys.watermark_field(topic, partition), expected],
        )
        return bool(deleted)

    async def register_channel(self, channel: str, max_channels: int) -> bool:
        """Add `channel` to the registry unless `max_channels` are known already; True when
        it is known (now or before). Atomic, so concurrent workers cannot pass the bound."""
        known = await self._register(keys=[keys.CHANNELS], args=[channel, max_channels])
        return bool(known)

    def _script_arguments(self, request: PartitionApply) -> tuple[list[Any], list[Any]]:
        channel, delta = request.channel, request.delta
        known = request.digests
        digests = b"".join(known.get(m) or keys.dedup_digest(m[1], m[2]) for m in delta.dedup_marks)
        buckets = [
            (bucket, [(counter, amount) for counter, amount in counters.items() if amount])
            for (ch, bucket), counters in delta.increments.items()
            if ch == channel and any(counters.values())
        ]
        conversations = [(c, state) for (ch, c), state in delta.states.items() if ch == channel]
        now = time.time()
        script_keys: list[Any] = [keys.watermarks(channel), keys.closed_writes(channel)]
        script_keys += [keys.bucket(channel, bucket) for bucket, _ in buckets]
        script_keys += [keys.conversation(channel, c) for c, _ in conversations]
        expected = "" if request.expected_watermark is None else str(request.expected_watermark)
        args: list[Any] = [
            keys.watermark_field(request.topic, request.partition),
            expected,
            request.new_watermark,
            len(buckets),
            len(conversations),
            self.mark_ttl_ms,
            self.conversation_ttl_ms,
            keys.dedup_prefix(channel),
            digests,
            "1" if any(_closed(bucket, now) for bucket, _ in buckets) else "0",
        ]
        for (resolution, start), counters in buckets:
            expire_at = 0 if resolution == ALL else _EXPIRY[resolution].expires_at(start)
            args += [expire_at, len(counters)]
            for counter, amount in counters:
                args += [counter.value, amount, INT64_MAX - amount]
        args += [encode_state(state) for _, state in conversations]
        return script_keys, args

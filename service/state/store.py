"""The Redis adapter of the worker: reads what a batch needs in one round trip and applies a
fold's result atomically per (topic, partition), guarded by the partition's watermark.

At-least-once delivery plus this guard counts each event once: a batch read against
watermark W applies only if W is still there, and only records after W are folded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

import redis.asyncio as aioredis

from service.domain.aggregate import ALL, BatchDelta, BucketKey, ConversationKey, DedupMark
from service.domain.events import UNRESOLVED, Actor, ConversationState
from service.domain.timebuckets import RESOLUTIONS
from service.state import keys

APPLY_SCRIPT: Final = resources.files("service.state").joinpath("apply.lua").read_text()
SEEN_SCRIPT: Final = resources.files("service.state").joinpath("seen.lua").read_text()
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


@dataclass(slots=True)
class PartitionState:
    watermark: int | None
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

    async def read(self, requests: Sequence[PartitionRead]) -> list[PartitionState]:
        """Watermarks, conversation states and dedup marks of every request, one round trip."""
        states = [PartitionState(None) for _ in requests]
        async with self.client.pipeline(transaction=False) as pipe:
            for request, state in zip(requests, states, strict=True):
                channel = request.channel
                pipe.hget(
                    keys.watermarks(channel), keys.watermark_field(request.topic, request.partition)
                )
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
            if request.conversations:
                for conversation, raw in zip(request.conversations, next(replies), strict=True):
                    if raw:
                        state.states[(request.channel, conversation)] = decode_state(raw)
            if request.marks:
                found = next(replies)
                state.seen.update(m for m, f in zip(state.digests, found, strict=True) if f == 49)
        return states

    async def apply(self, requests: Sequence[PartitionApply]) -> list[bool]:
        """Apply each request atomically; False where a conflict wrote nothing (re-read)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for request in requests:
                script_keys, script_args = self._script_arguments(request)
                await self._apply(keys=script_keys, args=script_args, client=pipe)
            replies = await pipe.execute()
        return [reply[0] == b"ok" for reply in replies]

    def _script_arguments(self, request: PartitionApply) -> tuple[list[Any], list[Any]]:
        channel, delta = request.channel, request.delta
        known = request.digests
        digests = b"".join(known.get(m) or keys.dedup_digest(m[1], m[2]) for m in delta.dedup_marks)
        buckets = [
            (bucket, counters)
            for (ch, bucket), counters in delta.increments.items()
            if ch == channel
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
            for counter, amount in counters.items():
                args += [counter.value, amount]
        args += [encode_state(state) for _, state in conversations]
        return script_keys, args

    async def register_channels(self, channels: Sequence[str]) -> None:
        """Record channels as known (idempotent); the exporter lists them from here."""
        if channels:
            await self.client.sadd(keys.CHANNELS, *channels)

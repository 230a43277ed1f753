"""The Redis adapter of the worker: reads what a batch needs in one round trip and applies a
fold's result atomically per (topic, partition), guarded by the partition's watermark.

At-least-once delivery plus this guard counts each event once: a batch read against
watermark W applies only if W is still there, and only records after W are folded.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import PipelineCommand
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

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
from roi_metrics.state.scripts import Command, Script, execute


def _lua(name: str) -> str:
    return resources.files("roi_metrics.state").joinpath(name).read_text()


MARKS: Final = _lua("marks.lua")
"""The dedup mark layout's functions: the prelude of the scripts that read or write marks."""
APPLY: Final = Script(MARKS + _lua("apply.lua"))
SEEN: Final = Script(MARKS + _lua("seen.lua"))
REGISTER: Final = Script(_lua("register.lua"))
DROP_WATERMARK: Final = Script("""
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
""")
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


class ReplicasBehind(ConnectionError):
    """Fewer replicas than required confirmed a channel's writes in time (ROI_REDIS_WAIT_*):
    nothing may be acknowledged yet; read again and retry (a ConnectionError, so the caller
    retries it as it retries an unreachable Redis)."""


@dataclass(slots=True)
class PartitionState:
    watermark: int | None
    registered: bool = False
    """The channel is in the registry (`roi:channels`)."""
    states: dict[ConversationKey, ConversationState] = field(default_factory=dict)
    seen: set[DedupMark] = field(default_factory=set)
    digests: dict[DedupMark, bytes] = field(default_factory=dict)
    """The digest of every mark read, so an apply does not hash them again."""
    mark_token: str | None = None
    """The token the last apply that wrote the channel's marks left, when they were read
    (None: none read)."""
    guarded: dict[ConversationKey, str] = field(default_factory=dict)
    """The stored state of each conversation read that the customer agent may revoke (an AI
    resolution with a customer): the apply writes it only if it still holds that."""


@dataclass(frozen=True, slots=True)
class PartitionApply:
    channel: str
    topic: str
    partition: int
    expected_watermark: int | None
    new_watermark: int
    delta: BatchDelta
    digests: dict[DedupMark, bytes] = field(default_factory=dict)
    marks_read: str | None = None
    """PartitionState.mark_token of the read the delta was folded from: when no apply wrote
    the channel's marks since, the marks it looked up are not looked up again."""
    guarded: dict[ConversationKey, str] = field(default_factory=dict)
    """Conversations that must still hold these stored states (PartitionState.guarded):
    else nothing is applied (CONFLICT)."""


_DIGITS: Final = re.compile(r"-?[0-9]{1,20}")


def encode_state(state: ConversationState) -> str:
    """A conversation's state as kept in Redis: "ACTOR:MICROS", ":c" after it for a
    confirmed AI resolution; with a customer (CONTRACT.md §9) always four fields,
    "ACTOR:MICROS:FLAG:CUSTOMER", the first three empty while unresolved; '' (the key is
    deleted) for an unresolved conversation without a customer."""
    flag = "c" if state.confirmed else ""
    if state.customer is not None:
        actor = state.resolved_by.value if state.resolved_by else ""
        micros = "" if state.resolved_at_micros is None else str(state.resolved_at_micros)
        return f"{actor}:{micros}:{flag}:{state.customer}"
    if state.resolved_by is None or state.resolved_at_micros is None:
        return ""
    return f"{state.resolved_by.value}:{state.resolved_at_micros}{':' + flag if flag else ''}"


def decode_state(raw: bytes | None) -> ConversationState:
    """A conversation's state as encode_state wrote it (a state written before the flag or
    the customer existed has neither: not confirmed, no customer). StateCorrupt for a value
    this service never writes (by hand?): its partition waits, as for a corrupt sum."""
    if not raw:
        return UNRESOLVED
    text = raw.decode(errors="replace")
    parts = text.split(":", 3)
    customer = parts.pop() if len(parts) == 4 else None
    if len(parts) == 2:
        parts.append("")
    elif customer is None and parts[2:] != ["c"]:  # a third field alone is always "c"
        parts = ["?"]
    actor, micros, flag = parts if len(parts) == 3 else ("?", "", "")
    resolved = actor in ("ai", "human") and _DIGITS.fullmatch(micros) is not None
    unresolved = (actor, micros, flag) == ("", "", "")
    if (
        not (resolved or unresolved)
        or customer == ""
        or (unresolved and customer is None)
        or flag not in ("", "c")
        or (flag and actor != "ai")
    ):
        raise StateCorrupt(f"a conversation's state {text[:80]!r} is not one this service writes")
    return ConversationState(
        Actor(actor) if actor else None,
        int(micros) if micros else None,
        confirmed=flag == "c",
        customer=customer,
    )


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
        client: aioredis.Redis | Any,
        dedup_horizon_seconds: int,
        conversation_ttl_seconds: int,
        *,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        """redis.asyncio.Redis, or redis.asyncio.cluster.RedisCluster."""
        self.horizon = dedup_horizon_seconds
        self.mark_bucket_seconds = keys.mark_bucket_seconds(dedup_horizon_seconds)
        self.clock = clock
        """The worker's clock (seconds): which mark bucket a batch writes, which expired."""
        self.conversation_ttl_ms = str(conversation_ttl_seconds * 1000)
        self.wait_replicas = wait_replicas
        """Replicas that must confirm every write before it counts as applied (0: none)."""
        self.wait_timeout_ms = wait_timeout_ms
        self.unconfirmed: dict[str, dict[str, int]] = {}
        """Channel -> watermark field -> the offset confirm() must find on enough replicas."""

    async def read(self, requests: Sequence[PartitionRead]) -> list[PartitionState]:
        """Watermarks, conversation states and dedup marks of every request, one round trip."""
        states = [PartitionState(None) for _ in requests]
        commands: list[Command] = []
        for request, state in zip(requests, states, strict=True):
            channel = request.channel
            field_name = keys.watermark_field(request.topic, request.partition)
            commands.append(("HGET", keys.watermarks(channel), field_name))
            commands.append(("SISMEMBER", keys.CHANNELS, channel))
            if request.conversations:
                names = [keys.conversation(channel, c) for c in request.conversations]
                commands.append(("MGET", *names))
            if request.marks:
                state.digests = {(channel, s, i): keys.dedup_digest(s, i) for s, i in request.marks}
                blob = b"".join(state.digests.values())
                commands.append(
                    SEEN.command(
                        [keys.dedup_directory(channel)],
                        [keys.dedup_prefix(channel), blob, int(self.clock())],
                    )
                )
        replies = iter(await execute(self.client, commands, [SEEN]))
        for request, state in zip(requests, states, strict=True):
            watermark = next(replies)
            state.watermark = None if watermark is None else int(watermark)
            state.registered = bool(next(replies))
            if request.conversations:
                for conversation, raw in zip(request.conversations, next(replies), strict=True):
                    if raw:
                        key = (request.channel, conversation)
                        decoded = state.states[key] = decode_state(raw)
                        if decoded.customer is not None and decoded.resolved_by is Actor.AI:
                            state.guarded[key] = raw.decode()
            if request.marks:
                found, token = next(replies)
                state.seen.update(m for m, f in zip(state.digests, found, strict=True) if f == 49)
                state.mark_token = token.decode()
        return states

    async def apply(self, requests: Sequence[PartitionApply]) -> list[ApplyResult]:
        """Apply each request atomically, or nothing of it (re-read and fold again unless
        OK). Raises StateCorrupt when a stored sum is not an integer."""
        commands = [APPLY.command(*self._script_arguments(request)) for request in requests]
        replies = await execute(self.client, commands, [APPLY])
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

    def expect(self, channel: str, topic: str, partition: int, watermark: int | None) -> None:
        """With `wait_replicas`: the caller is about to acknowledge a partition's records up
        to `watermark` (applied now, or found applied): confirm() must see it on enough
        replicas first."""
        if self.wait_replicas and watermark is not None:
            fields = self.unconfirmed.setdefault(channel, {})
            field_name = keys.watermark_field(topic, partition)
            fields[field_name] = max(watermark, fields.get(field_name, watermark))

    async def confirm(self) -> None:
        """Return once every expected watermark is on its master and enough replicas hold it.
        On each master, one connection runs: the watermarks, a fresh write, WAIT (WAIT
        counts the replicas that have its own connection's writes, so the fresh write stands
        for everything before it). ReplicasBehind when too few replicas answered in time or
        a watermark went back (a failover lost it): the caller reads again and retries."""
        if not self.unconfirmed:
            return
        expected = {channel: dict(fields) for channel, fields in self.unconfirmed.items()}
        groups: dict[Any, list[str]] = {}
        for channel in expected:
            groups.setdefault(self._node(channel), []).append(channel)
        answers = await asyncio.gather(
            *(self._confirm_on(node, channels, expected) for node, channels in groups.items())
        )
        problems = [problem for problem in answers if problem is not None]
        behind = {channel for channels, _, _ in problems for channel in channels}
        gone = {(channel, name) for _, _, lost in problems for channel, name in lost}
        for channel, fields in expected.items():  # what a concurrent caller added stays
            current = self.unconfirmed.get(channel, {})
            for field_name, offset in fields.items():
                # confirmed, or gone with a failover (applied again, it is expected again)
                settled = channel not in behind or (channel, field_name) in gone
                if settled and current.get(field_name) == offset:
                    del current[field_name]
            if not current:
                self.unconfirmed.pop(channel, None)
        if problems:
            raise ReplicasBehind(problems[0][1])

    async def _confirm_on(
        self, node: Any, channels: list[str], expected: dict[str, dict[str, int]]
    ) -> tuple[list[str], str, list[tuple[str, str]]] | None:
        """None when the node confirms its channels, else them, what is wrong and the
        (channel, field) whose watermark went back."""
        args: list[tuple[Any, ...]] = [
            ("HMGET", keys.watermarks(channel), *expected[channel]) for channel in channels
        ]
        needed = self.wait_replicas
        args += [
            ("INCR", keys.replication_probe(channels[0])),
            ("WAIT", needed, self.wait_timeout_ms),
        ]
        replies = await self._on_one_connection(node, args)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        lost: list[tuple[str, str]] = []
        said = ""
        for channel, stored in zip(channels, replies, strict=False):
            for (field_name, offset), value in zip(expected[channel].items(), stored, strict=True):
                if value is None or int(value) < int(offset):
                    lost.append((channel, field_name))
                    said = said or (
                        f"{channel}: the watermark of {field_name} went back to "
                        f"{None if value is None else int(value)} from {offset} (a failover "
                        "lost writes); reading again"
                    )
        if lost:
            return channels, said, lost
        confirmed = int(replies[-1])
        if confirmed < needed:
            return (
                channels,
                (
                    f"{confirmed} of {needed} replicas confirmed the writes of "
                    f"{', '.join(channels)} within {self.wait_timeout_ms} ms "
                    "(ROI_REDIS_WAIT_REPLICAS)"
                ),
                [],
            )
        return None

    def _node(self, channel: str) -> Any:
        """The cluster node that holds the channel's keys; None on one server."""
        if isinstance(self.client, AsyncRedisCluster):
            return self.client.get_node_from_key(keys.watermarks(channel))
        return None

    async def _on_one_connection(self, node: Any, args: list[tuple[Any, ...]]) -> list[Any]:
        """Run `args` on one connection: the node's own (a cluster pipeline may send a
        retried keyless command elsewhere), or a pipeline of the one server."""
        if node is None:
            async with self.client.pipeline(transaction=False) as pipe:
                for command in args:
                    pipe.execute_command(*command)
                return list(await pipe.execute(raise_on_error=False))
        commands = [PipelineCommand(position, *command) for position, command in enumerate(args)]
        await node.execute_pipeline(commands)
        return [command.result for command in commands]

    async def headroom(self, request: PartitionApply) -> dict[SumKey, int]:
        """What is left under INT64_MAX of every sum `request` would add to."""
        channel = request.channel
        wanted = [
            (bucket, list(counters))
            for (owner, bucket), counters in request.delta.increments.items()
            if owner == channel
        ]
        commands = [
            ("HMGET", keys.bucket(channel, bucket), *[c.value for c in counters])
            for bucket, counters in wanted
        ]
        replies = await execute(self.client, commands, [])
        room: dict[SumKey, int] = {}
        for (bucket, counters), values in zip(wanted, replies, strict=True):
            for counter, value in zip(counters, values, strict=True):
                room[(channel, bucket, Counter(counter))] = INT64_MAX - int(value or 0)
        return room

    async def watermarks(
        self, partitions: Sequence[tuple[str, str, int]]
    ) -> dict[tuple[str, int], int | None]:
        """The last applied offset of each (channel, topic, partition), None if never."""
        commands = [
            ("HGET", keys.watermarks(channel), keys.watermark_field(topic, partition))
            for channel, topic, partition in partitions
        ]
        replies = await execute(self.client, commands, [])
        return {
            (topic, partition): None if reply is None else int(reply)
            for (_, topic, partition), reply in zip(partitions, replies, strict=True)
        }

    async def drop_watermark(self, channel: str, topic: str, partition: int, expected: int) -> bool:
        """Delete the partition's watermark if it is still `expected`; True when deleted."""
        command = DROP_WATERMARK.command(
            [keys.watermarks(channel)], [keys.watermark_field(topic, partition), expected]
        )
        [deleted] = await execute(self.client, [command], [DROP_WATERMARK])
        return bool(deleted)

    async def register_channel(self, channel: str, max_channels: int) -> bool:
        """Add `channel` to the registry unless `max_channels` are known already; True when
        it is known (now or before). Atomic, so concurrent workers cannot pass the bound."""
        command = REGISTER.command([keys.CHANNELS], [channel, max_channels])
        [known] = await execute(self.client, [command], [REGISTER])
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
        now = self.clock()
        mark_start = int(now) // self.mark_bucket_seconds * self.mark_bucket_seconds
        script_keys: list[Any] = [
            keys.watermarks(channel),
            keys.closed_writes(channel),
            keys.dedup_directory(channel),
            keys.bucket_writes(channel),
        ]
        script_keys += [keys.bucket(channel, bucket) for bucket, _ in buckets]
        script_keys += [keys.conversation(channel, c) for c, _ in conversations]
        expected = "" if request.expected_watermark is None else str(request.expected_watermark)
        args: list[Any] = [
            keys.watermark_field(request.topic, request.partition),
            expected,
            request.new_watermark,
            len(buckets),
            len(conversations),
            int(now),
            self.conversation_ttl_ms,
            keys.dedup_prefix(channel),
            digests,
            "1" if any(_closed(bucket, now) for bucket, _ in buckets) else "0",
            mark_start,
            mark_start + self.mark_bucket_seconds + self.horizon + keys.MARK_SLACK_SECONDS,
            self.horizon,
            "" if request.marks_read is None else request.marks_read,
            keys.dedup_created_prefix(channel),
            uuid.uuid4().hex,
        ]
        for (resolution, start), counters in buckets:
            expire_at = 0 if resolution == ALL else _EXPIRY[resolution].expires_at(start)
            args += [expire_at, len(counters)]
            for counter, amount in counters:
                args += [counter.value, amount, INT64_MAX - amount]
        for conversation, state in conversations:
            args += [encode_state(state), request.guarded.get((channel, conversation), "*")]
        return script_keys, args

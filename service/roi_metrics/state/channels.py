"""The channel registry, for the operator (`roi-metrics channel list` and `channel remove`).

A channel becomes known with its first counted event: the worker adds it to the set
`roi:channels` (roi_metrics/state/keys.py), which the exporter reads at each scrape. Every other
key of a channel carries its hash tag, `roi:{NAME}:*`: buckets, the cumulative hash
`roi:{NAME}:b:all:0`, conversation states, dedup marks, watermarks, the closed-writes counter.

Synchronous, like roi_metrics/state/reader.py. Every function raises redis.RedisError (a
subclass of it) when Redis cannot be reached or refuses a command, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import redis

from roi_metrics.domain.events import Counter
from roi_metrics.state import keys

CHUNK: Final = 500
"""Keys asked for per SCAN step and unlinked per UNLINK."""
_GLOB_SPECIAL: Final = re.compile(r"([*?\[\]\\])")


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel and its all-time figures (None when its cumulative hash lacks them or does
    not hold an integer there, e.g. a channel that has a topic but never counted an event)."""

    name: str
    registered: bool
    conversations: int | None
    ai_cost_micros: int | None


def key_pattern(name: str) -> str:
    """The SCAN MATCH pattern of every key of channel `name` (glob characters escaped)."""
    escaped = _GLOB_SPECIAL.sub(r"\\\1", name)
    return keys.channel_prefix(escaped) + "*"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _integer(value: bytes | str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def registered(client: redis.Redis) -> set[str]:
    """The names in the registry (`roi:channels`). Raises redis.RedisError."""
    return {_text(member) for member in client.smembers(keys.CHANNELS)}


def list_channels(client: redis.Redis, extra: Iterable[str] = ()) -> list[ChannelInfo]:
    """Every registered channel and every name of `extra` (e.g. topics of no registered
    channel), sorted by name, with conversations and AI cost since go-live read from the
    cumulative hash: two round trips. Raises redis.RedisError."""
    known = registered(client)
    names = sorted(known | set(extra))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(
            keys.bucket(name, ("all", 0)),
            [Counter.CONVERSATIONS.value, Counter.AI_COST_MICROS.value],
        )
    replies = pipe.execute() if names else []
    return [
        ChannelInfo(name, name in known, _integer(conversations), _integer(ai_cost))
        for name, (conversations, ai_cost) in zip(names, replies, strict=True)
    ]


def channel_keys(client: redis.Redis, name: str) -> Iterator[bytes]:
    """Every key of channel `name` (SCAN MATCH, CHUNK at a time; a key written or deleted
    meanwhile may or may not be listed). Raises redis.RedisError."""
    yield from client.scan_iter(match=key_pattern(name), count=CHUNK)


def count_keys(client: redis.Redis, name: str) -> int:
    """How many keys channel `name` has: what `remove_channel` would delete. Raises
    redis.RedisError."""
    return sum(1 for _ in channel_keys(client, name))


def remove_channel(client: redis.Redis, name: str) -> int:
    """Forget channel `name`: take it out of the registry first (the exporter stops showing
    it at its next scrape), then UNLINK every `roi:{name}:*` key, CHUNK at a time. Returns
    how many keys were deleted; 0, and no error, for a channel that does not exist.

    Not atomic: if a worker counts an event of the channel meanwhile, the channel is
    registered again with that event. Raises redis.RedisError (what was deleted before the
    failure stays deleted; running it again finishes the job)."""
    client.srem(keys.CHANNELS, name)
    # the dedup marks' directory and bitmaps first: a worker that writes marks meanwhile then
    # sets the expiry of every mark hash it creates again (roi_metrics.state.marks.lua)
    first = [keys.dedup_directory(name).encode()]
    first += list(client.scan_iter(match=f"{keys.dedup_created_prefix(name)}*", count=CHUNK))
    deleted = 0
    for start in range(0, len(first), CHUNK):
        deleted += int(client.unlink(*first[start : start + CHUNK]))
    chunk: list[bytes] = []
    for key in channel_keys(client, name):
        chunk.append(key)
        if len(chunk) >= CHUNK:
            deleted += int(client.unlink(*chunk))
            chunk = []
    if chunk:
        deleted += int(client.unlink(*chunk))
    return deleted

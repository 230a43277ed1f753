"""The Redis key layout. Every key of a channel carries the hash tag `{channel}`, so one
atomic apply touches one Redis Cluster slot.

    roi:channels                      set of known channels (outside any tag; written apart)
    roi:{web}:b:m:1772366400          hash: counters of a 1-minute bucket (expires)
    roi:{web}:b:h:1772366400          hash: counters of a 1-hour bucket (expires)
    roi:{web}:b:d:1772323200          hash: counters of a 1-day bucket (expires)
    roi:{web}:b:all:0                 hash: cumulative counters
    roi:{web}:c:<conversation id>     string "ai:<micros>" ("ai:<micros>:c" when confirmed) /
                                      "human:<micros>" (TTL)
    roi:{web}:sd                      hash: directory of the dedup mark buckets (marks.lua)
    roi:{web}:sx:<start>:<gen>        bitmap: which mark hashes of a generation exist (expires)
    roi:{web}:s:<start>:<gen>:<shard> hash: dedup marks written in a bucket of time, a field
                                      (16-byte digest of a (source, id)) per mark (expires)
    roi:{web}:wm                      hash: "<topic>:<partition>" -> last applied offset
    roi:{web}:cw                      string: a token replaced at each write into a closed bucket
    roi:{web}:bw                      string: a token replaced by every apply that writes buckets
    roi:{web}:rp                      counter: a write to wait for replicas on (ROI_REDIS_WAIT_*)

A bucket is closed once it is older than the one before the current one (by the worker's
clock): only late events write there, and each apply that does replaces `cw` (an apply that
writes buckets also creates it when it is missing: a channel removed and counted again gets
a new one), so the exporter may keep closed buckets' sums for as long as `cw` stands; and all
of its sums, until the window slides, for as long as `bw` stands.
"""

from __future__ import annotations

import hashlib
from typing import Final

from roi_metrics.domain.aggregate import BucketKey

CHANNELS: Final = "roi:channels"


def channel_prefix(channel: str) -> str:
    """What every key of `channel` starts with."""
    return f"roi:{{{channel}}}:"


def bucket_prefix(channel: str) -> str:
    """What every bucket key of `channel` starts with (windows.lua adds the rest)."""
    return f"roi:{{{channel}}}:b:"


def bucket(channel: str, key: BucketKey) -> str:
    resolution, start = key
    return f"{bucket_prefix(channel)}{resolution}:{start}"


def closed_writes(channel: str) -> str:
    return f"roi:{{{channel}}}:cw"


def bucket_writes(channel: str) -> str:
    """A token the apply script replaces (a fresh one each time) whenever it writes a bucket
    of the channel: the exporter reads the buckets again only when it changed."""
    return f"roi:{{{channel}}}:bw"


def replication_probe(channel: str) -> str:
    """Bumped before waiting again for replicas to confirm the channel's writes (WAIT
    waits for the writes of its own connection, so it needs one of its own)."""
    return f"roi:{{{channel}}}:rp"


def conversation(channel: str, conversation_id: str) -> str:
    return f"roi:{{{channel}}}:c:{conversation_id}"


DIGEST_BYTES: Final = 16


def dedup_prefix(channel: str) -> bytes:
    """What every dedup mark hash of `channel` starts with (marks.lua adds the rest)."""
    return f"roi:{{{channel}}}:s:".encode()


def dedup_directory(channel: str) -> str:
    return f"roi:{{{channel}}}:sd"


def dedup_created_prefix(channel: str) -> str:
    """What the bitmaps of the mark hashes created start with (apply.lua adds
    "<start>:<gen>"): a hash's expiry is set once, when the bitmap says it is new."""
    return f"roi:{{{channel}}}:sx:"


MARK_SLACK_SECONDS: Final = 600
"""Marks are kept this much longer than their bucket needs: workers' and Redis's clocks may
disagree by up to as much without a mark going before its horizon."""


def mark_bucket_seconds(horizon_seconds: int) -> int:
    """How long one bucket of dedup marks is written to: the horizon, so a lookup reads at
    most two buckets (the current one and the one before), and a mark lives from one
    horizon up to two (its bucket expires a horizon after the bucket's end), 1.5 on
    average."""
    return max(1, horizon_seconds)


def dedup_digest(source: str, event_id: str) -> bytes:
    """A fixed-size (128-bit) name for an event identity, whatever its length. The scripts
    take a batch's digests as one concatenated argument and add the channel's prefix."""
    return hashlib.blake2b(f"{source}\x1f{event_id}".encode(), digest_size=DIGEST_BYTES).digest()


def watermarks(channel: str) -> str:
    return f"roi:{{{channel}}}:wm"


def watermark_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"

"""Each customer's standing AI resolution (CONTRACT.md §9), as the customer agent keeps it.

A customer's keys carry a hash tag of a digest of its id (any text up to 128 characters, a
brace included), so both lie in one slot of a Redis Cluster, wherever the channels are:

    roi:u:{<digest>}      hash: 's' what is kept of the customer (JSON: its AI
                          resolutions still standing and its latest starts), 'v' a version
    roi:u:{<digest>}:f    sorted set: the facts joined (fact id -> seconds), to know one
                          sent again after a crash
    roi:cf:{<topic>}      hash: partition of the customer topic -> last offset joined

Both expire `keep` seconds after the customer's last fact (the re-contact window and a day
for facts sent again): a customer's resolution is not revoked after the window anyway.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from roi_metrics.domain.recontact import NOBODY, Customer, Standing, Start
from roi_metrics.state.scripts import Script, execute

CUSTOMER: Final = Script(resources.files("roi_metrics.state").joinpath("customer.lua").read_text())
ADVANCE: Final = Script("""
-- KEYS[1]: the agent's progress hash; ARGV[1]: a partition's field; ARGV[2]: an offset.
-- Moves the field to the offset unless it is there or past it already.
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
""")


def progress_key(topic: str) -> str:
    """The customer agent's progress: the last offset joined per partition of `topic`."""
    return f"roi:cf:{{{topic}}}"


def customer_key(customer: str) -> str:
    digest = hashlib.blake2b(customer.encode(), digest_size=10).hexdigest()
    return f"roi:u:{{{digest}}}"


def encode_customer(customer: Customer) -> str:
    """What is kept of a customer as JSON: "r" its resolutions standing, "b" its starts;
    and "s" the latest resolution, which a worker of an earlier version reads (during a
    rolling upgrade it then still sees a standing resolution)."""
    latest = customer.standing
    return json.dumps(
        {
            "s": None
            if latest is None
            else [latest.channel, latest.conversation, latest.resolved_micros, latest.confirmed],
            "r": [
                [r.channel, r.conversation, r.resolved_micros, r.confirmed]
                for r in customer.resolutions
            ],
            "b": [[s.channel, s.conversation, s.time_micros] for s in customer.starts],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _standing(value: object) -> Standing | None:
    if not isinstance(value, list) or len(value) != 4:
        return None
    channel, conversation, micros, confirmed = value
    if isinstance(channel, str) and isinstance(conversation, str) and type(micros) is int:
        return Standing(channel, conversation, micros, confirmed is True)
    return None


def _start(value: object) -> Start | None:
    if not isinstance(value, list) or len(value) != 3:
        return None
    channel, conversation, micros = value
    if isinstance(channel, str) and isinstance(conversation, str) and type(micros) is int:
        return Start(channel, conversation, micros)
    return None


def decode_customer(raw: bytes | None) -> Customer:
    """What encode_customer wrote; a value it never writes (by hand) reads as nothing kept
    (NOBODY), or without its parts that are not as written."""
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return NOBODY
    if not isinstance(value, dict):
        return NOBODY
    starts = value.get("b")
    found = [_start(item) for item in starts] if isinstance(starts, list) else []
    listed = value.get("r", [value.get("s")])  # "s": the one resolution of earlier versions
    resolutions = [_standing(item) for item in listed] if isinstance(listed, list) else []
    return Customer(
        tuple(r for r in resolutions if r is not None), tuple(s for s in found if s is not None)
    )


@dataclass(frozen=True, slots=True)
class CustomerState:
    customer: Customer
    version: str
    """'' before the customer's first fact."""
    joined: bool
    """The fact asked about was joined already."""


class CustomerStore:
    def __init__(
        self, client: Any, keep_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.keep_seconds = keep_seconds
        self.clock = clock

    async def read(self, customer: str, fact_id: str) -> CustomerState:
        key = customer_key(customer)
        standing, version, joined = await execute(
            self.client,
            [("HGET", key, "s"), ("HGET", key, "v"), ("ZSCORE", f"{key}:f", fact_id)],
            [],
        )
        return CustomerState(
            decode_customer(standing), version.decode() if version else "", joined is not None
        )

    async def progress(self, topic: str, partition: int) -> int | None:
        """The last offset of the partition the agent joined, None before the first."""
        [raw] = await execute(self.client, [("HGET", progress_key(topic), str(partition))], [])
        return None if raw is None else int(raw)

    async def forget(self, topic: str, partition: int) -> None:
        """Drop the partition's progress mark: it names an offset of an earlier topic of
        that name (deleted and created again: its offsets started over)."""
        await execute(self.client, [("HDEL", progress_key(topic), str(partition))], [])

    async def advance(self, topic: str, partition: int, offset: int) -> None:
        command = ADVANCE.command([progress_key(topic)], [str(partition), offset])
        await execute(self.client, [command], [ADVANCE])

    async def write(self, customer: str, fact_id: str, version: str, kept: Customer) -> str:
        """'ok', 'seen' (joined before: nothing written) or 'conflict' (the state moved on
        since it was read: nothing written)."""
        key = customer_key(customer)
        args = [fact_id, version, encode_customer(kept), int(self.clock()), self.keep_seconds]
        [reply] = await execute(
            self.client, [CUSTOMER.command([key, f"{key}:f"], args)], [CUSTOMER]
        )
        return str(reply[0].decode())

"""A batch of Kafka records as the processor holds it: each record decoded once, grouped by
(topic, partition), with what earlier attempts at it already did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roi_metrics.domain.aggregate import SumKey
from roi_metrics.ingest.decode import DecodedRecord

LetterId = tuple[int, str, int]
"""(origin offset, kind, position): which rejection of which record a dead letter is."""


def header_pairs(headers: Any) -> Any:
    """A record's headers as Faust or aiokafka give them: (name, value) pairs or a dict."""
    return headers.items() if isinstance(headers, dict) else headers


def headers_of(headers: Any) -> tuple[tuple[str, bytes | None], ...]:
    """A record's headers as (name, value) pairs; Kafka allows a null value."""
    return tuple((str(name), value) for name, value in header_pairs(headers)) if headers else ()


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(slots=True)
class Partition:
    """The records of one (topic, partition) in a batch, decoded once."""

    topic: str
    partition: int
    channel: str
    records: list[tuple[Record, DecodedRecord]] = field(default_factory=list)
    sent: set[LetterId] = field(default_factory=set)
    """Dead letters delivered by an earlier attempt at this batch: never sent twice."""
    headroom: dict[SumKey, int] | None = None
    """Read after an apply found a sum too close to its limit; then events are checked."""
    counted_redelivery: bool = False
    recovered: set[int] = field(default_factory=set)
    """Offsets of records read again from Kafka into this batch (counted once applied)."""
    ranged: bool = False
    """Read from Kafka by recover_range, from the watermark on (not fetched by the consumer)."""
    holes_read: set[tuple[int, int]] = field(default_factory=set)
    """Holes [start, end) between the batch's records already looked for in Kafka."""
    facts_sent: set[str] = field(default_factory=set)
    """Ids of the customer facts an earlier attempt at this batch sent (CONTRACT.md §9)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decoded batch, grouped by (topic, partition), ready to apply."""

    partitions: list[Partition]

"""A batch of Kafka records as the processor holds it: each record decoded once, grouped by
(topic, partition), with what earlier attempts at it already did."""

from __future__ import annotations

from dataclasses import dataclass, field

from roi_metrics.domain.aggregate import SumKey
from roi_metrics.ingest.decode import DecodedRecord

LetterId = tuple[int, str, int]
"""(origin offset, kind, position): which rejection of which record a dead letter is."""


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decoded batch, grouped by (topic, partition), ready to apply."""

    partitions: list[Partition]

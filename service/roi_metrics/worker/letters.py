"""The dead letters of a batch: which rejections of its records and events become letters,
and their delivery, each letter once per process even when the batch is tried again.

DeadLettersPending when some could not be sent (Kafka unavailable): the batch waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from roi_metrics.domain.aggregate import BatchDelta, Outcome
from roi_metrics.ingest.binary import CE_PREFIX, CONTENT_TYPE
from roi_metrics.ingest.contract import DeadLetterReason
from roi_metrics.ingest.decode import (
    DecodedRecord,
    Decoder,
    Rejection,
    unexpected,
)
from roi_metrics.worker.batch import LetterId, Partition, Record
from roi_metrics.worker.consumer import Unreadable
from roi_metrics.worker.deadletter import DeadLetter, DeadLetterSink
from roi_metrics.worker.metrics import WorkerMetrics

LETTERS_PER_DELIVERY: Final = 2000
"""Dead letters sent at once; the watchdog hears of progress after each such chunk."""


class DeadLettersPending(Exception):
    """Some dead letters could not be sent yet (Kafka unavailable); the batch waits."""


def _letter(record: Record, rejection: Rejection, event: int | None) -> DeadLetter:
    return DeadLetter(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        rejection.reason,
        rejection.message,
        rejection.payload,
        event,
        tuple(
            (name, value or b"")
            for name, value in record.headers
            if name.lower().startswith(CE_PREFIX) or name.lower() == CONTENT_TYPE
        ),
    )


class LetterPost:
    """Composes and delivers a batch's dead letters."""

    def __init__(
        self,
        decoder: Decoder,
        sink: DeadLetterSink,
        metrics: WorkerMetrics,
        max_channels: int,
        on_progress: Callable[[], None],
    ) -> None:
        self.decoder, self.dead_letters, self.metrics = decoder, sink, metrics
        self.max_channels = max_channels
        self.on_progress = on_progress

    def compose(
        self,
        part: Partition,
        fresh: Sequence[tuple[Record, DecodedRecord]],
        origins: Sequence[tuple[Record, DecodedRecord, int]],
        delta: BatchDelta,
        *,
        blocked: bool,
    ) -> list[tuple[LetterId, DeadLetter]]:
        """The dead letters of the fresh records not yet sent, each with its identity."""
        letters = [
            (
                (record.offset, "record", position),
                _letter(record, rejection, rejection.position),
            )
            for record, decoded in fresh
            for position, rejection in enumerate(decoded.rejections)
            if (record.offset, "record", position) not in part.sent
        ]
        rejected: list[tuple[int, DeadLetterReason, str]] = []
        if blocked:
            message = f"{self.max_channels} channels are known (ROI_MAX_CHANNELS); this is not"
            rejected = [(i, DeadLetterReason.CHANNEL_LIMIT, message) for i in range(len(origins))]
        overflow = "a sum would pass 2^63 - 1; nothing was counted"
        rejected += [(i, DeadLetterReason.OVERFLOW, overflow) for i in delta.overflowed]
        rejected += [
            (i, DeadLetterReason.UNPROCESSABLE, unexpected(error)) for i, error in delta.failed
        ]
        wanted = [
            (origins[i], reason, message)
            for i, reason, message in rejected
            if (origins[i][0].offset, "event", origins[i][2]) not in part.sent
        ]
        payloads = self.decoder.event_payloads(
            [(record.value or b"", decoded, index) for (record, decoded, index), _, _ in wanted]
        )
        for ((record, decoded, index), reason, message), payload in zip(
            wanted, payloads, strict=True
        ):
            rejection = Rejection(reason, message, payload)
            at = None if decoded.positions is None else decoded.positions[index]
            letters.append(((record.offset, "event", index), _letter(record, rejection, at)))
        return letters

    async def send(
        self, part: Partition, letters: Sequence[tuple[LetterId, DeadLetter]], label: str
    ) -> None:
        """Deliver the letters not delivered by an earlier attempt; DeadLettersPending when
        some could not be (they are tried again with the batch)."""
        unsent = [(identity, letter) for identity, letter in letters if identity not in part.sent]
        failures = []
        for start in range(0, len(unsent), LETTERS_PER_DELIVERY):
            chunk = unsent[start : start + LETTERS_PER_DELIVERY]
            outcomes = await self.dead_letters.deliver([letter for _, letter in chunk])
            for (identity, letter), failure in zip(chunk, outcomes, strict=True):
                if failure is None:
                    part.sent.add(identity)
                    self.metrics.outcome(label, Outcome.DEAD_LETTERED)
                    self.metrics.dead_letters.labels(label, letter.reason.value).inc()
                else:
                    failures.append(failure)
            self.on_progress()
        if failures:
            raise DeadLettersPending(f"{len(failures)} dead letters not sent: {failures[0]!r}")

    async def unreadable(
        self, records: Sequence[Unreadable], channel_of: Callable[[str], str]
    ) -> None:
        """Dead-letter records the consumer could not read (`unprocessable`, no key, no
        payload: the record stays at its origin offset). DeadLettersPending if some could
        not be sent (they are tried again)."""
        letters = [
            DeadLetter(
                record.topic,
                record.partition,
                record.offset,
                None,
                DeadLetterReason.UNPROCESSABLE,
                f"{record.error} (the record could not be read; it stays at its origin offset)",
                b"",
            )
            for record in records
        ]
        outcomes = await self.dead_letters.deliver(letters)
        failures = [failure for failure in outcomes if failure is not None]
        for letter, failure in zip(letters, outcomes, strict=True):
            if failure is None:
                label = self.metrics.label(channel_of(letter.topic))
                self.metrics.outcome(label, Outcome.DEAD_LETTERED)
                self.metrics.dead_letters.labels(label, letter.reason.value).inc()
        if failures:
            raise DeadLettersPending(f"{len(failures)} dead letters not sent: {failures[0]!r}")

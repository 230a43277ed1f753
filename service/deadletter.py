"""The dead-letter policy: one record on the dead-letter topic per rejected input record or
rejected event, with its origin and reason in headers (CONTRACT.md §1).

Dead letters are sent, and acknowledged by the broker, before the batch they come from is
applied: none is lost. A worker that dies between the two sends them again on restart, so
the dead-letter topic is at-least-once (count distinct origin offsets to deduplicate).

A payload too large to send (a `too_large` record) is cut to its first 64 KiB and marked
with a `dlq.truncated` header holding its size; the whole record stays in its origin topic
at the offset the headers name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from aiokafka import AIOKafkaProducer

from service.contract import DeadLetterHeader, DeadLetterReason

MAX_ERROR_BYTES: Final = 1024
MAX_PAYLOAD_BYTES: Final = 1_000_000
"""Leaves room for key and headers under the 1 MiB a producer and broker take by default."""
KEPT_PAYLOAD_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    reason: DeadLetterReason
    message: str
    payload: bytes


def truncate_utf8(text: str, limit: int = MAX_ERROR_BYTES) -> bytes:
    """`text` as UTF-8, cut to at most `limit` bytes without splitting a character."""
    return text.encode()[:limit].decode(errors="ignore").encode()


def headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    result = [
        (DeadLetterHeader.ORIGIN_TOPIC.value, letter.topic.encode()),
        (DeadLetterHeader.ORIGIN_PARTITION.value, str(letter.partition).encode()),
        (DeadLetterHeader.ORIGIN_OFFSET.value, str(letter.offset).encode()),
        (DeadLetterHeader.REASON.value, letter.reason.value.encode()),
        (DeadLetterHeader.ERROR.value, truncate_utf8(letter.message)),
    ]
    if len(letter.payload) > MAX_PAYLOAD_BYTES:
        result.append((DeadLetterHeader.TRUNCATED.value, str(len(letter.payload)).encode()))
    return result


def payload(letter: DeadLetter) -> bytes:
    """The payload to send: whole, or its first 64 KiB when it is too large to send."""
    if len(letter.payload) > MAX_PAYLOAD_BYTES:
        return letter.payload[:KEPT_PAYLOAD_BYTES]
    return letter.payload


class DeadLetterSink(Protocol):
    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Deliver every letter, returning only once the broker has acknowledged them all."""


class KafkaDeadLetters:
    """Sends dead letters with an idempotent producer (acks=all), keyed like their origin."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        pending = [
            await self.producer.send(
                self.topic, value=payload(letter), key=letter.key, headers=headers(letter)
            )
            for letter in letters
        ]
        for delivery in pending:
            await delivery

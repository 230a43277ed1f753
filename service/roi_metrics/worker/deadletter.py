"""The dead-letter policy: one record on the dead-letter topic per rejected input record or
rejected event, with its origin and reason in headers (CONTRACT.md §1).

Dead letters are sent, and acknowledged by the broker, before the batch they come from is
applied: none is lost. A worker that dies between the two sends them again on restart, so
the dead-letter topic is at-least-once (count distinct origin offsets to deduplicate).

A dead letter always fits: key, payload and headers are sized together against the
smallest of the producer's request limit and the topic's `max.message.bytes` (read when
the worker starts). A key over 1 KiB is cut to 1 KiB, then the payload to what is left,
each with a header holding the original size (`dlq.key.truncated`, `dlq.truncated`); the
whole record stays in its origin topic at the offset the headers name. A letter carries
the origin's `ce_` and `content-type` headers (a binary-mode event's attributes) up to 8 KiB,
else `dlq.headers.truncated`. A size error from
the broker (the topic's limit was lowered since) is never retried: the letter is sent once
more with no key and no payload, and if even that is refused it is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from roi_metrics.ingest.contract import DeadLetterHeader, DeadLetterReason

log = logging.getLogger(__name__)
MAX_ERROR_BYTES: Final = 1024
MAX_KEY_BYTES: Final = 1024
"""Keys are conversation ids (128 characters at most); a longer one is cut to this."""
PRODUCER_MAX_REQUEST_BYTES: Final = 1024 * 1024
"""The dead-letter producer's max_request_size (aiokafka's default, set explicitly)."""
MAX_ORIGIN_HEADER_BYTES: Final = 8 * 1024
"""The most of the origin's `ce_` headers a letter carries (names and values, UTF-8)."""
IDENTIFYING_HEADERS: Final = frozenset(
    {f"ce_{name}" for name in ("specversion", "id", "source", "type", "time", "subject")}
    | {"content-type"}
)
"""What still makes a binary-mode letter an event when its other headers are left out."""
SIZE_MARGIN_BYTES: Final = 512
"""Room for the record batch's own header besides the record."""
SIZE_ERRORS: Final = (MessageSizeTooLargeError, RecordTooLargeError)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    reason: DeadLetterReason
    message: str
    payload: bytes
    event: int | None = None
    """The position of the rejected event in its batch; None for a whole record."""
    origin_headers: tuple[tuple[str, bytes], ...] = ()
    """The origin record's `ce_` and `content-type` headers: a binary-mode event's
    attributes, without which its payload (the data alone) would be no event."""


Headers = list[tuple[str, bytes]]


def truncate_utf8(text: str, limit: int = MAX_ERROR_BYTES) -> bytes:
    """`text` as UTF-8, cut to at most `limit` bytes without splitting a character."""
    return text.encode(errors="replace")[:limit].decode(errors="ignore").encode()


def base_headers(letter: DeadLetter, error_bytes: int = MAX_ERROR_BYTES) -> Headers:
    headers = [
        (DeadLetterHeader.ORIGIN_TOPIC.value, letter.topic.encode()),
        (DeadLetterHeader.ORIGIN_PARTITION.value, str(letter.partition).encode()),
        (DeadLetterHeader.ORIGIN_OFFSET.value, str(letter.offset).encode()),
        (DeadLetterHeader.REASON.value, letter.reason.value.encode()),
        (DeadLetterHeader.ERROR.value, truncate_utf8(letter.message, error_bytes)),
    ]
    if letter.event is not None:
        headers.append((DeadLetterHeader.ORIGIN_EVENT.value, str(letter.event).encode()))
    return headers


def _size(headers: Sequence[tuple[str, bytes]]) -> int:
    """Header bytes: names as UTF-8, values."""
    return sum(len(name.encode(errors="replace")) + len(value) for name, value in headers)


def origin_headers(letter: DeadLetter) -> Headers:
    """The origin's event headers to carry: all of them within MAX_ORIGIN_HEADER_BYTES (as
    UTF-8), else the event's required attributes and content-type if they fit, and a header
    saying how many bytes were left out."""
    carried = list(letter.origin_headers)
    if _size(carried) <= MAX_ORIGIN_HEADER_BYTES:
        return carried
    kept = [(name, value) for name, value in carried if name.lower() in IDENTIFYING_HEADERS]
    if _size(kept) > MAX_ORIGIN_HEADER_BYTES:
        kept = []
    left_out = _size(carried) - _size(kept)
    return [*kept, (DeadLetterHeader.HEADERS_TRUNCATED.value, str(left_out).encode())]


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """The bytes one record takes in a record batch, its batch header included."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    return size


def fit(letter: DeadLetter, limit: int) -> tuple[bytes | None, bytes, Headers]:
    """Key, payload and headers of a letter, cut so that the record stays within `limit`
    bytes (the original sizes go in headers)."""
    key, payload = letter.key, letter.payload
    headers = base_headers(letter) + origin_headers(letter)
    if key is not None and len(key) > MAX_KEY_BYTES:
        headers.append((DeadLetterHeader.KEY_TRUNCATED.value, str(len(key)).encode()))
        key = key[:MAX_KEY_BYTES]
    budget = limit - SIZE_MARGIN_BYTES
    if record_size(key, payload, headers) > budget:
        headers.append((DeadLetterHeader.TRUNCATED.value, str(len(payload)).encode()))
        overhead = record_size(key, b"", headers) + 8  # the payload's length grows a varint
        payload = payload[: max(0, budget - overhead)]
    if record_size(key, payload, headers) > budget:  # a tiny limit: the headers alone pass it
        return stripped(letter, error_bytes=64)
    return key, payload, headers


def stripped(letter: DeadLetter, error_bytes: int = MAX_ERROR_BYTES) -> tuple[None, bytes, Headers]:
    """The letter as headers only, without the origin's (their size said): what is sent
    when the broker refuses its size, or when a tiny limit leaves no room for more."""
    headers = base_headers(letter)
    if error_bytes < MAX_ERROR_BYTES:
        headers = [
            (
                name,
                truncate_utf8(letter.message, error_bytes)
                if name == DeadLetterHeader.ERROR.value
                else value,
            )
            for name, value in headers
        ]
    headers.append((DeadLetterHeader.TRUNCATED.value, str(len(letter.payload)).encode()))
    if letter.key is not None:
        headers.append((DeadLetterHeader.KEY_TRUNCATED.value, str(len(letter.key)).encode()))
    origin = _size(letter.origin_headers)
    if origin:
        headers.append((DeadLetterHeader.HEADERS_TRUNCATED.value, str(origin).encode()))
    return None, b"", headers


class DeadLetterSink(Protocol):
    async def deliver(self, letters: Sequence[DeadLetter]) -> list[BaseException | None]:
        """Send every letter; per letter None once the broker acknowledged it, or the error
        that kept it from being sent (a retriable one: the caller tries again later)."""


class KafkaDeadLetters:
    """Sends dead letters with an idempotent producer (acks=all), keyed like their origin.

    `limit_bytes` is the smallest of the producer's max_request_size and the topic's
    max.message.bytes; `on_dropped` hears of each letter dropped after two size refusals.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        limit_bytes: int = PRODUCER_MAX_REQUEST_BYTES,
        on_dropped: Callable[[DeadLetter], None] = lambda letter: None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.limit_bytes = limit_bytes
        self.on_dropped = on_dropped

    async def deliver(self, letters: Sequence[DeadLetter]) -> list[BaseException | None]:
        pending: list[asyncio.Future[Any] | BaseException] = []
        for letter in letters:
            key, payload, headers = fit(letter, self.limit_bytes)
            try:
                pending.append(await self._send(key, payload, headers))
            except Exception as error:
                pending.append(error)
        outcomes: list[BaseException | None] = []
        for letter, delivery in zip(letters, pending, strict=True):
            try:
                if isinstance(delivery, BaseException):
                    raise delivery
                await delivery
                outcomes.append(None)
            except SIZE_ERRORS as error:
                outcomes.append(await self._send_stripped(letter, error))
            except Exception as error:
                outcomes.append(error)
        return outcomes

    async def _send(
        self, key: bytes | None, payload: bytes, headers: Headers
    ) -> asyncio.Future[Any]:
        """Queue one record; the future resolves when the broker acknowledged it."""
        delivery: asyncio.Future[Any] = await self.producer.send(
            self.topic, value=payload, key=key, headers=headers
        )
        return delivery

    async def _send_stripped(
        self, letter: DeadLetter, error: BaseException
    ) -> BaseException | None:
        """Send the letter as headers only; None once delivered or dropped after a second
        size refusal, the error of any other failure (to be tried again)."""
        try:
            await (await self._send(*stripped(letter)))
        except SIZE_ERRORS as again:
            self.on_dropped(letter)
            log.error(
                "dead letter of %s:%d@%d (%s) refused twice for its size (%s, then %s); "
                "the record stays at its origin offset",
                letter.topic,
                letter.partition,
                letter.offset,
                letter.reason.value,
                error,
                again,
            )
        except Exception as failure:
            return failure
        return None

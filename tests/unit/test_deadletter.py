"""Dead letters always fit: key, payload and headers sized together against the limit."""

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from roi_metrics.ingest.contract import DeadLetterReason
from roi_metrics.worker.deadletter import (
    MAX_KEY_BYTES,
    PRODUCER_MAX_REQUEST_BYTES,
    DeadLetter,
    KafkaDeadLetters,
    fit,
    record_size,
    stripped,
    truncate_utf8,
)


def letter(body: bytes, message: str = "bad", key: bytes | None = b"c1") -> DeadLetter:
    return DeadLetter("support.events.web", 3, 42, key, DeadLetterReason.TOO_LARGE, message, body)


ORIGIN = [
    ("dlq.origin.topic", b"support.events.web"),
    ("dlq.origin.partition", b"3"),
    ("dlq.origin.offset", b"42"),
    ("dlq.reason", b"too_large"),
    ("dlq.error", b"bad"),
]


def test_a_small_letter_is_sent_whole_with_its_origin_and_reason() -> None:
    assert fit(letter(b"{}"), PRODUCER_MAX_REQUEST_BYTES) == (b"c1", b"{}", ORIGIN)


@pytest.mark.parametrize("limit", [PRODUCER_MAX_REQUEST_BYTES, 2 * 1024 * 1024, 100_000, 4096])
@pytest.mark.parametrize(
    ("key_bytes", "payload_bytes"),
    [(2, 1_500_000), (1_100_000, 10), (1_100_000, 1_100_000), (1024, 4000), (0, 0)],
)
def test_key_and_payload_are_cut_so_the_whole_record_fits(
    limit: int, key_bytes: int, payload_bytes: int
) -> None:
    original = letter(b"p" * payload_bytes, "x" * 5000, b"k" * key_bytes)
    key, payload, headers = fit(original, limit)
    assert record_size(key, payload, headers) <= limit - 512
    assert original.payload.startswith(payload)  # a prefix of the original bytes
    named = dict(headers)
    assert len(named["dlq.error"]) == 1024
    if key_bytes > MAX_KEY_BYTES:
        assert key == b"k" * MAX_KEY_BYTES
        assert named["dlq.key.truncated"] == str(key_bytes).encode()
    else:
        assert key == original.key
        assert "dlq.key.truncated" not in named
    if payload != original.payload:
        assert named["dlq.truncated"] == str(payload_bytes).encode()
        assert len(payload) > limit - 512 - len(key or b"") - 1024 - 300  # cut no more
    else:
        assert "dlq.truncated" not in named


def test_a_letter_refused_for_its_size_goes_again_as_headers_only() -> None:
    key, payload, headers = stripped(letter(b"x" * 10, key=b"c1"))
    assert (key, payload) == (None, b"")
    assert headers == [*ORIGIN, ("dlq.truncated", b"10"), ("dlq.key.truncated", b"2")]


def test_error_messages_are_cut_to_1_kib_on_a_character_boundary() -> None:
    cut = truncate_utf8("é" * 600)  # 1200 bytes of two-byte characters
    assert len(cut) == 1024
    assert cut.decode() == "é" * 512
    assert truncate_utf8("a" + "é" * 600) == ("a" + "é" * 511).encode()  # 1023 bytes


class RefusingProducer:
    """Answers each send with the next of `answers`: None (acknowledged) or an error."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: object) -> object:
        self.sent.append((key, value))
        answer = self.answers.pop(0)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if answer is None:
            future.set_result(None)
        else:
            future.set_exception(answer)
        return future


async def test_a_size_refusal_is_resent_once_headers_only_then_dropped_and_counted() -> None:
    dropped: list[DeadLetter] = []
    producer = RefusingProducer(MessageSizeTooLargeError(), MessageSizeTooLargeError())
    sink = KafkaDeadLetters(producer, "dlq", on_dropped=dropped.append)  # type: ignore[arg-type]
    assert await sink.deliver([letter(b"x" * 100)]) == [None]
    assert producer.sent == [(b"c1", b"x" * 100), (None, b"")]
    assert len(dropped) == 1


async def test_another_failure_of_the_headers_only_resend_is_tried_again_later() -> None:
    timeout = KafkaTimeoutError()
    producer = RefusingProducer(MessageSizeTooLargeError(), None, timeout)  # x, y, x stripped
    sink = KafkaDeadLetters(producer, "dlq")  # type: ignore[arg-type]
    assert await sink.deliver([letter(b"x"), letter(b"y")]) == [timeout, None]

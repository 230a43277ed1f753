"""Dead letters always fit: key, payload and headers sized together against the limit."""

import pytest

from service.contract import DeadLetterReason
from service.deadletter import (
    MAX_KEY_BYTES,
    PRODUCER_MAX_REQUEST_BYTES,
    DeadLetter,
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

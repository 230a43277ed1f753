from service.contract import DeadLetterReason
from service.deadletter import KEPT_PAYLOAD_BYTES, DeadLetter, headers, payload, truncate_utf8


def letter(body: bytes, message: str = "bad") -> DeadLetter:
    return DeadLetter("support.events.web", 3, 42, b"c1", DeadLetterReason.TOO_LARGE, message, body)


def test_headers_name_the_origin_and_the_reason() -> None:
    assert headers(letter(b"{}")) == [
        ("dlq.origin.topic", b"support.events.web"),
        ("dlq.origin.partition", b"3"),
        ("dlq.origin.offset", b"42"),
        ("dlq.reason", b"too_large"),
        ("dlq.error", b"bad"),
    ]
    assert payload(letter(b"{}")) == b"{}"


def test_a_payload_too_large_to_send_is_cut_and_marked() -> None:
    big = letter(b"x" * 1_500_000)
    assert payload(big) == b"x" * KEPT_PAYLOAD_BYTES
    assert headers(big)[-1] == ("dlq.truncated", b"1500000")


def test_error_messages_are_cut_to_1_kib_on_a_character_boundary() -> None:
    cut = truncate_utf8("é" * 600)  # 1200 bytes of two-byte characters
    assert len(cut) == 1024
    assert cut.decode() == "é" * 512
    assert truncate_utf8("a" + "é" * 600) == ("a" + "é" * 511).encode()  # 1023 bytes

"""CloudEvents binary content mode (CONTRACT.md §1 v2): the event's data as the record value,
its attributes in `ce_` headers. Records made by the official CloudEvents SDK decode to the
very events their structured twins do; every malformed header has its reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from roi_metrics.ingest.binary import is_binary
from roi_metrics.ingest.contract import DeadLetterHeader
from roi_metrics.ingest.contract import DeadLetterReason as R
from roi_metrics.ingest.decode import MAX_RECORD_BYTES, Decoder
from roi_metrics.worker.deadletter import SIZE_MARGIN_BYTES, DeadLetter, fit, record_size

NOW = int(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000
DECODER = Decoder("USD")
AT = dt.datetime(2026, 3, 1, 11, 59, tzinfo=dt.UTC)
EVENTS = [
    ("support.conversation.started", {"handled_by": "ai"}),
    ("support.conversation.resolved", {"resolved_by": "ai", "confirmation": "confirmed"}),
    ("support.cost.recorded", {"amount": "0.042", "currency": "USD", "category": "ai_usage"}),
    ("support.revenue.attributed", {"amount": 12.5, "currency": "USD"}),
    ("support.csat.recorded", {"score": 4}),
    ("support.conversation.escalated", {}),
]
HEADERS: list[tuple[str, bytes]] = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e-1"),
    ("ce_source", b"/web/acme"),
    ("ce_type", b"support.conversation.started"),
    ("ce_time", b"2026-03-01T11:59:00Z"),
    ("ce_subject", b"conv-1"),
    ("content-type", b"application/json"),
]


def sdk_event(kind: str, data: dict[str, Any], number: int = 1) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": f"e-{number}",
            "source": "/web/acme",
            "type": kind,
            "time": AT,
            "subject": "conv-1",
            "datacontenttype": "application/json",
            "customer": "c0ffee",
        },
        data=data,
    )


def decode(value: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
    return DECODER.decode_record(value, "web", NOW, 0, headers)


def reasons(value: bytes | None, headers: list[tuple[str, bytes]]) -> list[tuple[R, str]]:
    return [(r.reason, r.message) for r in decode(value, headers).rejections]


@pytest.mark.parametrize(("kind", "data"), EVENTS)
def test_an_sdk_binary_record_decodes_as_its_structured_twin(
    kind: str, data: dict[str, Any]
) -> None:
    event = sdk_event(kind, data)
    binary, structured = to_binary(event, JSONFormat()), to_structured(event, JSONFormat())
    binary_headers = list(binary.headers.items())
    assert is_binary(binary_headers)
    assert not is_binary(list(structured.headers.items()))
    as_binary = decode(binary.value, binary_headers)
    as_structured = decode(structured.value, list(structured.headers.items()))
    assert as_binary.rejections == [] and as_structured.rejections == []
    assert as_binary.events == as_structured.events
    assert len(as_binary.events) == 1


def with_header(name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    """HEADERS with `name` set to `value`, or removed when `value` is None."""
    kept = [(n, v) for n, v in HEADERS if n != name]
    return kept if value is None else [*kept, (name, value)]


@pytest.mark.parametrize(
    ("headers", "value", "expected"),
    [
        (with_header("ce_type", None), b"{}", (R.INVALID_ENVELOPE, "type: Field required")),
        (
            [*HEADERS, ("ce_id", b"e-2")],
            b'{"handled_by": "ai"}',
            (R.INVALID_ENVELOPE, "header 'ce_id' given twice"),
        ),
        (
            with_header("ce_source", b"/web/\xff"),
            b'{"handled_by": "ai"}',
            (R.INVALID_ENVELOPE, "header 'ce_source' is not UTF-8 text"),
        ),
        (
            with_header("content-type", b"text/plain"),
            b'{"handled_by": "ai"}',
            (R.INVALID_ENVELOPE, "content-type 'text/plain': binary mode carries JSON data"),
        ),
        (
            [*HEADERS, ("ce_data", b"{}")],
            b'{"handled_by": "ai"}',
            (R.INVALID_ENVELOPE, "header 'ce_data' is not an attribute"),
        ),
        (HEADERS, b"not json", (R.INVALID_JSON, "Expecting value at character 0")),
        (
            HEADERS,
            b'[{"handled_by": "ai"}]',
            (R.INVALID_DATA, "data: binary content mode carries one event's data, not an array"),
        ),
        (
            HEADERS,
            b'"ai"',
            (
                R.INVALID_ENVELOPE,
                "data: Input should be a valid dictionary or instance of StartedData",
            ),
        ),
        (
            HEADERS,
            b'{"handled_by": "robot"}',
            (R.INVALID_DATA, "data.handled_by: Input should be 'ai' or 'human'"),
        ),
        (HEADERS, None, (R.INVALID_JSON, "record has no value")),
        (
            [*HEADERS, ("ce_\ud800", b"x")],  # only a direct caller can give such a name
            b'{"handled_by": "ai"}',
            (R.INVALID_ENVELOPE, "header 'ce_\\ud800' has a name that is not UTF-8 text"),
        ),
        (
            with_header("ce_time", b"2026-03-01T11:59:00"),
            b'{"handled_by": "ai"}',
            (
                R.INVALID_ENVELOPE,
                "time: Value error, must be an RFC 3339 date-time with an offset, e.g. "
                "2026-03-01T12:00:00Z",
            ),
        ),
    ],
)
def test_every_malformed_binary_record_has_its_reason(
    headers: list[tuple[str, bytes]], value: bytes | None, expected: tuple[R, str]
) -> None:
    assert reasons(value, headers) == [expected]


def test_which_records_are_binary() -> None:
    """A cloudevents content-type wins over ce_ headers; without ce_specversion a record
    is read as structured (here: data alone, so no envelope)."""
    event = b'{"handled_by": "ai"}'
    structured_type = [*HEADERS, ("content-type", b"application/cloudevents+json")]
    assert not is_binary([h for h in structured_type if h != ("content-type", b"application/json")])
    assert reasons(event, with_header("ce_specversion", None)) == [
        (R.INVALID_ENVELOPE, "specversion: Field required")
    ]
    assert decode(event, HEADERS).events[0].handled_by is not None
    assert decode(event, with_header("content-type", b"application/json; charset=utf-8")).events
    assert decode(event, with_header("content-type", None)).events  # JSON when not said


def test_other_headers_are_not_attributes_and_a_type_from_the_future_is_ignored() -> None:
    traced = [*HEADERS, ("traceparent", b"00-abc-def-01"), ("ce_region", b"eu")]
    assert len(decode(b'{"handled_by": "ai"}', traced).events) == 1
    future = decode(b"{}", with_header("ce_type", b"support.something.new"))
    assert (future.events, future.rejections, future.ignored) == ([], [], 1)


def test_headers_count_in_the_record_size() -> None:
    value = b'{"handled_by": "ai", "pad": "' + b"x" * (MAX_RECORD_BYTES - 200) + b'"}'
    assert decode(value, HEADERS).events
    padded = [*HEADERS, ("x-padding", b"y" * 300)]
    [(reason, message)] = reasons(value, padded)
    assert reason is R.TOO_LARGE and "(key, value and headers)" in message


def test_a_binary_events_dead_letter_keeps_its_attributes() -> None:
    """Its payload is the data alone; the letter carries the ce_ headers and content-type
    (never other headers), or says how many bytes of them it left out."""
    letter = DeadLetter(
        "support.events.web",
        0,
        7,
        b"conv-1",
        R.INVALID_DATA,
        "bad",
        b"{}",
        origin_headers=tuple(HEADERS),
    )
    _, payload, headers = fit(letter, 1024 * 1024)
    assert payload == b"{}"
    assert [h for h in headers if not h[0].startswith("dlq.")] == HEADERS
    huge = DeadLetter(
        "support.events.web",
        0,
        7,
        None,
        R.INVALID_DATA,
        "bad",
        b"{}",
        origin_headers=(("ce_big", b"z" * 9000),),
    )
    _, _, headers = fit(huge, 1024 * 1024)
    assert (DeadLetterHeader.HEADERS_TRUNCATED.value, b"9006") in headers
    assert not any(name == "ce_big" for name, _ in headers)


def test_header_names_in_any_case_and_null_values() -> None:
    """Names are read in any case (the SDKs lowercase them); a null header is none."""
    shouting = [(name.upper(), value) for name, value in HEADERS]
    assert is_binary(shouting) and decode(b'{"handled_by": "ai"}', shouting).events
    mixed = [*HEADERS, ("Content-Type", b"Application/CloudEvents+json")]
    assert not is_binary([h for h in mixed if h[0] != "content-type"])
    nulls: list[tuple[str, bytes | None]] = [*with_header("content-type", None), ("x", None)]
    assert decode(b'{"handled_by": "ai"}', nulls).events  # type: ignore[arg-type]
    [(reason, message)] = reasons(b"{}", [*with_header("ce_id", None), ("ce_id", None)])  # type: ignore[list-item]
    assert (reason, message) == (R.INVALID_ENVELOPE, "id: Field required")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("ce_data_base64", b"e30="), "header 'ce_data_base64' is not an attribute"),
        (("content-type", b"application/json"), "header 'content-type' given twice"),
        (
            ("ce_datacontenttype", b"text/plain"),
            "content-type 'text/plain': binary mode carries JSON data",
        ),
    ],
)
def test_headers_that_contradict_the_record(extra: tuple[str, bytes], message: str) -> None:
    assert reasons(b'{"handled_by": "ai"}', [*HEADERS, extra]) == [(R.INVALID_ENVELOPE, message)]


def test_json_is_utf_8_and_a_media_type_has_two_parts() -> None:
    latin = with_header("content-type", b"application/json; charset=latin-1")
    assert reasons(b'{"handled_by": "ai"}', latin) == [
        (R.INVALID_ENVELOPE, "content-type 'application/json; charset=latin-1': JSON data is UTF-8")
    ]
    bare = with_header("content-type", b"+json")
    assert reasons(b'{"handled_by": "ai"}', bare)[0][0] is R.INVALID_ENVELOPE
    assert decode(
        b'{"handled_by": "ai"}', with_header("content-type", b"application/vnd.acme+json")
    ).events


def test_header_names_count_as_utf_8_in_the_record_size() -> None:
    name = "x-" + "é" * 100  # 202 bytes, 102 characters
    value = b'{"handled_by": "ai", "pad": "' + b"x" * 10 + b'"}'
    budget = MAX_RECORD_BYTES - len(value) - sum(len(n) + len(v) for n, v in HEADERS)
    exact = [*HEADERS, (name, b"y" * (budget - 202))]
    assert decode(value, exact).events
    over = [*HEADERS, (name, b"y" * (budget - 201))]
    assert reasons(value, over)[0][0] is R.TOO_LARGE


def test_a_letter_fits_even_a_tiny_limit_and_keeps_what_identifies_the_event() -> None:
    """Over 8 KiB of origin headers, the identifying ones stay (an extension goes); under a
    limit the headers alone pass, the letter becomes headers only, sizes said."""
    big = DeadLetter(
        "support.events.web",
        0,
        7,
        None,
        R.INVALID_DATA,
        "bad",
        b"{}",
        origin_headers=(*HEADERS, ("ce_region", b"z" * 9000)),
    )
    _, _, headers = fit(big, 1024 * 1024)
    names = [name for name, _ in headers]
    assert [n for n in names if not n.startswith("dlq.")] == [n for n, _ in HEADERS]
    assert (DeadLetterHeader.HEADERS_TRUNCATED.value, b"9009") in headers
    tiny = DeadLetter(
        "support.events.web",
        0,
        7,
        b"k" * 900,
        R.INVALID_DATA,
        "é" * 5000,
        b"x" * 5000,
        origin_headers=(("ce_region", b"z" * 4000),),
    )
    key, payload, headers = fit(tiny, 2048)
    assert (key, payload) == (None, b"")
    assert record_size(key, payload, headers) <= 2048 - SIZE_MARGIN_BYTES
    assert dict(headers)[DeadLetterHeader.HEADERS_TRUNCATED.value] == b"4009"

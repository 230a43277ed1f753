"""Decoding records (CONTRACT.md §1-§3): every rejection has its reason; nothing raises."""

import datetime as dt
import json
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from roi_metrics.domain.events import Actor, CostCategory, EventType, SupportEvent
from roi_metrics.ingest.contract import DeadLetterReason as R
from roi_metrics.ingest.decode import MAX_RECORD_BYTES, Decoder

NOW = int(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000
DECODER = Decoder("USD")


def ce(type_: str = "support.conversation.started", **over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/web/acme",
        "type": type_,
        "time": "2026-03-01T11:59:00Z",
        "subject": "conv-1",
        "data": {"handled_by": "ai"},
    }
    event.update(over)
    return event


def decode(value: Any, channel: str = "web") -> Any:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return DECODER.decode_record(raw, channel, NOW)


def reasons(value: Any) -> list[tuple[R, str]]:
    return [(r.reason, r.message) for r in decode(value).rejections]


def test_an_event_from_the_cloudevents_sdk_decodes() -> None:
    sdk_event = CloudEvent(
        attributes={
            "id": "42",
            "source": "/whatsapp/acme-eu",
            "type": "support.cost.recorded",
            "time": dt.datetime(2026, 3, 1, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "subject": "conv-7",
            "datacontenttype": "application/json",
        },
        data={"amount": "0.042", "currency": "USD", "category": "ai_usage"},
    )
    message = to_structured(sdk_event, JSONFormat())
    result = DECODER.decode_record(message.value, "whatsapp", NOW)
    assert result.rejections == []
    assert result.events == [
        SupportEvent(
            source="/whatsapp/acme-eu",
            event_id="42",
            channel="whatsapp",
            conversation_id="conv-7",
            type=EventType.COST,
            time_micros=NOW - 30 * 60 * 1_000_000,  # 13:30+02:00 is 11:30Z
            amount_micros=42_000,
            cost_category=CostCategory.AI_USAGE,
        )
    ]


def test_a_batch_counts_each_event_on_its_own() -> None:
    batch = [
        ce(id="1"),
        ce(id="2", specversion="0.3"),
        ce("support.conversation.transferred", id="3"),
        ce("support.csat.recorded", id="4", data={"score": 9}),
        ce("support.conversation.resolved", id="5", data={"resolved_by": "human"}),
    ]
    result = decode(batch)
    assert [(e.event_id, e.type) for e in result.events] == [
        ("1", EventType.STARTED),
        ("5", EventType.RESOLVED),
    ]
    assert result.events[1].resolved_by is Actor.HUMAN
    assert result.ignored == 1
    assert [(r.reason, json.loads(r.payload)["id"]) for r in result.rejections] == [
        (R.INVALID_ENVELOPE, "2"),
        (R.INVALID_DATA, "4"),
    ]


def test_a_single_rejected_event_is_dead_lettered_as_sent() -> None:
    raw = b'{"specversion": "1.0"}'
    assert decode(raw).rejections[0].payload == raw


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (b"{not json", (R.INVALID_JSON, "Expecting property name")),
        (b"\xff\xfe", (R.INVALID_JSON, "")),
        (ce(time="2026-03-01T11:59:00"), (R.INVALID_ENVELOPE, "time: Value error, must be")),
        (ce(time=1772366340), (R.INVALID_ENVELOPE, "time: Value error, must be an RFC 3339")),
        (ce(id=17), (R.INVALID_ENVELOPE, "id: Input should be a valid string")),
        (ce(id=""), (R.INVALID_ENVELOPE, "id: String should have at least 1 character")),
        (ce(source="/has space"), (R.INVALID_ENVELOPE, "source: String should match pattern")),
        (ce(subject="x" * 129), (R.INVALID_ENVELOPE, "subject: String should have at most")),
        (
            {k: v for k, v in ce().items() if k != "data"},
            (R.INVALID_ENVELOPE, "data: Field required"),
        ),
        ([1], (R.INVALID_ENVELOPE, "an event must be a JSON object")),
        ("a string", (R.INVALID_ENVELOPE, "an event must be a JSON object")),
        (ce(data={"handled_by": "bot"}), (R.INVALID_DATA, "data.handled_by: Input should be 'ai'")),
        (ce(data={}), (R.INVALID_DATA, "data.handled_by: Field required")),
        (
            ce("support.csat.recorded", data={"score": "4"}),
            (R.INVALID_DATA, "data.score: Input should be a valid integer"),
        ),
        (
            ce("support.csat.recorded", data={"score": 4.5}),
            (R.INVALID_DATA, "data.score: Value error, must be an integer"),
        ),
        (
            ce(
                "support.cost.recorded",
                data={"amount": True, "currency": "USD", "category": "other"},
            ),
            (R.INVALID_DATA, "data.amount"),
        ),
        (
            ce(
                "support.cost.recorded",
                data={"amount": "-1", "currency": "USD", "category": "other"},
            ),
            (R.INVALID_DATA, "data.amount: Value error, amount must not be negative, got '-1'"),
        ),
        (
            ce("support.conversation.escalated", data={"reason": "x" * 65}),
            (R.INVALID_DATA, "data.reason: String should have at most 64 characters"),
        ),
        (
            ce(data={"handled_by": "ai", "channel": "slack"}),
            (R.CHANNEL_MISMATCH, "data.channel is 'slack' but the topic's channel is 'web'"),
        ),
        (
            ce("support.revenue.attributed", data={"amount": 10, "currency": "EUR"}),
            (R.CURRENCY_MISMATCH, "data.currency is 'EUR'; this deployment counts in 'USD'"),
        ),
        (ce(time="2026-03-01T12:05:00.000001Z"), (R.FUTURE_TIME, "more than 5 minutes ahead")),
        ([ce()] * 1001, (R.TOO_LARGE, "a batch holds more than 1000 events")),
    ],
)
def test_every_rejection_has_its_reason(record: Any, expected: tuple[R, str]) -> None:
    [(reason, message)] = reasons(record)
    assert reason is expected[0]
    assert expected[1] in message


def test_a_record_over_1_mib_is_too_large_whole() -> None:
    record = json.dumps(ce(padding="x" * MAX_RECORD_BYTES)).encode()
    [(reason, message)] = reasons(record)
    assert reason is R.TOO_LARGE
    assert message == (
        f"record is {len(record)} bytes (key, value and headers), more than {MAX_RECORD_BYTES}"
    )


def test_a_tombstone_is_invalid_json() -> None:
    result = DECODER.decode_record(None, "web", NOW)
    assert [(r.reason, r.payload) for r in result.rejections] == [(R.INVALID_JSON, b"")]


def test_times_keep_microseconds_and_offsets() -> None:
    [event] = decode(ce(time="2026-03-01T13:58:59.1234569+02:00")).events
    assert event.time_micros == NOW - 61 * 1_000_000 + 123_456  # truncated, never rounded up


def test_json_numbers_are_read_as_decimals_not_floats() -> None:
    data = {"amount": "AMOUNT", "currency": "USD", "category": "ai_usage"}
    record = json.dumps(ce("support.cost.recorded", data=data))
    # a float reads 1.00000000000000001 as 1.0; as a decimal it has 17 places: refused
    too_precise = record.replace('"AMOUNT"', "1.00000000000000001").encode()
    [(reason, message)] = [(r.reason, r.message) for r in decode(too_precise).rejections]
    assert (reason, "more than 6 decimal places" in message) == (R.INVALID_DATA, True)
    [event] = decode(record.replace('"AMOUNT"', "987654321.987654").encode()).events
    assert event.amount_micros == 987_654_321_987_654


def test_unknown_attributes_and_data_fields_are_ignored() -> None:
    [event] = decode(ce(traceparent="00-abc", data={"handled_by": "human", "locale": "fr"})).events
    assert event.handled_by is Actor.HUMAN


STARTED = json.dumps(ce())


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (b"1e9999999999999999999", (R.INVALID_ENVELOPE, "an event must be a JSON object")),
        (b"[" * 990 + b"]" * 990, (R.INVALID_JSON, "nested too deeply")),
        (b"[" * 100_000, (R.INVALID_JSON, "nested too deeply")),
        (STARTED.replace('"e-1"', "NaN").encode(), (R.INVALID_JSON, "NaN is not a JSON value")),
        (STARTED.replace('"e-1"', "-Infinity").encode(), (R.INVALID_JSON, "-Infinity is not")),
        (
            STARTED.replace('"id": "e-1"', '"id": "e-1", "id": "e-2"').encode(),
            (R.INVALID_JSON, "duplicate member name 'id'"),
        ),
        (STARTED.encode("utf-16"), (R.INVALID_JSON, "not UTF-8")),
        (STARTED.encode("utf-32"), (R.INVALID_JSON, "not UTF-8")),
        (b"\xef\xbb\xbf" + STARTED.encode(), (R.INVALID_JSON, "byte order mark")),
        (
            STARTED.replace('"conv-1"', '"conv-\\ud800"').encode(),
            (R.INVALID_JSON, "lone surrogate"),
        ),
        (
            STARTED.replace("2026-03-01", "\u0662026-03-01").encode(),
            (R.INVALID_ENVELOPE, "time: Value error, must be an RFC 3339"),
        ),
        (
            STARTED.replace('11:59:00Z"', '11:59:00Z\\n"').encode(),
            (R.INVALID_ENVELOPE, "time: Value error, must be an RFC 3339"),
        ),
        (
            STARTED.replace('"/web/acme"', '"/web/acme\\n"').encode(),
            (R.INVALID_ENVELOPE, "source: String should match pattern"),
        ),
        (STARTED.encode() + b" x", (R.INVALID_JSON, "Extra data")),
        (b"[" + STARTED.encode() + b" " + STARTED.encode() + b"]", (R.INVALID_JSON, "Expecting")),
    ],
)
def test_strict_json_refusals(record: bytes, expected: tuple[R, str]) -> None:
    [(reason, message)] = reasons(record)
    assert reason is expected[0]
    assert expected[1] in message


def amount_of(number: str) -> Any:
    data = '{"amount": NUMBER, "currency": "USD", "category": "other"}'.replace("NUMBER", number)
    record = json.dumps(ce("support.cost.recorded", data={})).replace("{}", data).encode()
    result = decode(record)
    return result.events[0].amount_micros if result.events else result.rejections[0].message


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ('"12.50"', 12_500_000),
        ("12.50", 12_500_000),
        ("-0", 0),
        ("0e-99999999999", 0),
        ("1.5e2", 150_000_000),
        ("1E-6", 1),
        ("0.1", 100_000),
        ('"-0"', 'must be written like "12.50"'),
        ('"1e3"', 'must be written like "12.50"'),
        ('"012.5"', 'must be written like "12.50"'),
        ('"\u0661"', 'must be written like "12.50"'),
        ('"1.000000000"', 'must be written like "12.50"'),
        ("1e-7", "more than 6 decimal places"),
        ("1e-9999999999999999999", "more than 6 decimal places"),
        ("1e9999999999999999999", "must be at most 1000000000"),
        ("1" + "0" * 30 + ".5", "must be at most 1000000000"),  # never rounded to 28 digits
        ("0." + "0" * 40 + "1", "more than 6 decimal places"),  # never read as 0
        ("1000000000.000001", "must be at most 1000000000"),
        ("-0.5", "must not be negative"),
        ("true", "amount must be a decimal number or string, got boolean"),
    ],
)
def test_amounts_are_exact_or_refused(number: str, expected: int | str) -> None:
    result = amount_of(number)
    if isinstance(expected, int):
        assert result == expected
    else:
        assert expected in result


@pytest.mark.parametrize(
    ("time", "micros_after_now"),
    [
        ("2026-03-01T11:59:60Z", -1),  # a leap second: the last microsecond of 11:59
        ("2026-03-01T11:59:59.9999999999999Z", -1),  # 13 fraction digits, cut
        ("2026-03-01t11:59:59.999999z", -1),
    ],
)
def test_leap_seconds_and_long_fractions(time: str, micros_after_now: int) -> None:
    [event] = decode(ce(time=time)).events
    assert event.time_micros == NOW + micros_after_now


def test_a_batch_event_is_dead_lettered_as_the_bytes_sent() -> None:
    bad = '{ "specversion" : "0.3",  "id" : "\\u00e9" }'
    record = ("[ " + STARTED + " ,\n" + bad + "]").encode()
    result = decode(record)
    assert [r.payload for r in result.rejections] == [bad.encode()]
    assert DECODER.event_payloads([(record, result, 0), (record, result, 0)]) == [
        STARTED.encode(),
        STARTED.encode(),
    ]


def test_a_bug_while_decoding_dead_letters_the_event_as_unprocessable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> Any:
        raise KeyError("a bug")

    record = ("[" + STARTED + "," + json.dumps(ce(id="e-2")) + "]").encode()
    monkeypatch.setattr("roi_metrics.ingest.decode._domain_event", broken)
    monkeypatch.setattr("roi_metrics.ingest.decode.fast_event", broken)  # both paths
    result = decode(record)
    assert result.events == []
    assert [(r.reason, r.message) for r in result.rejections] == [
        (R.UNPROCESSABLE, "KeyError: 'a bug'"),
        (R.UNPROCESSABLE, "KeyError: 'a bug'"),
    ]
    monkeypatch.setattr("roi_metrics.ingest.jsonstrict.parse", broken)
    [rejection] = decode(record).rejections
    assert (rejection.reason, rejection.payload) == (R.UNPROCESSABLE, record)


def test_the_key_counts_in_the_record_size() -> None:
    value = json.dumps(ce()).encode()
    fits = DECODER.decode_record(value, "web", NOW, MAX_RECORD_BYTES - len(value))
    assert len(fits.events) == 1
    [rejection] = DECODER.decode_record(
        value, "web", NOW, MAX_RECORD_BYTES - len(value) + 1
    ).rejections
    assert rejection.reason is R.TOO_LARGE

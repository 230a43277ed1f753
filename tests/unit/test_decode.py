"""Decoding records (CONTRACT.md §1-§3): every rejection has its reason; nothing raises."""

import datetime as dt
import json
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from service.contract import DeadLetterReason as R
from service.decode import MAX_RECORD_BYTES, Decoder
from service.domain.events import Actor, CostCategory, EventType, SupportEvent

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
            ce("support.csat.recorded", data={"score": 4.0}),
            (R.INVALID_DATA, "data.score: Input should be a valid integer"),
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
            (R.INVALID_DATA, "data.amount: Value error, amount must not be negative"),
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
        ([ce()] * 1001, (R.TOO_LARGE, "batch holds 1001 events, more than 1000")),
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
    assert message == f"record is {len(record)} bytes, more than {MAX_RECORD_BYTES}"


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

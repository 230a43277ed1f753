"""The fast path (ingest/fastpath.py) and the pydantic path give the same result for every
record: the same events, the same rejections with the same messages and bytes, the same
ignored count. The fast path only ever takes events the pydantic path accepts, and it takes
the realistic ones (else it would be dead weight, and this test would not notice)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from roi_metrics.ingest import jsonstrict
from roi_metrics.ingest.decode import Decoder
from roi_metrics.ingest.fastpath import fast_event

from tests.integration.traffic import Generator
from tests.unit.eventgen import CHANNEL, dumps, events, records

FAST, MODELS = Decoder("USD"), Decoder("USD", fast=False)
LATE = 253_402_300_799 * 1_000_000  # 9999-12-31T23:59:59Z: no generated time is ahead
NOW = 1_780_000_000 * 1_000_000  # 2026-05-28: many generated times are ahead of it
clocks = st.sampled_from([LATE, NOW])
channels = st.sampled_from([CHANNEL, "email"])  # "email": data.channel "web" differs


def same(value: bytes, channel: str, now: int) -> None:
    fast = FAST.decode_record(value, channel, now)
    judged = MODELS.decode_record(value, channel, now)
    assert fast == judged, value


@settings(max_examples=700, deadline=None)
@given(events(), channels, clocks)
def test_every_event_decodes_the_same_on_both_paths(
    event: dict[str, Any], channel: str, now: int
) -> None:
    same(dumps(event).encode(), channel, now)


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=6), channels, clocks)
def test_batches_decode_the_same_on_both_paths(
    batch: list[dict[str, Any]], channel: str, now: int
) -> None:
    same(dumps(batch).encode(), channel, now)


@settings(max_examples=300, deadline=None)
@given(st.one_of(records(), st.binary(max_size=200)), channels, clocks)
def test_mutated_records_decode_the_same_on_both_paths(
    value: bytes, channel: str, now: int
) -> None:
    same(value, channel, now)


@settings(max_examples=300, deadline=None)
@given(events(), st.sampled_from(["USD", "EUR"]), clocks)
def test_the_fast_path_takes_only_what_the_models_accept(
    event: dict[str, Any], currency: str, now: int
) -> None:
    [item] = jsonstrict.parse(dumps(event).encode(), 1).values
    taken = fast_event(item, CHANNEL, currency, now)
    if taken is not None:
        assert Decoder(currency, fast=False).decode_record(
            dumps(event).encode(), CHANNEL, now
        ).events == [taken]


def test_realistic_events_all_take_the_fast_path() -> None:
    now = 1_780_000_000
    traffic = Generator(seed=7, now=now, channels=["web", "email"]).traffic(300)
    valid = [labelled for labelled in traffic.events if labelled.valid]
    assert len(valid) > 1000  # every event type, amounts as strings and numbers, scores
    kinds = {labelled.body["type"] for labelled in valid}
    assert len(kinds) == 7, kinds
    for labelled in valid:
        [item] = jsonstrict.parse(json.dumps(labelled.body).encode(), 1).values
        taken = fast_event(item, labelled.channel, "USD", (now + 60) * 1_000_000)
        assert taken is not None, labelled.body
        expected = MODELS.decode_record(
            json.dumps(labelled.body).encode(), labelled.channel, (now + 60) * 1_000_000
        )
        assert expected.events == [taken]


def base(kind: str = "conversation.escalated", **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/web/acme",
        "type": f"support.{kind}",
        "time": "2026-03-01T12:00:00Z",
        "subject": "c-1",
        "data": data,
    }


EDGES = [
    *({**base(), name: "x" * length} for name in ("id", "subject") for length in (128, 129)),
    *({**base(), "source": "/" * length} for length in (256, 257)),
    *(base(reason="x" * length) for length in (64, 65)),
    *(base(reason=value) for value in (None, 5, "")),
    *({**base(), "time": value} for value in ("2026-03-01T12:00:00+00:00", "2026-02-29T12:00:00Z")),
    *({**base(), "specversion": value} for value in ("1.0", "1.00", 1.0, None)),
    *(base("csat.recorded", score=json.loads(text)) for text in ("1", "5", "0", "6", "true")),
    *(base("conversation.resolved", resolved_by="ai", confirmation=v) for v in ("confirmed", None)),
    *(base("conversation.started", handled_by=value) for value in ("ai", "AI", ["ai"], {"a": 1})),
    *(
        base("cost.recorded", amount=amount, currency=currency, category=category)
        for amount in ("0", "1000000000", "1000000000.000001", "1.1234567", "-1", 7)
        for currency in ("USD", "EUR", "usd")
        for category in ("other", "tokens")
    ),
    *(base("revenue.attributed", amount="2.5", currency=c) for c in ("USD", "USD\n", None)),
    *(base(channel=value) for value in ("web", "email", None, 1, ["web"])),
]


def test_the_edges_of_every_check_decode_the_same_on_both_paths() -> None:
    for event in EDGES:
        same(json.dumps(event).encode(), CHANNEL, NOW)
    # written as JSON text, where Python's json cannot: 4.0 and 5E0 are integers, 1e0 an amount
    for text in ('"score":4.0', '"score":5E0', '"score":4.5', '"score":"4"', '"score":4'):
        record = json.dumps(base("csat.recorded")).replace('"data": {}', '"data": {' + text + "}")
        assert text in record
        same(record.encode(), CHANNEL, NOW)


def test_binary_records_decode_the_same_on_both_paths() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e1"),
        ("ce_source", b"/s"),
        ("ce_type", b"support.conversation.reopened"),
        ("ce_time", b"2026-03-01T12:00:00Z"),
        ("ce_subject", b"c"),
    ]
    for extra in ([], [("ce_\ud800", b"x")], [("ce_customer", b"k-1")]):
        for value in (b"{}", b'{"channel": null}', b'{"channel": "email"}'):
            fast = FAST.decode_record(value, CHANNEL, NOW, headers=[*headers, *extra])
            judged = MODELS.decode_record(value, CHANNEL, NOW, headers=[*headers, *extra])
            assert fast == judged, (extra, value)

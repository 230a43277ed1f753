"""The decoder and the published JSON Schemas agree (CONTRACT.md §2 v2), and the decoder
never raises, whatever the bytes.

The schemas are checked by an independent validator: the `jsonschema` library, with
ECMA-262 patterns (regress, as JSON Schema specifies) and numbers read exactly (a JSON
number is a decimal, so `0.1` is a multiple of `0.000001` and `4.0` is an integer). Events
are generated and mutated by hypothesis; each is judged by both, and the verdicts must match.
"""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators
from roi_metrics.domain.events import EventType
from roi_metrics.ingest.contract import DeadLetterReason as R
from roi_metrics.ingest.decode import Decoder

from tests.unit.eventgen import CHANNEL, dumps, events, records

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NOW = 253_402_300_799 * 1_000_000  # 9999-12-31T23:59:59Z: no generated time is in the future
DECODER = Decoder("USD")
SEMANTIC = {R.CHANNEL_MISMATCH, R.CURRENCY_MISMATCH, R.FUTURE_TIME}
"""Reasons beyond what a schema can say; the generators avoid them."""


def _is_number(_: Any, instance: Any) -> bool:
    return isinstance(instance, int | Decimal) and not isinstance(instance, bool)


def _is_integer(_: Any, instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    return isinstance(instance, Decimal) and instance == instance.to_integral_value()


ExactValidator = validators.extend(
    Draft202012Validator,
    validators={"pattern": RegexImplementation(RegexVariantName.default).pattern_keyword},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _is_number, "integer": _is_integer}
    ),
)
VALIDATORS = {
    event_type.value: ExactValidator(
        json.loads((SCHEMAS / f"{event_type.value}.json").read_text(), parse_float=Decimal)
    )
    for event_type in EventType
}


def schema_accepts(text: str) -> bool:
    document = json.loads(text, parse_float=Decimal)
    with decimal.localcontext(decimal.Context(prec=400)):
        return VALIDATORS[document["type"]].is_valid(document)


def decoder_accepts(text: str) -> bool:
    result = DECODER.decode_record(text.encode(), CHANNEL, NOW)
    assert not {rejection.reason for rejection in result.rejections} & SEMANTIC, result
    assert all(r.reason is not R.UNPROCESSABLE for r in result.rejections), result
    return len(result.events) == 1


@settings(max_examples=600, deadline=None)
@given(events())
def test_the_decoder_and_the_schemas_agree_on_every_event(event: dict[str, Any]) -> None:
    text = dumps(event)
    assert decoder_accepts(text) == schema_accepts(text), text


@settings(max_examples=600, deadline=None)
@given(st.lists(events(), min_size=1, max_size=5))
def test_in_a_batch_each_event_is_judged_alone_and_keeps_its_bytes(batch: list[Any]) -> None:
    texts = [dumps(event) for event in batch]
    record = ("[" + " , ".join(texts) + "]").encode()
    result = DECODER.decode_record(record, CHANNEL, NOW)
    accepted = [schema_accepts(text) for text in texts]
    assert len(result.events) == sum(accepted)
    assert [r.payload.decode() for r in result.rejections] == [
        text for text, ok in zip(texts, accepted, strict=True) if not ok
    ]


ALLOWED = {
    R.INVALID_JSON,
    R.INVALID_ENVELOPE,
    R.INVALID_DATA,
    R.TOO_LARGE,
    R.CHANNEL_MISMATCH,
    R.CURRENCY_MISMATCH,
    R.FUTURE_TIME,
}


@settings(max_examples=1500, deadline=None)
@given(st.one_of(records(), st.binary(max_size=300)))
def test_no_bytes_make_the_decoder_raise_or_give_up(value: bytes) -> None:
    result = DECODER.decode_record(value, CHANNEL, NOW)
    assert {rejection.reason for rejection in result.rejections} <= ALLOWED
    assert all(len(rejection.payload) <= len(value) for rejection in result.rejections)
    for rejection in result.rejections:
        assert rejection.payload in value  # the bytes that were sent, never re-encoded

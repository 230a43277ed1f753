"""The fast path for valid events: plain checks on the parsed JSON instead of the pydantic
models, taken only when an event is certainly valid.

`fast_event` returns the domain event when every check the contract models make (CONTRACT.md
§2, ingest/contract.py) passes in its simplest form, and None otherwise: anything unusual
(a missing field, a wrong type, an integer written `4.0`, a channel or currency that differs,
a time ahead of the clock) goes to the pydantic path, which stays the only judge of
rejections and of every message a dead letter carries. A differential property test
(tests/unit/test_fastpath.py) holds the two paths to the same events on generated and
mutated input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from roi_metrics.domain.aggregate import is_future
from roi_metrics.domain.events import Actor, Confirmation, CostCategory, EventType, SupportEvent
from roi_metrics.ingest.contract import (
    CURRENCY_PATTERN,
    URI_REFERENCE_PATTERN,
    amount_micros,
    rfc3339_micros,
)
from roi_metrics.ingest.jsonstrict import JsonNumber

T = TypeVar("T")
_SOURCE: Final = re.compile(URI_REFERENCE_PATTERN)
_CURRENCY: Final = re.compile(CURRENCY_PATTERN)
_TYPES: Final = {member.value: member for member in EventType}
_ACTORS: Final = {member.value: member for member in Actor}
_CONFIRMATIONS: Final = {member.value: member for member in Confirmation}
_CATEGORIES: Final = {member.value: member for member in CostCategory}
_SCORES: Final = {str(score): score for score in range(1, 6)}
_VERSION: Final = {"1.0": "1.0"}

Data = dict[str, Any]
Fields = tuple[Actor | None, Actor | None, Confirmation, int | None, int, CostCategory | None]
"""What an event's data adds to it: handled_by, resolved_by, confirmation, score, amount in
micro-units, cost category (SupportEvent's fields after the envelope's)."""
NOTHING: Final[Fields] = (None, None, Confirmation.ASSUMED, None, 0, None)


def _choice(choices: dict[str, T], value: object) -> T | None:
    """The choice `value` names; None for any other value, unhashable ones included."""
    return choices.get(value) if type(value) is str else None


def _text(value: object, longest: int) -> bool:
    return type(value) is str and 0 < len(value) <= longest


def _started(data: Data, currency: str) -> Fields | None:
    actor = _choice(_ACTORS, data.get("handled_by"))
    return None if actor is None else (actor, *NOTHING[1:])


def _resolved(data: Data, currency: str) -> Fields | None:
    actor = _choice(_ACTORS, data.get("resolved_by"))
    confirmation = _choice(_CONFIRMATIONS, data.get("confirmation", "assumed"))
    if actor is None or confirmation is None:
        return None
    return (None, actor, confirmation, None, 0, None)


def _escalated(data: Data, currency: str) -> Fields | None:
    reason = data.get("reason")
    fine = reason is None or (type(reason) is str and len(reason) <= 64)
    return NOTHING if fine else None


def _reopened(data: Data, currency: str) -> Fields | None:
    return NOTHING


def _csat(data: Data, currency: str) -> Fields | None:
    written = data.get("score")
    score = _SCORES.get(written.text) if type(written) is JsonNumber else None
    return None if score is None else (None, None, Confirmation.ASSUMED, score, 0, None)


def _amount(data: Data, currency: str) -> int | None:
    """The amount of a cost or revenue in the deployment's currency, in micro-units."""
    code, written = data.get("currency"), data.get("amount")
    if type(code) is not str or code != currency or _CURRENCY.fullmatch(code) is None:
        return None
    if type(written) is not str and type(written) is not JsonNumber:
        return None
    try:
        return amount_micros(written)
    except Exception:  # the pydantic path says what is wrong
        return None


def _cost(data: Data, currency: str) -> Fields | None:
    amount = _amount(data, currency)
    category = _choice(_CATEGORIES, data.get("category"))
    if amount is None or category is None:
        return None
    return (None, None, Confirmation.ASSUMED, None, amount, category)


def _revenue(data: Data, currency: str) -> Fields | None:
    amount = _amount(data, currency)
    return None if amount is None else (None, None, Confirmation.ASSUMED, None, amount, None)


_READERS: Final[dict[EventType, Callable[[Data, str], Fields | None]]] = {
    EventType.STARTED: _started,
    EventType.ESCALATED: _escalated,
    EventType.RESOLVED: _resolved,
    EventType.REOPENED: _reopened,
    EventType.CSAT: _csat,
    EventType.COST: _cost,
    EventType.REVENUE: _revenue,
}


def _time(item: dict[str, Any], now_micros: int) -> int | None:
    """The envelope's time in Unix microseconds when its attributes are all valid and it is
    not ahead of the clock."""
    stamp, source = item.get("time"), item.get("source")
    if (
        _choice(_VERSION, item.get("specversion")) is None
        or not _text(item.get("id"), 128)
        or not _text(item.get("subject"), 128)
        or ("customer" in item and not _text(item["customer"], 128))
        or not _text(source, 256)
        or _SOURCE.fullmatch(source) is None  # type: ignore[arg-type]
        or type(stamp) is not str
    ):
        return None
    try:
        time_micros = rfc3339_micros(stamp)
    except Exception:
        return None
    return None if is_future(time_micros, now_micros) else time_micros


def fast_event(
    item: dict[str, Any], channel: str, currency: str, now_micros: int
) -> SupportEvent | None:
    """The event `item` is, when it is certainly valid for `channel` and `currency` at
    `now_micros`; None when the pydantic path must judge it."""
    kind = _choice(_TYPES, item.get("type"))
    data = item.get("data")
    if kind is None or type(data) is not dict:
        return None
    named = data.get("channel")
    if named is not None and named != channel:  # another channel, or not a string
        return None
    time_micros = _time(item, now_micros)
    if time_micros is None:
        return None
    fields = _READERS[kind](data, currency)
    if fields is None:
        return None
    return SupportEvent(
        item["source"],
        item["id"],
        channel,
        item["subject"],
        kind,
        time_micros,
        *fields,
        item.get("customer"),
    )

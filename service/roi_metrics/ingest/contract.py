"""The event contract (CONTRACT.md §2-§3) as pydantic models: the CloudEvents 1.0 envelope
and the `data` of every event type. schemas/ is generated from these models.

Validation is strict: a string where a number is required (or the reverse) is invalid, except
for amounts, which may be decimal strings or JSON numbers. Unknown attributes and data fields
are accepted and ignored (forward compatibility).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)

from roi_metrics.domain.events import EventType
from roi_metrics.domain.money import (
    AMOUNT_PATTERN,
    DECIMAL_PLACES,
    MAX_AMOUNT_UNITS,
    MICROS_PER_UNIT,
    AmountError,
    micros_of_decimal,
    parse_amount_micros,
)
from roi_metrics.ingest.jsonstrict import JsonError, JsonNumber, exact_decimal

_DATE: Final = (
    r"(?:(?!0000)[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][48]|[13579][26]|[2468]0)00)-02-29)"
)
"""A calendar date from 0001-01-01 to 9999-12-31 (leap years included) as YYYY-MM-DD."""
TIME_PATTERN: Final = (
    "^"
    + _DATE
    + r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    + r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339 date-time with an offset, ASCII only, anchored: a real calendar date, a leap
second (:60) allowed, any number of fraction digits. The published schemas carry it."""
URI_REFERENCE_PATTERN: Final = r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
CURRENCY_DESCRIPTION: Final = "ISO 4217; must be the configured one"
_TIME: Final = re.compile(TIME_PATTERN)


class DeadLetterReason(StrEnum):
    """Why a record or event went to the dead-letter topic (CONTRACT.md §3)."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_DATA = "invalid_data"
    CHANNEL_MISMATCH = "channel_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    FUTURE_TIME = "future_time"
    TOO_LARGE = "too_large"
    CHANNEL_LIMIT = "channel_limit"
    """The channel is not known and `max_channels` are (CONTRACT.md §1 v2)."""
    OVERFLOW = "overflow"
    """The event would take a 64-bit sum past its limit; it changed nothing."""
    UNPROCESSABLE = "unprocessable"
    """Anything else unexpected about one record or event, a bug included; the error
    header names the exception's class."""


class DeadLetterHeader(StrEnum):
    """Headers of every record on the dead-letter topic."""

    ORIGIN_TOPIC = "dlq.origin.topic"
    ORIGIN_PARTITION = "dlq.origin.partition"
    ORIGIN_OFFSET = "dlq.origin.offset"
    REASON = "dlq.reason"
    ERROR = "dlq.error"
    """The error message, truncated to 1 KiB."""
    TRUNCATED = "dlq.truncated"
    """Present only when the payload was cut: the original payload's size in bytes."""
    KEY_TRUNCATED = "dlq.key.truncated"
    """Present only when the key was cut: the original key's size in bytes."""
    ORIGIN_EVENT = "dlq.origin.event"
    """Present only for an event of a batch: its position in the batch, from 0 (with the
    origin offset, what makes a dead letter unique)."""
    HEADERS_TRUNCATED = "dlq.headers.truncated"
    """Present only when the origin's `ce_` headers were left out (over 8 KiB): their size."""


EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND: Final = dt.timedelta(microseconds=1)
MIN_TIME_MICROS: Final = (dt.datetime.min.replace(tzinfo=dt.UTC) - EPOCH) // MICROSECOND
MAX_TIME_MICROS: Final = (dt.datetime.max.replace(tzinfo=dt.UTC) - EPOCH) // MICROSECOND
"""The times a datetime can show (and `report --json` write): 0001-01-01T00:00:00Z to
9999-12-31T23:59:59.999999Z."""
TIME_RANGE: Final = "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"


def rfc3339_micros(value: object) -> int:
    """An RFC 3339 date-time with an offset (TIME_PATTERN), as Unix microseconds.

    >>> rfc3339_micros("1970-01-01T01:00:00.5+01:00")
    500000

    Fraction digits beyond the microsecond are cut, never rounded up. A leap second
    (`23:59:60`) is read as the last microsecond of its minute (`23:59:59.999999`): Unix
    time has no leap seconds, and the event stays in the minute, hour and day it names.
    ValueError for anything else. The calendar's ends hold with any offset, so a time may
    fall just outside MIN_TIME_MICROS..MAX_TIME_MICROS once in UTC (`9999-12-31T23:59:59-01:00`).
    """
    if not isinstance(value, str) or _TIME.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T12:00:00Z")
    if value[17:19] == "60":
        zone = value[-1] if value[-1] in "Zz" else value[-6:]
        value = f"{value[:17]}59.999999{zone}"
    if value[10] == "t" or value[-1] == "z":
        value = value.upper()  # datetime reads T and Z only; the rest is digits and signs
    # The pattern admits what fromisoformat reads and nothing else it would (its own
    # grammar is looser: week dates, no separators, 24:00); it cuts digits past the sixth.
    return (dt.datetime.fromisoformat(value) - EPOCH) // MICROSECOND


def amount_micros(value: object) -> int:
    """A JSON number or an AMOUNT_PATTERN string as exact micro-units."""
    try:
        if isinstance(value, JsonNumber):
            return micros_of_decimal(*exact_decimal(value))
        if isinstance(value, str):
            return parse_amount_micros(value)
    except (AmountError, JsonError) as error:
        raise ValueError(f"amount {error}") from None
    raise ValueError(f"amount must be a decimal number or string, got {_json_type(value)}")


def _integer(value: object) -> object:
    """A JSON number with no fraction (4, 4.0, 4e0: JSON Schema's integer) as an int; any
    other value as it is, for the strict int check to refuse."""
    if not isinstance(value, JsonNumber):
        return value
    try:
        coefficient, exponent = exact_decimal(value)
    except JsonError as error:
        raise ValueError(str(error)) from None
    if exponent < 0:
        raise ValueError("must be an integer")
    if exponent > 3:  # far out of any range asked; spares building a huge int
        raise ValueError(f"is too large: {value.text[:32]}")
    return coefficient * 10**exponent


def _json_type(value: object) -> str:
    kinds = {bool: "boolean", type(None): "null", dict: "object", list: "array"}
    return kinds.get(type(value), "number" if isinstance(value, JsonNumber) else "string")


TimeMicros = Annotated[
    int,
    BeforeValidator(rfc3339_micros),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIME_PATTERN,
            "description": "RFC 3339 with an offset; when the event happened",
        }
    ),
]
"""Written as RFC 3339 text; held as Unix microseconds once validated."""
AmountMicros = Annotated[
    int,
    BeforeValidator(amount_micros),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN},
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_AMOUNT_UNITS,
                    "multipleOf": 1 / MICROS_PER_UNIT,
                },
            ],
            "description": (
                f"Decimal amount >= 0, at most {DECIMAL_PLACES} decimal places and "
                f"{MAX_AMOUNT_UNITS}, as a string or a JSON number (read exactly)"
            ),
        }
    ),
]
"""Written as a decimal string or number; held as integer micro-units once validated."""
JsonInteger = Annotated[int, BeforeValidator(_integer)]
"""A JSON integer: 4, or 4.0 (JSON Schema's integer: a number without a fraction)."""
Actor = Literal["ai", "human"]


class Envelope(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, pattern=URI_REFERENCE_PATTERN)
    type: str = Field(min_length=1)
    time: TimeMicros
    subject: str = Field(min_length=1, max_length=128, description="The conversation id")
    data: dict[str, Any]
    customer: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description=(
            "Extension attribute: an opaque, stable id of the customer (a hash, never an "
            "e-mail address or a phone number), read from a conversation's started event "
            "(CONTRACT.md §9)"
        ),
    )


class EventData(BaseModel):
    """Fields every event's data may carry."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    channel: str | None = Field(
        default=None, description="If present, must equal the topic's channel"
    )


class StartedData(EventData):
    handled_by: Actor


class EscalatedData(EventData):
    reason: str | None = Field(default=None, max_length=64)


class ResolvedData(EventData):
    resolved_by: Actor
    confirmation: Literal["assumed", "confirmed"] = "assumed"


class ReopenedData(EventData):
    pass


class CsatData(EventData):
    score: JsonInteger = Field(ge=1, le=5)


class CostData(EventData):
    amount: AmountMicros
    currency: str = Field(pattern=CURRENCY_PATTERN, description=CURRENCY_DESCRIPTION)
    category: Literal["ai_usage", "platform_fee", "human_handling", "other"]


class RevenueData(EventData):
    amount: AmountMicros
    currency: str = Field(pattern=CURRENCY_PATTERN, description=CURRENCY_DESCRIPTION)


DATA_MODELS: Final[dict[EventType, type[EventData]]] = {
    EventType.STARTED: StartedData,
    EventType.ESCALATED: EscalatedData,
    EventType.RESOLVED: ResolvedData,
    EventType.REOPENED: ReopenedData,
    EventType.CSAT: CsatData,
    EventType.COST: CostData,
    EventType.REVENUE: RevenueData,
}


@functools.cache
def event_model(event_type: EventType) -> type[Envelope]:
    """The full model of one event type: the envelope with its `type` and `data` pinned."""
    name = "".join(part.title() for part in event_type.value.split(".")[1:]) + "Event"
    model: type[Envelope] = create_model(
        name,
        __base__=Envelope,
        __doc__=f"A `{event_type.value}` CloudEvent.",
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type]
        data=(DATA_MODELS[event_type], ...),
    )
    return model

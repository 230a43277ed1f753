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

from service.domain.events import EventType
from service.domain.money import MAX_AMOUNT_UNITS, AmountError, parse_amount_micros

RFC3339: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)
URI_REFERENCE: Final = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
CURRENCY: Final = r"^[A-Z]{3}$"


class DeadLetterReason(StrEnum):
    """Why a record or event went to the dead-letter topic (CONTRACT.md §3)."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_DATA = "invalid_data"
    CHANNEL_MISMATCH = "channel_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    FUTURE_TIME = "future_time"
    TOO_LARGE = "too_large"


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


DEAD_LETTER_TOPIC: Final = "support.deadletter"
DEFAULT_TOPIC_PREFIX: Final = "support.events."
CHANNEL_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"


EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=4096)
def _day_start_seconds(date: str) -> int:
    """Unix seconds of a calendar date's midnight UTC; ValueError for a date that does not
    exist. Cached: a stream's events fall on few dates."""
    return (dt.date.fromisoformat(date).toordinal() - EPOCH_ORDINAL) * 86_400


def rfc3339_micros(value: object) -> int:
    """An RFC 3339 timestamp with a UTC offset, as Unix microseconds. Fractions finer than a
    microsecond are cut, never rounded up."""
    match = RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with a UTC offset")
    date, hour, minute, second, fraction, sign, offset_hours, offset_minutes = match.groups()
    clock = (int(hour), int(minute), int(second))
    offset = (int(offset_hours), int(offset_minutes)) if sign else (0, 0)
    if clock[0] > 23 or clock[1] > 59 or clock[2] > 59 or offset[0] > 23 or offset[1] > 59:
        raise ValueError("must be an RFC 3339 date-time with a UTC offset")
    try:
        day = _day_start_seconds(date)
    except ValueError:
        raise ValueError(f"has no such date: {date}") from None
    offset_seconds = (offset[0] * 3600 + offset[1] * 60) * (-1 if sign == "-" else 1)
    seconds = day + clock[0] * 3600 + clock[1] * 60 + clock[2] - offset_seconds
    return seconds * 1_000_000 + (int(fraction[:6].ljust(6, "0")) if fraction else 0)


def _amount_micros(value: object) -> int:
    try:
        return parse_amount_micros(value)
    except AmountError as error:
        raise ValueError(f"amount {error}") from None


TimeMicros = Annotated[
    int,
    BeforeValidator(rfc3339_micros),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with a UTC offset; when the event happened",
        }
    ),
]
"""Written as RFC 3339 text; held as Unix microseconds once validated."""
AmountMicros = Annotated[
    int,
    BeforeValidator(_amount_micros),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,6})?$"},
                {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT_UNITS},
            ],
            "description": "Decimal amount >= 0, at most 6 decimal places, as string or number",
        }
    ),
]
"""Written as a decimal string or number; held as integer micro-units once validated."""
Actor = Literal["ai", "human"]


class Envelope(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, pattern=URI_REFERENCE.pattern)
    type: str = Field(min_length=1)
    time: TimeMicros
    subject: str = Field(min_length=1, max_length=128, description="The conversation id")
    data: dict[str, Any]


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
    score: int = Field(ge=1, le=5)


class CostData(EventData):
    amount: AmountMicros
    currency: str = Field(pattern=CURRENCY, description="ISO 4217; must be the configured one")
    category: Literal["ai_usage", "platform_fee", "human_handling", "other"]


class RevenueData(EventData):
    amount: AmountMicros
    currency: str = Field(pattern=CURRENCY, description="ISO 4217; must be the configured one")


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

"""The event contract (CONTRACT.md §2-§3) as pydantic models: the CloudEvents 1.0 envelope
and the `data` of every event type. schemas/ is generated from these models.

Validation is strict: a string where a number is required (or the reverse) is invalid, except
for amounts, which may be decimal strings or JSON numbers. Unknown attributes and data fields
are accepted and ignored (forward compatibility).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
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
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
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


def _rfc3339(value: object) -> object:
    """Parse an RFC 3339 timestamp with a UTC offset; anything else is left for pydantic to
    reject (a datetime field in strict mode takes only datetime objects)."""
    if not isinstance(value, str):
        return value
    if not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a UTC offset")
    text = value.upper()
    if "." in text:  # Python keeps microseconds: cut longer fractions, never round up
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    return dt.datetime.fromisoformat(text)


def _amount(value: str | int | Decimal) -> str | int | Decimal:
    try:
        parse_amount_micros(value)
    except AmountError as error:
        raise ValueError(f"amount {error}") from None
    return value


Timestamp = Annotated[dt.datetime, BeforeValidator(_rfc3339)]
Amount = Annotated[
    str | int | Decimal,
    AfterValidator(_amount),
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
Actor = Literal["ai", "human"]


class Envelope(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, pattern=URI_REFERENCE.pattern)
    type: str = Field(min_length=1)
    time: Timestamp = Field(description="RFC 3339 with a UTC offset; when the event happened")
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
    amount: Amount
    currency: str = Field(pattern=CURRENCY, description="ISO 4217; must be the configured one")
    category: Literal["ai_usage", "platform_fee", "human_handling", "other"]


class RevenueData(EventData):
    amount: Amount
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

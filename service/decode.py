"""Decoding Kafka record values into domain events (CONTRACT.md §1-§3).

Never raises on input: whatever cannot be counted comes back as a Rejection with its
dead-letter reason, and unknown event types are counted as ignored.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from service.contract import DATA_MODELS, CostData, DeadLetterReason, Envelope, RevenueData
from service.domain.aggregate import is_future
from service.domain.events import (
    Actor,
    Confirmation,
    CostCategory,
    EventType,
    SupportEvent,
)
from service.domain.money import parse_amount_micros

MAX_RECORD_BYTES: Final = 1024 * 1024
MAX_BATCH_EVENTS: Final = 1000
EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND: Final = dt.timedelta(microseconds=1)
KNOWN_TYPES: Final = frozenset(member.value for member in EventType)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record or event that goes to the dead-letter topic, with why."""

    reason: DeadLetterReason
    message: str
    payload: bytes
    """The rejected record's value, or the rejected event of a batch re-encoded as JSON."""


@dataclass(slots=True)
class DecodedRecord:
    events: list[SupportEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    ignored: int = 0


def _first_error(error: ValidationError) -> str:
    """One line: where and what, for the first validation problem."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"{where}: {first['msg']}"


def _to_micros(time: dt.datetime) -> int:
    return (time - EPOCH) // ONE_MICROSECOND


def _domain_event(
    envelope: Envelope, event_type: EventType, data: Any, channel: str
) -> SupportEvent:
    amount = 0
    if isinstance(data, CostData | RevenueData):
        amount = parse_amount_micros(data.amount)
    return SupportEvent(
        source=envelope.source,
        event_id=envelope.id,
        channel=channel,
        conversation_id=envelope.subject,
        type=event_type,
        time_micros=_to_micros(envelope.time),
        handled_by=Actor(data.handled_by) if event_type is EventType.STARTED else None,
        resolved_by=Actor(data.resolved_by) if event_type is EventType.RESOLVED else None,
        confirmation=Confirmation(getattr(data, "confirmation", "assumed")),
        score=data.score if event_type is EventType.CSAT else None,
        amount_micros=amount,
        cost_category=CostCategory(data.category) if event_type is EventType.COST else None,
    )


class _Rejected(Exception):
    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Decoder:
    """Turns record values of one deployment (its currency) into events."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def decode_record(self, value: bytes | None, channel: str, now_micros: int) -> DecodedRecord:
        """Decode one record of `channel`'s topic: one CloudEvent or a JSON array of them."""
        result = DecodedRecord()
        if value is None:
            result.rejections.append(
                Rejection(DeadLetterReason.INVALID_JSON, "record has no value", b"")
            )
            return result
        if len(value) > MAX_RECORD_BYTES:
            message = f"record is {len(value)} bytes, more than {MAX_RECORD_BYTES}"
            result.rejections.append(Rejection(DeadLetterReason.TOO_LARGE, message, value))
            return result
        try:
            document = json.loads(value, parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as error:
            result.rejections.append(Rejection(DeadLetterReason.INVALID_JSON, str(error), value))
            return result
        if isinstance(document, list):
            if len(document) > MAX_BATCH_EVENTS:
                message = f"batch holds {len(document)} events, more than {MAX_BATCH_EVENTS}"
                result.rejections.append(Rejection(DeadLetterReason.TOO_LARGE, message, value))
                return result
            for item in document:
                self._decode_event(item, None, channel, now_micros, result)
        else:
            self._decode_event(document, value, channel, now_micros, result)
        return result

    def _decode_event(
        self, item: Any, raw: bytes | None, channel: str, now_micros: int, result: DecodedRecord
    ) -> None:
        try:
            event = self._validate(item, channel, now_micros)
        except _Rejected as rejected:
            payload = raw if raw is not None else json.dumps(item, default=str).encode()
            result.rejections.append(Rejection(rejected.reason, rejected.message, payload))
            return
        if event is None:
            result.ignored += 1
        else:
            result.events.append(event)

    def _validate(self, item: Any, channel: str, now_micros: int) -> SupportEvent | None:
        """The event, or None for an unknown type; raises _Rejected for anything invalid."""
        if not isinstance(item, dict):
            raise _Rejected(DeadLetterReason.INVALID_ENVELOPE, "an event must be a JSON object")
        try:
            envelope = Envelope.model_validate(item)
        except ValidationError as error:
            raise _Rejected(DeadLetterReason.INVALID_ENVELOPE, _first_error(error)) from None
        if envelope.type not in KNOWN_TYPES:
            return None
        event_type = EventType(envelope.type)
        try:
            data = DATA_MODELS[event_type].model_validate(envelope.data)
        except ValidationError as error:
            message = f"data.{_first_error(error)}"
            raise _Rejected(DeadLetterReason.INVALID_DATA, message) from None
        if data.channel is not None and data.channel != channel:
            message = f"data.channel is {data.channel!r} but the topic's channel is {channel!r}"
            raise _Rejected(DeadLetterReason.CHANNEL_MISMATCH, message)
        currency = getattr(data, "currency", None)
        if currency is not None and currency != self.currency:
            message = f"data.currency is {currency!r}; this deployment counts in {self.currency!r}"
            raise _Rejected(DeadLetterReason.CURRENCY_MISMATCH, message)
        event = _domain_event(envelope, event_type, data, channel)
        if is_future(event.time_micros, now_micros):
            message = "time is more than 5 minutes ahead of the worker's clock"
            raise _Rejected(DeadLetterReason.FUTURE_TIME, message)
        return event

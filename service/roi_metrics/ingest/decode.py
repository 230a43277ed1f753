"""Decoding Kafka record values into domain events (CONTRACT.md §1-§3).

Never raises on input: whatever cannot be counted comes back as a Rejection with its
dead-letter reason, and unknown event types are counted as ignored.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Union

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from roi_metrics.domain.aggregate import is_future
from roi_metrics.domain.events import (
    Actor,
    Confirmation,
    CostCategory,
    EventType,
    SupportEvent,
)
from roi_metrics.ingest import jsonstrict
from roi_metrics.ingest.binary import (
    HeaderProblem,
    Headers,
    binary_envelope,
    header_bytes,
    is_binary,
)
from roi_metrics.ingest.contract import (
    CostData,
    CsatData,
    DeadLetterReason,
    Envelope,
    ResolvedData,
    RevenueData,
    StartedData,
    event_model,
)
from roi_metrics.ingest.fastpath import fast_event

log = logging.getLogger(__name__)
MAX_RECORD_BYTES: Final = 1024 * 1024
MAX_BATCH_EVENTS: Final = 1000
KNOWN_TYPES: Final = frozenset(member.value for member in EventType)
EVENT_TYPES: Final = {member.value: member for member in EventType}
ACTORS: Final = {member.value: member for member in Actor}
CONFIRMATIONS: Final = {member.value: member for member in Confirmation}
CATEGORIES: Final = {member.value: member for member in CostCategory}
_ANY_EVENT: Any = Annotated[
    Union[tuple(event_model(event_type) for event_type in EventType)],  # noqa: UP007
    Field(discriminator="type"),
]
_EVENT: Final[TypeAdapter[Any]] = TypeAdapter(_ANY_EVENT)
"""Every known event type in one validator: one pass per event, dispatched on `type`."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record or event that goes to the dead-letter topic, with why."""

    reason: DeadLetterReason
    message: str
    payload: bytes
    """The bytes that were sent: the whole record value, or the rejected event's own text
    within a batch."""
    position: int | None = None
    """The rejected event's position in its batch; None for a whole record."""


@dataclass(slots=True)
class DecodedRecord:
    events: list[SupportEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    ignored: int = 0
    positions: list[int] | None = None
    """For a batch, the position of each event of `events` among the batch's elements (its
    dead letter keeps those bytes if it is rejected later, e.g. for overflow); None for a
    record of one event."""


def unexpected(error: BaseException) -> str:
    """The message of an `unprocessable` dead letter: the exception's class first."""
    return f"{type(error).__name__}: {error}"


def _describe(error: ErrorDetails, skip: int = 0) -> str:
    where = ".".join(str(part) for part in error["loc"][skip:]) or "event"
    return f"{where}: {error['msg']}"


def _classify(error: ValidationError) -> _Rejected:
    """An envelope problem (data itself missing or not an object included) wins over a
    problem inside data; locations start with the union's tag, which is dropped."""
    problems = error.errors(include_url=False)
    for problem in problems:
        if len(problem["loc"]) < 3 or problem["loc"][1] != "data":
            return _Rejected(DeadLetterReason.INVALID_ENVELOPE, _describe(problem, 1))
    return _Rejected(DeadLetterReason.INVALID_DATA, _describe(problems[0], 1))


def _domain_event(model: Any, channel: str) -> SupportEvent:
    """The domain event of a validated model (one of the event_model classes)."""
    data = model.data
    handled_by = resolved_by = score = category = None
    confirmation = Confirmation.ASSUMED
    amount = 0
    if isinstance(data, StartedData):
        handled_by = ACTORS[data.handled_by]
    elif isinstance(data, ResolvedData):
        resolved_by = ACTORS[data.resolved_by]
        confirmation = CONFIRMATIONS[data.confirmation]
    elif isinstance(data, CsatData):
        score = data.score
    elif isinstance(data, CostData):
        amount, category = data.amount, CATEGORIES[data.category]
    elif isinstance(data, RevenueData):
        amount = data.amount
    return SupportEvent(
        model.source,
        model.id,
        channel,
        model.subject,
        EVENT_TYPES[model.type],
        model.time,
        handled_by,
        resolved_by,
        confirmation,
        score,
        amount,
        category,
        model.customer,
    )


class _Rejected(Exception):
    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _refused_value(value: bytes | None, other_bytes: int) -> Rejection | None:
    """The rejection of a record without a value or over MAX_RECORD_BYTES, else None."""
    if value is None:
        return Rejection(DeadLetterReason.INVALID_JSON, "record has no value", b"")
    if len(value) + other_bytes > MAX_RECORD_BYTES:
        size = len(value) + other_bytes
        message = f"record is {size} bytes (key, value and headers), more than {MAX_RECORD_BYTES}"
        return Rejection(DeadLetterReason.TOO_LARGE, message, value)
    return None


def _read(
    value: bytes | None, other_bytes: int, max_items: int = MAX_BATCH_EVENTS
) -> jsonstrict.Document | Rejection:
    """The record value as strict JSON, or why it cannot be read: no value, over
    MAX_RECORD_BYTES with its key and headers, too many items, not strict JSON."""
    refused = _refused_value(value, other_bytes)
    if refused is not None:
        return refused
    assert value is not None
    try:
        return jsonstrict.parse(value, max_items)
    except jsonstrict.TooManyItems as error:
        return Rejection(DeadLetterReason.TOO_LARGE, str(error), value)
    except jsonstrict.JsonError as error:
        return Rejection(DeadLetterReason.INVALID_JSON, str(error), value)


class Decoder:
    """Turns record values of one deployment (its currency) into events."""

    def __init__(self, currency: str, fast: bool = True) -> None:
        self.currency = currency
        self.fast = fast
        """Take the fast path (ingest/fastpath.py) for events that are certainly valid;
        False judges every event by the pydantic models (the differential test's other side)."""

    def decode_record(
        self,
        value: bytes | None,
        channel: str,
        now_micros: int,
        key_bytes: int = 0,
        headers: Headers = (),
    ) -> DecodedRecord:
        """Decode one record of `channel`'s topic: one CloudEvent or a JSON array of them
        (structured or batched), or in binary content mode the event's data with its
        attributes in `ce_` headers. `key_bytes` is the size of its key: a record over
        1 MiB (key, value and headers) is refused.

        Never raises: whatever cannot be counted becomes a Rejection, and anything
        unexpected (a bug included) rejects the record as `unprocessable`.
        """
        try:
            key_bytes += header_bytes(headers)
            if is_binary(headers):
                return self._decode_binary(value, channel, now_micros, key_bytes, headers)
            return self._decode(value, channel, now_micros, key_bytes)
        except Exception as error:
            log.exception("unprocessable record on channel %s", channel)
            rejection = Rejection(DeadLetterReason.UNPROCESSABLE, unexpected(error), value or b"")
            return DecodedRecord(rejections=[rejection])

    def _decode_binary(
        self, value: bytes | None, channel: str, now_micros: int, size: int, headers: Headers
    ) -> DecodedRecord:
        """Binary content mode: `data` from the value, the envelope from the `ce_` headers."""
        document = _read(value, size, sys.maxsize)  # an array is refused whatever its length
        if isinstance(document, Rejection):
            return DecodedRecord(rejections=[document])
        raw = value or b""
        try:
            envelope = binary_envelope(headers)
        except HeaderProblem as problem:
            reason = DeadLetterReason.INVALID_ENVELOPE
            return DecodedRecord(rejections=[Rejection(reason, str(problem), raw)])
        if document.batch:
            message = "data: binary content mode carries one event's data, not an array"
            return DecodedRecord(
                rejections=[Rejection(DeadLetterReason.INVALID_DATA, message, raw)]
            )
        result = DecodedRecord()
        self._add(result, {**envelope, "data": document.values[0]}, channel, now_micros, raw)
        return result

    def _decode(
        self, value: bytes | None, channel: str, now_micros: int, key_bytes: int
    ) -> DecodedRecord:
        document = _read(value, key_bytes)
        if isinstance(document, Rejection):
            return DecodedRecord(rejections=[document])
        result = DecodedRecord()
        value = value or b""
        if not document.batch:
            self._add(result, document.values[0], channel, now_micros, value)
            return result
        result.positions = []
        for position, item in enumerate(document.values):
            self._add(result, item, channel, now_micros, document.raw(position), position=position)
        return result

    def _add(
        self,
        result: DecodedRecord,
        item: Any,
        channel: str,
        now_micros: int,
        raw: bytes,
        *,
        position: int | None = None,
    ) -> None:
        """Validate one event into `result`: counted, ignored or rejected (with `raw`, the
        bytes that were sent for it, and its `position` in a batch)."""
        try:
            event = self._validate(item, channel, now_micros)
        except _Rejected as rejected:
            result.rejections.append(Rejection(rejected.reason, rejected.message, raw, position))
            return
        except Exception as error:
            log.exception("unprocessable event on channel %s", channel)
            reason = DeadLetterReason.UNPROCESSABLE
            result.rejections.append(Rejection(reason, unexpected(error), raw, position))
            return
        if event is None:
            result.ignored += 1
            return
        result.events.append(event)
        if result.positions is not None and position is not None:
            result.positions.append(position)

    @staticmethod
    def event_payloads(wanted: Sequence[tuple[bytes, DecodedRecord, int]]) -> list[bytes]:
        """The bytes that were sent for each (record value, decoded record, event index):
        the value of a single-event record, an event's own slice of a batch. Each record's
        text is decoded and scanned once, however many of its events are asked for."""
        documents: dict[int, jsonstrict.Document] = {}
        payloads = []
        for value, decoded, index in wanted:
            if decoded.positions is None:
                payloads.append(value)
                continue
            document = documents.get(id(decoded))
            if document is None:
                document = documents[id(decoded)] = jsonstrict.Document(value.decode(), True, [])
            payloads.append(document.raw(decoded.positions[index]))
        return payloads

    def _validate(self, item: Any, channel: str, now_micros: int) -> SupportEvent | None:
        """The event, or None for an unknown type; raises _Rejected for anything invalid."""
        if not isinstance(item, dict):
            raise _Rejected(DeadLetterReason.INVALID_ENVELOPE, "an event must be a JSON object")
        kind = item.get("type")
        if not (isinstance(kind, str) and kind in KNOWN_TYPES):
            try:
                Envelope.model_validate(item)
            except ValidationError as error:
                problem = error.errors(include_url=False)[0]
                raise _Rejected(DeadLetterReason.INVALID_ENVELOPE, _describe(problem)) from None
            return None  # a type from the future: skipped, counted as ignored
        if self.fast:
            event = fast_event(item, channel, self.currency, now_micros)
            if event is not None:
                return event
        try:
            model = _EVENT.validate_python(item)
        except ValidationError as error:
            raise _classify(error) from None
        data = model.data
        if data.channel is not None and data.channel != channel:
            message = f"data.channel is {data.channel!r} but the topic's channel is {channel!r}"
            raise _Rejected(DeadLetterReason.CHANNEL_MISMATCH, message)
        if isinstance(data, CostData | RevenueData) and data.currency != self.currency:
            message = (
                f"data.currency is {data.currency!r}; this deployment counts in {self.currency!r}"
            )
            raise _Rejected(DeadLetterReason.CURRENCY_MISMATCH, message)
        if is_future(model.time, now_micros):
            message = "time is more than 5 minutes ahead of the worker's clock"
            raise _Rejected(DeadLetterReason.FUTURE_TIME, message)
        return _domain_event(model, channel)

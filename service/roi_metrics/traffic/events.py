"""The events a user publishes: read from a file as the worker reads JSON, checked by the
worker's own decoder, and made into records (structured, batched or binary content mode)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from roi_metrics.ingest import jsonstrict
from roi_metrics.ingest.decode import MAX_RECORD_BYTES, Decoder, Rejection


class OperatorError(Exception):
    """One line for the user: what went wrong and how to fix it. `configuration` when the
    fix is in the settings (a refused password, an untrusted certificate): exit status 2,
    else 1."""

    def __init__(self, message: str, *, configuration: bool = False) -> None:
        super().__init__(message)
        self.configuration = configuration


Headers = list[tuple[str, bytes]]
OutRecord = tuple[bytes, bytes, Headers]
"""A record to send: key, value, headers."""
BATCH_CONTENT_TYPE: Final = b"application/cloudevents-batch+json"
JSON_TYPE: Final = b"application/json"


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "line 3", "event 7"
    reason: str
    message: str


@dataclass
class Checked:
    """A file's events: the valid ones as records to send, the others with why."""

    records: list[OutRecord] = field(default_factory=list)
    events: int = 0
    problems: list[Problem] = field(default_factory=list)


def _parsed(raw: bytes) -> jsonstrict.Document | str:
    """The strict parse of `raw`, or why it is not strict JSON (as the worker reads it)."""
    try:
        return jsonstrict.parse(raw, sys.maxsize)
    except jsonstrict.JsonError as error:
        return str(error)


def read_events(data: bytes) -> list[tuple[str, bytes | None, str | None]]:
    """(where, the event's bytes as written, problem) from a JSON document (one event or an
    array) or NDJSON. JSON is read strictly, as the worker reads it (a line that is not
    UTF-8, duplicate member names, NaN are problems of that line only), and each event
    keeps its exact bytes."""
    whole = _parsed(data.strip())
    if isinstance(whole, jsonstrict.Document):
        if not whole.batch:
            return [("event 1", data.strip(), None)]
        return [(f"event {i + 1}", whole.raw(i), None) for i in range(len(whole.values))]
    found: list[tuple[str, bytes | None, str | None]] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        document = _parsed(line.strip())
        if isinstance(document, str):
            found.append((f"line {number}", None, f"not strict JSON: {document}"))
        elif not document.batch:
            found.append((f"line {number}", line.strip(), None))
        else:
            for index in range(len(document.values)):
                found.append((f"line {number}#{index + 1}", document.raw(index), None))
    return found


def binary_record(raw: bytes) -> tuple[bytes, Headers]:
    """A structured event's bytes as a binary-mode record (the CloudEvents Kafka binding):
    its data as the value; `datacontenttype` as the content-type (JSON when absent); every
    other attribute in a `ce_` header, a string as it is, a number or a boolean as its JSON;
    a null attribute is left out, as absent."""
    event = jsonstrict.parse(raw, 1).values[0]
    content_type = event.get("datacontenttype")
    headers: Headers = [
        ("content-type", content_type.encode() if isinstance(content_type, str) else JSON_TYPE)
    ]
    for name, value in event.items():
        if name in ("data", "datacontenttype") or value is None:
            continue
        text = value.encode() if isinstance(value, str) else jsonstrict.dumps(value)
        headers.append((f"ce_{name}", text))
    return jsonstrict.dumps(event.get("data")), headers


def check_events(
    items: Iterable[tuple[str, bytes | None, str | None]],
    channel: str,
    currency: str,
    batch: int,
    now_micros: int | None = None,
    *,
    mode: str = "structured",
) -> Checked:
    """Validate each event as the worker would on `channel`'s topic (its own bytes through
    the worker's decoder); make the valid ones records of those bytes: one event each
    (`structured`), JSON arrays of up to `batch` events of one conversation (`batch`, or
    `structured` with `batch` > 1), or one binary-mode record each (`binary`, each record
    itself checked by the decoder)."""
    decoder = Decoder(currency)
    now = now_micros if now_micros is not None else time.time_ns() // 1000
    checked = Checked()
    valid = _valid_events(items, decoder, channel, now, checked)
    if mode == "batch" or (mode != "binary" and batch > 1):
        checked.records, checked.events = _batched(valid, batch, checked)
        return checked
    for where, key, raw in valid:
        value, headers = binary_record(raw) if mode == "binary" else (raw, [])
        decoded = decoder.decode_record(value, channel, now, len(key), headers)
        _say_problems(checked, where, decoded.rejections)  # the record as it will be sent
        if decoded.events:
            checked.records.append((key, value, headers))
            checked.events += 1
    return checked


def _say_problems(checked: Checked, where: str, rejections: Iterable[Rejection]) -> None:
    for rejection in rejections:
        checked.problems.append(Problem(where, rejection.reason.value, rejection.message))


def _valid_events(
    items: Iterable[tuple[str, bytes | None, str | None]],
    decoder: Decoder,
    channel: str,
    now: int,
    checked: Checked,
) -> list[tuple[str, bytes, bytes]]:
    """(where, key, bytes) of each event the worker would count; the others' problems go
    into `checked`."""
    valid: list[tuple[str, bytes, bytes]] = []
    for where, raw, problem in items:
        if raw is None:
            checked.problems.append(Problem(where, "invalid_json", problem or "not JSON"))
            continue
        decoded = decoder.decode_record(raw, channel, now)
        _say_problems(checked, where, decoded.rejections)
        if decoded.ignored:
            checked.problems.append(
                Problem(where, "ignored", "unknown type: the worker ignores it; not sent")
            )
        valid += [(where, event.conversation_id.encode(), raw) for event in decoded.events]
    return valid


def _batched(
    valid: list[tuple[str, bytes, bytes]], batch: int, checked: Checked
) -> tuple[list[OutRecord], int]:
    """A conversation's events in order, up to `batch` a record and never more bytes than
    a record may hold (key and headers included); an event too large alone is a problem.
    Only the order within a conversation matters: it is the record key, one partition."""
    headers: Headers = [("content-type", BATCH_CONTENT_TYPE)]
    room = MAX_RECORD_BYTES - len(BATCH_CONTENT_TYPE) - len("content-type") - 2  # [ and ]
    by_conversation: dict[bytes, list[tuple[str, bytes]]] = {}
    for where, key, raw in valid:
        by_conversation.setdefault(key, []).append((where, raw))
    records: list[OutRecord] = []
    sent = 0
    for key, events in by_conversation.items():
        group: list[bytes] = []
        for where, raw in events:
            size = len(key) + sum(len(r) + 1 for r in group) + len(raw)
            if group and (len(group) == batch or size > room):
                records.append((key, b"[" + b",".join(group) + b"]", headers))
                group = []
            if len(key) + len(raw) > room:
                message = (
                    f"the event is {len(raw)} bytes: with its key and the batch's header it "
                    f"passes the {MAX_RECORD_BYTES} bytes a record may hold"
                )
                checked.problems.append(Problem(where, "too_large", message))
                continue
            group.append(raw)
            sent += 1
        if group:
            records.append((key, b"[" + b",".join(group) + b"]", headers))
    return records, sent


def read_bytes(path: Path | None, stdin: IO[bytes]) -> bytes:
    """A file's bytes, or stdin's ('-' or no path); each line is judged on its own later
    (a line that is not UTF-8 is refused as the worker would refuse it)."""
    if path is None or str(path) == "-":
        return stdin.read()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such file") from None
    except OSError as error:
        raise OperatorError(f"{path}: {error.strerror}") from None

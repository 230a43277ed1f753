"""CloudEvents binary content mode (CONTRACT.md §1 v2): which records are binary, and an
event's attributes from its `ce_` headers. Every problem is a HeaderProblem, which the
decoder dead-letters as `invalid_envelope`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final


class HeaderProblem(ValueError):
    """A binary-mode record's headers are no event's attributes; str() says why."""


Headers = Sequence[tuple[str, bytes | None]]
"""A Kafka record's headers: (name, value) pairs, names possibly repeated, a value null."""
CE_PREFIX: Final = "ce_"
CONTENT_TYPE: Final = "content-type"
NOT_ATTRIBUTES: Final = frozenset({"data", "data_base64"})
"""`ce_` headers that would carry the data itself: in binary mode the value does."""


def header_bytes(headers: Headers) -> int:
    """What headers add to a record's size: names as UTF-8 and values."""
    return sum(len(name.encode(errors="replace")) + len(value or b"") for name, value in headers)


def _media_type(value: bytes) -> bytes:
    """A content-type's media type, lowercase, without parameters or spaces."""
    return value.split(b";", 1)[0].strip().lower()


def is_binary(headers: Headers) -> bool:
    """CONTRACT.md §1: a `content-type` starting with application/cloudevents is structured
    or batched; else a `ce_specversion` header makes the record binary; else structured.
    Header names are read in any case, as the CloudEvents SDKs read them."""
    if not headers:
        return False
    names = [(name.lower(), value or b"") for name, value in headers]
    for name, value in names:
        if name == CONTENT_TYPE and _media_type(value).startswith(b"application/cloudevents"):
            return False
    return any(name == "ce_specversion" for name, _ in names)


def _check_content_type(raw: bytes, seen: bool) -> None:
    """Binary mode carries UTF-8 JSON data: `application/json` or `…/…+json`, once."""
    shown = raw[:64].decode(errors="replace")
    media, _, parameters = raw.partition(b";")
    media = media.strip().lower()
    kind, slash, subtype = media.partition(b"/")
    charset = parameters.strip().lower().removeprefix(b"charset=").strip(b'" ')
    if seen:
        message = "header 'content-type' given twice"
    elif not (slash and kind and (subtype == b"json" or subtype.endswith(b"+json"))):
        message = f"content-type {shown!r}: binary mode carries JSON data"
    elif parameters.strip() and charset not in (b"utf-8", b"utf8"):
        message = f"content-type {shown!r}: JSON data is UTF-8"
    else:
        return
    raise HeaderProblem(message)


def binary_envelope(headers: Headers) -> dict[str, str]:
    """The event's attributes from its `ce_` headers (names in any case); raises HeaderProblem
    for a header given twice, one that is not UTF-8, one that would carry the data, or data
    declared other than UTF-8 JSON."""
    envelope: dict[str, str] = {}
    content_type = False
    for given, raw in headers:
        if raw is None:
            continue  # a null header is no header
        name, value = given.lower(), raw
        if name == CONTENT_TYPE:
            _check_content_type(value, content_type)
            content_type = True
            continue
        if not name.startswith(CE_PREFIX):
            continue  # tracing and other headers are not the event's
        attribute = name[len(CE_PREFIX) :]
        try:
            attribute.encode("utf-8", errors="strict")
        except UnicodeEncodeError:  # a lone surrogate: no client reading UTF-8 gives one
            message = f"header {given[:64]!r} has a name that is not UTF-8 text"
            raise HeaderProblem(message) from None
        if attribute in envelope or attribute in NOT_ATTRIBUTES:
            message = f"header {given[:64]!r} " + (
                "given twice" if attribute in envelope else "is not an attribute"
            )
            raise HeaderProblem(message)
        try:
            envelope[attribute] = value.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            message = f"header {given[:64]!r} is not UTF-8 text"
            raise HeaderProblem(message) from None
    declared = envelope.get("datacontenttype")
    if declared is not None:
        _check_content_type(declared.encode(), False)
    return envelope

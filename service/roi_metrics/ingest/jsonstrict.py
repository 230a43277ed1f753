"""Strict JSON for record values (CONTRACT.md §2 v2).

`json.loads` alone is too lenient for a contract: it guesses UTF-16/32 from bytes, accepts
NaN and Infinity, keeps the last of duplicate member names, reads numbers through binary
floats (or through `Decimal`, which raises on huge exponents) and accepts lone surrogate
escapes that no UTF-8 string can hold. Here:

- the bytes must be UTF-8 (no BOM, no other encoding);
- duplicate member names, NaN, Infinity and lone surrogates are refused;
- every number stays as its exact text (`JsonNumber`), converted only where a field asks;
- a batch (a top-level array) is scanned element by element, so each element's exact text
  (its span) is known: a rejected event is dead-lettered as the bytes that were sent, and
  an array longer than the limit is refused without parsing the rest.

Every failure is a `JsonError` (a ValueError) with a one-line message; nothing else escapes
for any input, nesting deeper than the parser's stack included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
"""JSON's four whitespace characters, nothing else."""
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
NUMBER: Final = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")
"""A JSON number's text: sign, integer digits, fraction digits, exponent."""


class JsonError(ValueError):
    """A record value that is not strict JSON."""


class TooManyItems(JsonError):
    """A top-level array with more elements than allowed."""


class JsonNumber:
    """A JSON number kept as its text, so no digit is lost or invented.

    >>> JsonNumber("1.50").text
    '1.50'
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise JsonError(f"duplicate member name {name[:64]!r}")
            seen.add(name)
    return document


def _constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON value")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=JsonNumber,
    parse_int=JsonNumber,
    parse_constant=_constant,
)
_scan: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


@dataclass(slots=True)
class Document:
    """A parsed record value: `values` holds the elements of a top-level array (`batch`),
    or the one top-level value."""

    text: str
    batch: bool
    values: list[Any]
    _spans: list[tuple[int, int]] | None = None

    def raw(self, index: int) -> bytes:
        """The exact bytes that were sent for value `index` (found when first asked: only
        a rejected element of a batch needs them)."""
        if not self.batch:
            return self.text.encode()
        if self._spans is None:
            self._spans = spans(self.text)
        start, end = self._spans[index]
        return self.text[start:end].encode()


def text_of(value: bytes) -> str:
    """The record value as text; JsonError unless it is UTF-8 without a BOM."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonError(f"not UTF-8: byte {error.start} is invalid") from None
    if text.startswith("\ufeff"):
        raise JsonError("starts with a byte order mark; send UTF-8 without one")
    return text


def parse(value: bytes, max_items: int) -> Document:
    """Parse a record value: one JSON value, or a top-level array of at most `max_items`
    elements (TooManyItems past that). One pass of the C scanner; nothing else escapes."""
    text = text_of(value)
    try:
        parsed = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        message = error.msg.removesuffix(" at")  # "Invalid control character at"
        raise JsonError(f"{message} at character {error.pos}") from None
    except RecursionError:
        raise JsonError("nested too deeply") from None
    batch = isinstance(parsed, list)
    values = parsed if batch else [parsed]
    if batch and len(values) > max_items:
        raise TooManyItems(f"a batch holds more than {max_items} events")
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(values)
    return Document(text, batch, values)


def _value_at(text: str, position: int) -> int:
    """Where the JSON value at `position` ends (the text is known to be valid JSON)."""
    _, end = _scan(text, position)
    return end


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def spans(text: str) -> list[tuple[int, int]]:
    """Where each element of the valid JSON array `text` starts and ends."""
    found: list[tuple[int, int]] = []
    position = _skip(text, _skip(text, 0) + 1)
    while not text.startswith("]", position):
        end = _value_at(text, position)
        found.append((position, end))
        position = _skip(text, end)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
    return found


def _check_surrogates(value: Any) -> None:
    """JsonError when a string anywhere in `value` holds a lone surrogate (no UTF-8 form)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str):
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                raise JsonError("a string holds a lone surrogate escape") from None
        elif isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def exact_decimal(number: JsonNumber) -> tuple[int, int]:
    """A JSON number as (coefficient, exponent) with value = coefficient * 10**exponent,
    trailing zeros moved into the exponent; (0, 0) for any zero, -0 included.

    >>> exact_decimal(JsonNumber("12.50"))
    (125, -1)

    Exponents with more than 9 digits are kept as ±10^10 (a number that large or small is
    out of every range this service accepts); coefficients of more than 64 significant
    digits raise JsonError (no accepted number needs as many).
    """
    match = NUMBER.fullmatch(number.text)
    if match is None:  # the parser produced it, so this is not expected
        raise JsonError(f"not a JSON number: {number.text[:32]!r}")
    sign, whole, fraction, exponent_text = match.groups()
    digits = (whole + (fraction or "")).lstrip("0")
    if not digits:
        return 0, 0
    stripped = digits.rstrip("0")
    if len(stripped) > 64:
        raise JsonError("a number with more than 64 significant digits")
    exponent = len(digits) - len(stripped) - len(fraction or "")
    if exponent_text:
        bare = exponent_text.lstrip("+-").lstrip("0") or "0"
        scale = 10**10 if len(bare) > 9 else int(bare)
        exponent += -scale if exponent_text.startswith("-") else scale
    coefficient = int(stripped)
    return (-coefficient if sign else coefficient), exponent


def dumps(value: Any) -> bytes:
    """Compact JSON of a parsed value, numbers as their exact text (a parsed document's
    depth is bounded, so the recursion is)."""
    return _dump(value).encode()


def _dump(value: Any) -> str:
    if isinstance(value, dict):
        members = (
            f"{json.dumps(name, ensure_ascii=False)}:{_dump(item)}" for name, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(item) for item in value) + "]"
    if isinstance(value, JsonNumber):
        return value.text
    return json.dumps(value, ensure_ascii=False)

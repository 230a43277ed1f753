"""Reading the cost card file (CONTRACT.md §5): UTF-8 TOML, validated by the model of
roi_metrics.domain.costcard. A card that cannot be used raises CostCardError with one line,
`FILE: FIELD: PROBLEM` (`costs.toml: program.one_off[0].amount: amount must not be
negative, got '-1'`), never a traceback.
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from roi_metrics.domain.costcard import CostCard, CostCardError, FieldProblem

TABLE_ERRORS: Final = frozenset({"model_type", "model_attributes_type", "dict_type"})
"""pydantic's error types for a value that should have been a table."""
KEY_MARK: Final = "[key]"
"""pydantic's last location part when a mapping's key, not its value, is wrong."""


MAX_CARD_BYTES: Final = 64 * 1024
"""A cost card is a few hundred bytes; a larger file is refused unread."""
MAX_LINE_CHARS: Final = 1024
"""Longer lines are refused before parsing: Python's TOML parser takes time and memory
growing with the square of a dotted key's depth (`a.a.a…`: 40 KB of it took 1.6 GB)."""


def load_cost_card(path: Path) -> CostCard:
    """Read and validate the cost card at `path`; CostCardError on any problem. Reads a
    regular file of at most MAX_CARD_BYTES, never a device, pipe or directory."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # before opening: a pipe would block
            raise CostCardError(f"{path}: cannot read: not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_CARD_BYTES + 1)
    except OSError as error:
        raise CostCardError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(data) > MAX_CARD_BYTES:
        raise CostCardError(f"{path}: larger than {MAX_CARD_BYTES // 1024} KiB: not a cost card")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CostCardError(f"{path}: cannot read: not UTF-8 text") from None
    return parse_cost_card(text, path)


def parse_cost_card(text: str, path: Path) -> CostCard:
    """Validate a cost card's TOML text; `path` only names the file in errors."""
    if text.startswith("\ufeff"):
        raise CostCardError(f"{path}: starts with a byte order mark; save it as UTF-8 without")
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE_CHARS:
            raise CostCardError(f"{path}: line {number} is longer than {MAX_LINE_CHARS} characters")
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as error:  # TOMLDecodeError, or an absurd document
        raise CostCardError(_one_line(f"{path}: not valid TOML: {error}")) from None
    try:
        return CostCard.model_validate(doc)
    except ValidationError as error:
        raise CostCardError(_one_line(f"{path}: {_first_problem(error)}")) from None


def _first_problem(error: ValidationError) -> str:
    """`FIELD: PROBLEM` for the first error; an unknown key comes first, as a misspelt key
    also makes the key it should have been missing."""
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc, problem = _explain(first)
    return f"{_field(loc)}: {problem}" if loc else problem  # a rule over fields names its own


def _explain(error: ErrorDetails) -> tuple[Sequence[int | str], str]:
    """Where the problem is and what it is, in the card's words."""
    loc, kind = error["loc"], error["type"]
    if kind == "extra_forbidden":
        return loc, f"unknown key (allowed: {', '.join(_keys_at(loc[:-1]))})"
    if kind == "missing":
        return loc, "missing"
    if kind in TABLE_ERRORS:
        return loc, "must be a table"
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return (*loc, cause.key) if cause.key else loc, str(cause)
    return loc, error["msg"]


def _field(loc: Sequence[int | str]) -> str:
    """`program.one_off[1].amount` for ("program", "one_off", 1, "amount")."""
    if loc and loc[-1] == KEY_MARK:
        loc = loc[:-1]
    field = ""
    for part in loc:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            shown = part if part.isprintable() and part.strip() else repr(part)
            field += f".{shown}" if field else shown
    return field


def _keys_at(loc: Sequence[int | str]) -> list[str]:
    """The keys the table at `loc` may hold, as the card spells them (its JSON schema)."""
    schema = CostCard.model_json_schema()
    node = schema
    for part in loc:
        node = _resolved(node, schema)
        if isinstance(part, int):
            node = node["items"]
        elif "properties" in node:
            node = node["properties"][part]
        else:
            node = node["additionalProperties"]
    return sorted(_resolved(node, schema).get("properties", ()))


def _resolved(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The table a schema node describes: its reference followed, an optional one's (`anyOf`
    the table or null) taken."""
    for choice in node.get("anyOf", ()):
        if "$ref" in choice:
            node = choice
    reference = node.get("$ref")
    if reference is None:
        return node
    resolved: dict[str, Any] = schema["$defs"][reference.rsplit("/", 1)[-1]]
    return resolved


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())

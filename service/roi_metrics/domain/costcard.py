"""The cost card (CONTRACT.md §5): what the programme costs besides per-event AI costs, and
what a human resolution costs per channel. Loaded from TOML and validated field by field;
a bad card raises CostCardError naming the file, the field and the problem.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from roi_metrics.domain.money import AmountError, parse_amount_micros
from roi_metrics.domain.timebuckets import ROLLING_BY_WINDOW, Window

SECONDS_PER_MONTH: Final = 2_592_000
"""A month is 30 days."""
CHANNEL_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
CURRENCY_PATTERN: Final = re.compile(r"^[A-Z]{3}$")
DATE_PATTERN: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_CHANNEL: Final = "default"


class CostCardError(ValueError):
    """A cost card that cannot be used; str() is one line: file, field, problem."""


@dataclass(frozen=True, slots=True)
class OneOffCost:
    name: str
    amount_micros: int


@dataclass(frozen=True, slots=True)
class ProgramCosts:
    go_live: dt.date
    subscription_per_month_micros: int
    optimisation_per_month_micros: int
    amortize_months: int
    one_off: tuple[OneOffCost, ...] = ()

    @property
    def go_live_seconds(self) -> int:
        """Go-live as Unix seconds (midnight UTC)."""
        midnight = dt.datetime.combine(self.go_live, dt.time(), tzinfo=dt.UTC)
        return int(midnight.timestamp())

    @property
    def one_off_total_micros(self) -> int:
        return sum(cost.amount_micros for cost in self.one_off)


@dataclass(frozen=True, slots=True)
class CostCard:
    currency: str
    target_roi: float
    program: ProgramCosts
    human_cost_per_resolution: Mapping[str, int]
    """Micro-units per channel; the `default` entry serves every channel not listed."""

    def human_cost_per_resolution_micros(self, channel: str) -> int:
        table = self.human_cost_per_resolution
        return table[channel] if channel in table else table[DEFAULT_CHANNEL]


def _overlap_seconds(start: int, end: int, other_start: int, other_end: int) -> int:
    return max(0, min(end, other_end) - max(start, other_start))


def fixed_cost_micros(program: ProgramCosts, window: Window, now_seconds: int) -> Fraction:
    """The programme's fixed cost attributed to `window` at `now_seconds` (CONTRACT.md §7).

    Rolling windows: the recurring monthly costs for the part of [t - L, t] on or after
    go-live, plus the one-offs amortised evenly over [go-live, go-live + amortize_months x 30
    days] for the part of [t - L, t] inside that period. `all`: the recurring costs since
    go-live plus the one-offs in full (cash view). Before go-live: 0.
    """
    go_live = program.go_live_seconds
    if now_seconds <= go_live:
        return Fraction(0)
    monthly = program.subscription_per_month_micros + program.optimisation_per_month_micros
    if window is Window.ALL:
        recurring_seconds = now_seconds - go_live
        return Fraction(monthly * recurring_seconds, SECONDS_PER_MONTH) + Fraction(
            program.one_off_total_micros
        )
    start = now_seconds - ROLLING_BY_WINDOW[window].nominal_seconds
    recurring_seconds = _overlap_seconds(start, now_seconds, go_live, now_seconds)
    period = program.amortize_months * SECONDS_PER_MONTH
    amortised_seconds = _overlap_seconds(start, now_seconds, go_live, go_live + period)
    return Fraction(monthly * recurring_seconds, SECONDS_PER_MONTH) + Fraction(
        program.one_off_total_micros * amortised_seconds, period
    )


class _Reader:
    """Validates one TOML document, raising the first problem as one line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> CostCardError:
        return CostCardError(f"{self.path}: {field}: {problem}")

    def table(self, doc: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
        value = self.require(doc, key, field)
        if not isinstance(value, dict):
            raise self.fail(field, "must be a table")
        return value

    def require(self, doc: Mapping[str, Any], key: str, field: str) -> Any:
        if key not in doc:
            raise self.fail(field, "missing")
        return doc[key]

    def only(self, doc: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in doc:
            if key not in allowed:
                raise self.fail(
                    f"{prefix}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )

    def amount(self, doc: Mapping[str, Any], key: str, field: str) -> int:
        try:
            return parse_amount_micros(self.require(doc, key, field))
        except AmountError as error:
            raise self.fail(field, f"amount {error}") from None

    def typed(self, value: Any, field: str, check: Callable[[Any], bool], what: str) -> Any:
        if isinstance(value, bool) or not check(value):
            raise self.fail(field, f"must be {what}, got {value!r}")
        return value


def _go_live(reader: _Reader, value: Any) -> dt.date:
    field = "program.go_live"
    if isinstance(value, dt.datetime):
        raise reader.fail(field, "must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and DATE_PATTERN.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise reader.fail(field, f"must be a date (YYYY-MM-DD), got {value!r}")


def _program(reader: _Reader, doc: Mapping[str, Any]) -> ProgramCosts:
    program = reader.table(doc, "program", "program")
    allowed = {
        "go_live",
        "subscription_per_month",
        "optimisation_per_month",
        "amortize_months",
        "one_off",
    }
    reader.only(program, allowed, "program.")
    months = reader.typed(
        reader.require(program, "amortize_months", "program.amortize_months"),
        "program.amortize_months",
        lambda v: isinstance(v, int) and v >= 1,
        "a whole number >= 1",
    )
    one_off = program.get("one_off", [])
    if not isinstance(one_off, list):
        raise reader.fail("program.one_off", "must be an array of tables ([[program.one_off]])")
    costs = []
    for index, item in enumerate(one_off):
        field = f"program.one_off[{index}]"
        if not isinstance(item, dict):
            raise reader.fail(field, "must be a table with name and amount")
        reader.only(item, {"name", "amount"}, f"{field}.")
        name = reader.typed(
            reader.require(item, "name", f"{field}.name"),
            f"{field}.name",
            lambda v: isinstance(v, str) and v.strip() != "",
            "a non-empty string",
        )
        costs.append(OneOffCost(name, reader.amount(item, "amount", f"{field}.amount")))
    return ProgramCosts(
        go_live=_go_live(reader, reader.require(program, "go_live", "program.go_live")),
        subscription_per_month_micros=reader.amount(
            program, "subscription_per_month", "program.subscription_per_month"
        ),
        optimisation_per_month_micros=reader.amount(
            program, "optimisation_per_month", "program.optimisation_per_month"
        ),
        amortize_months=months,
        one_off=tuple(costs),
    )


def _channels(reader: _Reader, doc: Mapping[str, Any]) -> dict[str, int]:
    channels = reader.table(doc, "channels", "channels")
    if DEFAULT_CHANNEL not in channels:
        raise reader.fail("channels.default", "missing (it prices every channel not listed)")
    prices = {}
    for channel, entry in channels.items():
        field = f"channels.{channel}"
        if channel != DEFAULT_CHANNEL and not CHANNEL_PATTERN.match(channel):
            raise reader.fail(field, f"not a channel name (must match {CHANNEL_PATTERN.pattern})")
        if not isinstance(entry, dict):
            raise reader.fail(field, "must be a table")
        reader.only(entry, {"human_cost_per_resolution"}, f"{field}.")
        prices[channel] = reader.amount(
            entry, "human_cost_per_resolution", f"{field}.human_cost_per_resolution"
        )
    return prices


def parse_cost_card(text: str, path: Path) -> CostCard:
    """Validate a cost card's TOML text; `path` only names the file in errors."""
    reader = _Reader(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CostCardError(f"{path}: not valid TOML: {error}") from None
    reader.only(doc, {"currency", "target_roi", "program", "channels"}, "")
    currency = reader.typed(
        reader.require(doc, "currency", "currency"),
        "currency",
        lambda v: isinstance(v, str) and CURRENCY_PATTERN.match(v) is not None,
        'an ISO 4217 code such as "USD"',
    )
    target_roi = reader.typed(
        doc.get("target_roi", 1.0), "target_roi", lambda v: isinstance(v, int | float), "a number"
    )
    return CostCard(
        currency=currency,
        target_roi=float(target_roi),
        program=_program(reader, doc),
        human_cost_per_resolution=_channels(reader, doc),
    )


def load_cost_card(path: Path) -> CostCard:
    """Read and validate the cost card at `path`; CostCardError on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise CostCardError(f"{path}: cannot read: {reason}") from None
    return parse_cost_card(text, path)

"""The cost card (CONTRACT.md §5): what the programme costs besides per-event AI costs, and
what a human resolution costs per channel, as frozen pydantic models.

The models take a card as its TOML spells it (`subscription_per_month = "2000"`,
`[channels.NAME] human_cost_per_resolution = "6.50"`, amounts in currency units) and keep
every amount as integer micro-units (`subscription_per_month_micros`). A broken rule is a
FieldProblem whose text is the problem; roi_metrics.cardfile reads the file and makes the
first problem one line naming the file, the field and the problem. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import reprlib
from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Annotated, Final, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_extra_types.currency_code import ISO4217

from roi_metrics.domain.channels import CHANNEL_PATTERN, is_channel_name
from roi_metrics.domain.money import AmountError, parse_amount_micros
from roi_metrics.domain.timebuckets import ROLLING_BY_WINDOW, Window

SECONDS_PER_MONTH: Final = 2_592_000
"""A month is 30 days."""
DEFAULT_CHANNEL: Final = "default"
MIN_TARGET_ROI: Final = -1.0
"""ROI = (value - cost) / cost is never below -1 while value is not negative, so a target of
-1 or less would never fire the programme ROI alert: refused."""
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class CostCardError(ValueError):
    """A cost card that cannot be used; str() is one line: file, field, problem."""


class FieldProblem(ValueError):
    """One field of a card breaks a rule; str() is the problem ("must be a table"), `key` the
    entry of the field it is about when that entry is absent (channels -> default)."""

    def __init__(self, problem: str, key: str | None = None) -> None:
        super().__init__(problem)
        self.key = key


def _got(value: object) -> str:
    return f"got {reprlib.repr(value)}"


def _amount(value: object) -> int:
    try:
        return parse_amount_micros(value)
    except AmountError as error:
        raise FieldProblem(f"amount {error}") from None


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise FieldProblem("must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise FieldProblem(f"must be a date (YYYY-MM-DD), {_got(value)}")


def _whole_months(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldProblem(f"must be a whole number >= 1, {_got(value)}")
    return value


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem(f"must be a non-empty string, {_got(value)}")
    return value


def _array_of_tables(value: object) -> tuple[object, ...]:
    if not isinstance(value, list | tuple):
        raise FieldProblem("must be an array of tables ([[program.one_off]])")
    return tuple(value)


def _channel(value: object) -> str:
    if not isinstance(value, str) or not is_channel_name(value):
        raise FieldProblem(f"not a channel name (must match {CHANNEL_PATTERN})")
    return value


def _currency(value: object, iso4217: ValidatorFunctionWrapHandler) -> str:
    """An ISO 4217 code as pycountry lists it, written in capitals ("usd" is refused)."""
    problem = FieldProblem(f'must be an ISO 4217 code such as "USD", {_got(value)}')
    if not isinstance(value, str) or value != value.upper():
        raise problem
    try:
        code: str = iso4217(value)
    except ValidationError:
        raise problem from None
    return code


def _target_roi(value: object) -> float:
    target = _number(value)
    if target <= MIN_TARGET_ROI:
        raise FieldProblem(
            f"must be greater than -1 (an ROI is never below -1, so the programme ROI alert "
            f"would never fire), {_got(value)}"
        )
    return target


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldProblem(f"must be a number, {_got(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FieldProblem(f"must be a finite number, {_got(value)}")
    return number


def _ratio(value: object) -> float:
    number = _number(value)
    if not 0 <= number <= 1:
        raise FieldProblem(f"must be between 0 and 1, {_got(value)}")
    return number


def _positive(value: object) -> float:
    number = _number(value)
    if number <= 0:
        raise FieldProblem(f"must be greater than 0, {_got(value)}")
    return number


def _tolerance(value: object) -> float:
    number = _number(value)
    if not 0 <= number < 1:
        raise FieldProblem(f"must be at least 0 and below 1, {_got(value)}")
    return number


Micros = Annotated[int, BeforeValidator(_amount)]
"""An amount written in currency units (a decimal string or a number), kept as micro-units."""
Currency = Annotated[ISO4217, WrapValidator(_currency)]
ChannelName = Annotated[str, BeforeValidator(_channel)]


class _CardModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class OneOffCost(_CardModel):
    name: Annotated[str, BeforeValidator(_name)]
    amount_micros: Micros = Field(validation_alias="amount")


class ProgramCosts(_CardModel):
    go_live: Annotated[dt.date, BeforeValidator(_date)]
    """A UTC date: a TOML date or a "YYYY-MM-DD" string, never a date-time."""
    subscription_per_month_micros: Micros = Field(validation_alias="subscription_per_month")
    optimisation_per_month_micros: Micros = Field(validation_alias="optimisation_per_month")
    amortize_months: Annotated[int, BeforeValidator(_whole_months)]
    one_off: Annotated[tuple[OneOffCost, ...], BeforeValidator(_array_of_tables)] = ()

    @property
    def go_live_seconds(self) -> int:
        """Go-live as Unix seconds (midnight UTC)."""
        midnight = dt.datetime.combine(self.go_live, dt.time(), tzinfo=dt.UTC)
        return int(midnight.timestamp())

    @property
    def monthly_micros(self) -> int:
        """The recurring costs of a month: subscription and optimisation."""
        return self.subscription_per_month_micros + self.optimisation_per_month_micros

    @property
    def one_off_total_micros(self) -> int:
        return sum(cost.amount_micros for cost in self.one_off)


class ChannelCosts(_CardModel):
    human_cost_per_resolution_micros: Micros = Field(validation_alias="human_cost_per_resolution")
    go_live: Annotated[dt.date | None, BeforeValidator(_date)] = None
    """The channel's own go-live (CONTRACT.md §11); the programme's when absent."""
    resolution_start: Annotated[float | None, BeforeValidator(_ratio)] = None
    """The AI resolution ratio expected on the channel's first day; default's when absent."""
    resolution_target: Annotated[float | None, BeforeValidator(_ratio)] = None
    """The AI resolution ratio expected once ramped up; default's when absent."""


class Ramp(_CardModel):
    """How the AI is expected to learn after a channel goes live (CONTRACT.md §11)."""

    days_to_95: Annotated[float, BeforeValidator(_positive)]
    """Days until the AI is 95 % of the way from start to target."""
    tolerance: Annotated[float, BeforeValidator(_tolerance)]
    """The alert fires when even the upper bound is below expected x (1 - tolerance)."""


def _bills(value: object) -> str:
    if value not in BILLS:
        raise FieldProblem(f'must be "assumed" or "confirmed", {_got(value)}')
    assert isinstance(value, str)
    return value


BILLS: Final = ("assumed", "confirmed")


class Vendor(_CardModel):
    """An AI vendor that bills per resolution (CONTRACT.md §13): a reconciliation view of
    what it charges; nothing here is added to the costs (they arrive as cost events)."""

    price_per_resolution_micros: Micros = Field(validation_alias="price_per_resolution")
    bills: Annotated[str, BeforeValidator(_bills)] = "assumed"
    """"assumed": every AI resolution is billed; "confirmed": confirmed ones only."""

    @property
    def bills_assumed(self) -> bool:
        return self.bills == "assumed"


class ChannelRamp(NamedTuple):
    """A channel's ramp, every field resolved (its own, else the default channel's)."""

    go_live_seconds: int
    start: float
    target: float
    days_to_95: float


class RampPoint(NamedTuple):
    progress: float
    """1 - exp(-3 d / days_to_95), d = days since the channel's go-live."""
    expected: float
    """start + (target - start) x progress: the resolution ratio expected at that point."""


def _priced_by_default(channels: Mapping[str, ChannelCosts]) -> Mapping[str, ChannelCosts]:
    if DEFAULT_CHANNEL not in channels:
        raise FieldProblem("missing (it prices every channel not listed)", key=DEFAULT_CHANNEL)
    return MappingProxyType(dict(channels))


class CostCard(_CardModel):
    currency: Currency
    target_roi: Annotated[float, BeforeValidator(_target_roi)] = 1.0
    """The programme ROI alert threshold (24h window); above -1."""
    program: ProgramCosts
    channels: Annotated[Mapping[ChannelName, ChannelCosts], AfterValidator(_priced_by_default)]
    """The `[channels.NAME]` tables; `default` serves every channel not listed."""
    ramp: Ramp | None = None
    """Without it, nothing of CONTRACT.md §11 is exported."""
    vendor: Vendor | None = None
    """Without it, nothing of CONTRACT.md §13 is exported."""

    @model_validator(mode="after")
    def _ramp_complete(self) -> CostCard:
        """With [ramp], every channel resolves a start and a target with start <= target;
        without it, no channel sets them (they would silently do nothing)."""
        for name, costs in self.channels.items():
            given = [
                f
                for f in ("go_live", "resolution_start", "resolution_target")
                if getattr(costs, f) is not None
            ]
            if self.ramp is None and given:
                raise FieldProblem(f"channels.{name}.{given[0]}: needs a [ramp] section")
        if self.ramp is None:
            return self
        default = self.channels[DEFAULT_CHANNEL]
        for field in ("resolution_start", "resolution_target"):
            if getattr(default, field) is None:
                raise FieldProblem(
                    f"channels.default.{field}: missing ([ramp] needs the default channel's "
                    "start and target)"
                )
        for name in self.channels:
            ramp = self.channel_ramp(name)
            if ramp is not None and ramp.start > ramp.target:
                costs = self.channels[name]
                start_from = "" if costs.resolution_start is not None else " (channels.default's)"
                target_from = "" if costs.resolution_target is not None else " (channels.default's)"
                raise FieldProblem(
                    f"channels.{name}: resolution_start ({ramp.start}){start_from} is above "
                    f"resolution_target ({ramp.target}){target_from}"
                )
        return self

    @property
    def ramp_tolerance(self) -> float | None:
        """The [ramp]'s tolerance (CONTRACT.md §11); None without [ramp]."""
        return None if self.ramp is None else self.ramp.tolerance

    def channel_ramp(self, channel: str) -> ChannelRamp | None:
        """`channel`'s ramp: start and target its own or else the default channel's; go-live
        its own, else (a channel not listed) the default channel's, else the programme's.
        None without [ramp]."""
        if self.ramp is None:
            return None
        default = self.channels[DEFAULT_CHANNEL]
        own = self.channels.get(channel, default)
        start = (
            own.resolution_start if own.resolution_start is not None else default.resolution_start
        )
        target = (
            own.resolution_target
            if own.resolution_target is not None
            else default.resolution_target
        )
        assert start is not None and target is not None  # checked when the card was made
        # a listed channel's own go-live, else the programme's; the default channel's serves
        # the channels not listed (as its prices and ratios do)
        go_live = own.go_live or (None if channel in self.channels else default.go_live)
        go_live = go_live or self.program.go_live
        midnight = dt.datetime.combine(go_live, dt.time(), tzinfo=dt.UTC)
        return ChannelRamp(int(midnight.timestamp()), start, target, self.ramp.days_to_95)

    @property
    def human_cost_per_resolution(self) -> Mapping[str, int]:
        """Micro-units per channel; the `default` entry serves every channel not listed."""
        return MappingProxyType(
            {name: costs.human_cost_per_resolution_micros for name, costs in self.channels.items()}
        )

    def human_cost_per_resolution_micros(self, channel: str) -> int:
        listed = channel if channel in self.channels else DEFAULT_CHANNEL
        return self.channels[listed].human_cost_per_resolution_micros


def ramp_point(ramp: ChannelRamp, now_seconds: float) -> RampPoint | None:
    """Where the channel stands on its expected learning curve at `now_seconds`
    (CONTRACT.md §11); None before its go-live."""
    days = (now_seconds - ramp.go_live_seconds) / 86400
    if days < 0:
        return None
    progress = 1 - math.exp(-3 * days / ramp.days_to_95)
    return RampPoint(progress, ramp.start + (ramp.target - ramp.start) * progress)


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
    monthly = program.monthly_micros
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

"""Exact money: amounts are kept as integer micro-units (10^-6), never through a float or a
rounding decimal context."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Final

MICROS_PER_UNIT: Final = 1_000_000
DECIMAL_PLACES: Final = 6
MAX_AMOUNT_UNITS: Final = 10**9
"""Largest accepted single amount. The apply checks every sum's headroom before it writes,
so this bound is for sanity, not for overflow (an overflowing event is dead-lettered)."""
MAX_AMOUNT_MICROS: Final = MAX_AMOUNT_UNITS * MICROS_PER_UNIT
AMOUNT_PATTERN: Final = r"^(?:(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,6})?|1000000000(?:\.0{1,6})?)$"
"""An amount written as a string: plain ASCII digits, no sign, no exponent, no leading zero,
at most 6 decimal places, at most 10^9. The published schemas carry this very pattern."""
_AMOUNT: Final = re.compile(AMOUNT_PATTERN)
_PLAIN: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class AmountError(ValueError):
    """An amount that is not a non-negative decimal of at most 6 decimal places and 10^9."""


def micros_of_decimal(coefficient: int, exponent: int, shown: str = "") -> int:
    """The micro-units of coefficient * 10**exponent, exactly.

    >>> micros_of_decimal(125, -1)
    12500000

    Raises AmountError when the value is negative, has more than 6 decimal places or is
    above MAX_AMOUNT_UNITS, ending with `, got <shown>` when `shown` is given. Trailing
    zeros of the coefficient do not count as places.
    """
    got = f", got {shown[:40]!r}" if shown else ""
    if coefficient < 0:
        raise AmountError(f"must not be negative{got}")
    if coefficient == 0:
        return 0
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    if exponent < -DECIMAL_PLACES:
        raise AmountError(f"has more than {DECIMAL_PLACES} decimal places{got}")
    if len(str(coefficient)) + exponent > len(str(MAX_AMOUNT_UNITS)):
        raise AmountError(f"must be at most {MAX_AMOUNT_UNITS}{got}")
    micros: int = coefficient * 10 ** (exponent + DECIMAL_PLACES)
    if micros > MAX_AMOUNT_MICROS:
        raise AmountError(f"must be at most {MAX_AMOUNT_UNITS}{got}")
    return micros


def parse_amount_micros(value: object) -> int:
    """An amount given as a string (AMOUNT_PATTERN), an integer, a float or a Decimal, as
    integer micro-units.

    >>> parse_amount_micros("12.50")
    12500000

    A float is read through its shortest repr (0.1 is 0.1, not its binary expansion).
    Raises AmountError for anything else, negatives, non-finite values, more than 6 decimal
    places and amounts above MAX_AMOUNT_UNITS.
    """
    if isinstance(value, str):
        if not _AMOUNT.fullmatch(value):
            _explain(value)
        whole, _, fraction = value.partition(".")
        return int(whole) * MICROS_PER_UNIT + int(fraction.ljust(DECIMAL_PLACES, "0"))
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise AmountError(f"must be a decimal number or string, got {type(value).__name__}")
    if isinstance(value, int):
        return micros_of_decimal(value, 0, repr(value))
    amount: Decimal = Decimal(repr(value)) if isinstance(value, float) else value
    if not amount.is_finite():
        raise AmountError(f"must be finite, got {value!r}")
    sign, digits, exponent = amount.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    signed = -coefficient if sign and coefficient else coefficient
    return micros_of_decimal(signed, int(exponent), repr(value))


def _explain(text: str) -> None:
    """Raise the most specific AmountError for a string AMOUNT_PATTERN refuses."""
    plain = _PLAIN.fullmatch(text)
    if plain is not None and len(text) <= 64:
        sign, whole, fraction = plain.groups()
        coefficient = int(whole + (fraction or ""))
        micros_of_decimal(-coefficient if sign else coefficient, -len(fraction or ""), text)
    raise AmountError(
        f'must be written like "12.50" (plain digits, no leading zero, at most '
        f"{DECIMAL_PLACES} decimal places), got {text[:40]!r}"
    )


def micros_to_units(micros: int | Fraction) -> Fraction:
    """Micro-units as an exact fraction of currency units."""
    return Fraction(micros) / MICROS_PER_UNIT


def units_text(micros: int | Fraction) -> str:
    """Exact currency units with 6 decimals ("12.500000", "-0.250000"), as `report --json`
    writes money: micro-units are the finest money kept; an amortised fixed cost finer than
    that is rounded half to even at the 6th decimal."""
    whole = round(micros)
    units, rest = divmod(abs(whole), MICROS_PER_UNIT)
    return f"{'-' if whole < 0 else ''}{units}.{rest:0{DECIMAL_PLACES}d}"

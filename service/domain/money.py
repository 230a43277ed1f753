"""Exact money: amounts are parsed as decimals and kept as integer micro-units (10^-6)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

MICROS_PER_UNIT: Final = 1_000_000
MAX_AMOUNT_UNITS: Final = 10**9
"""Largest accepted single amount: 10^15 micro-units, so 9,000 of them still fit in the
signed 64-bit integers Redis sums in (an overflow there would abort an apply midway)."""
DECIMAL_STRING: Final = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
"""A decimal written plainly: digits, an optional fraction; no exponent, no spaces."""


class AmountError(ValueError):
    """An amount that is not a finite, non-negative decimal with at most 6 decimal places."""


def parse_amount_micros(value: object) -> int:
    """Parse a decimal amount given as a string or a number into integer micro-units.

    >>> parse_amount_micros("12.50")
    12500000

    Raises AmountError for negatives, non-finite values, booleans, more than 6 decimal places
    (an amount the ledger could not hold exactly) and amounts above MAX_AMOUNT_UNITS.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise AmountError(f"must be a decimal number or string, got {type(value).__name__}")
    if isinstance(value, str) and not DECIMAL_STRING.match(value):
        raise AmountError(f'must be written like "12.50", got {value!r}')
    try:
        # A float goes through its shortest repr, so 0.1 reads as 0.1, not its binary value.
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise AmountError(f"is not a decimal number: {value!r}") from None
    if not amount.is_finite():
        raise AmountError(f"must be finite, got {value!r}")
    if amount < 0:
        raise AmountError(f"must not be negative, got {value!r}")
    if amount > MAX_AMOUNT_UNITS:
        raise AmountError(f"must be at most {MAX_AMOUNT_UNITS}, got {value!r}")
    micros = amount * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise AmountError(f"has more than 6 decimal places: {value!r}")
    return int(micros)


def micros_to_units(micros: int | Fraction) -> Fraction:
    """Micro-units as an exact fraction of currency units."""
    return Fraction(micros) / MICROS_PER_UNIT

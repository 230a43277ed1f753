from decimal import Decimal

import pytest
from roi_metrics.domain.money import AmountError, micros_to_units, parse_amount_micros


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("12.50", 12_500_000),
        ("0", 0),
        ("0.000001", 1),
        (7, 7_000_000),
        (0.1, 100_000),  # the float's shortest repr, not its binary expansion
        (Decimal("123456789.123456"), 123_456_789_123_456),
        ("1000000000", 10**15),
    ],
)
def test_amounts_become_exact_micro_units(value: object, micros: int) -> None:
    assert parse_amount_micros(value) == micros


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-5", "must not be negative"),
        (-0.5, "must not be negative"),
        ("0.0000001", "more than 6 decimal places"),
        ("1e3", 'must be written like "12.50"'),
        (" 12.5", 'must be written like "12.50"'),
        ("", 'must be written like "12.50"'),
        (True, "got bool"),
        (None, "got NoneType"),
        (float("nan"), "must be finite"),
        ("12.5.1", 'must be written like "12.50"'),
        (Decimal("Infinity"), "must be finite"),
        ("1000000000.000001", "at most 1000000000"),
    ],
)
def test_bad_amounts_are_refused(value: object, problem: str) -> None:
    with pytest.raises(AmountError, match=problem.replace("(", r"\(")):
        parse_amount_micros(value)


def test_micros_to_units_is_exact() -> None:
    assert micros_to_units(1) * 3 == Decimal("0.000003")
    assert micros_to_units(6_500_000) == Decimal("6.5")

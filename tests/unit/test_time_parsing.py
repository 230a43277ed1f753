"""The RFC 3339 parser of the contract against Python's datetime as the reference."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from roi_metrics.ingest.contract import TimeMicros

PARSE = TypeAdapter(TimeMicros).validate_python
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@settings(deadline=None)
@given(
    moment=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
    digits=st.integers(0, 20),
    zulu=st.sampled_from(["Z", "z", "+00:00"]),
)
def test_any_instant_with_any_offset_and_fraction(
    moment: dt.datetime, offset_minutes: int, digits: int, zulu: str
) -> None:
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    text = aware.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{aware.microsecond:06d}{'98765432109876'}"[:digits]
    if offset_minutes == 0:
        text += zulu
    else:
        sign = "+" if offset_minutes > 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        text += f"{sign}{hours:02d}:{minutes:02d}"
    kept = int(f"{aware.microsecond:06d}"[:digits].ljust(6, "0")) if digits else 0
    expected = (aware.replace(microsecond=kept) - EPOCH) // dt.timedelta(microseconds=1)
    assert PARSE(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T00:00:00Z",  # no such date
        "2026-03-01T24:00:00Z",
        "2026-03-01T10:60:00Z",
        "2026-03-01T10:00:61Z",
        "2026-02-29T10:00:00Z",  # 2026 is not a leap year
        "0000-01-01T00:00:00Z",
        "2026-03-01T10:00:00Z\n",
        "\u0662026-03-01T10:00:00Z",
        "2026-03-01T10:00:00+24:00",
        "2026-03-01 10:00:00Z",
        "2026-03-01T10:00:00",
        "2026-03-01T10:00Z",
        "2026-03-01T10:00:00.Z",
        "2026-03-01T10:00:00.12a4Z",
        " 2026-03-01T10:00:00Z",
    ],
)
def test_what_is_not_rfc_3339_with_an_offset_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        PARSE(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-12-31T23:59:60Z", dt.datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)),
        (
            "2016-12-31T15:59:60.5-08:00",
            dt.datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        ),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=dt.UTC)),
        ("0001-01-01T01:00:00+01:00", dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
        ("9999-12-31T23:59:59-23:59", dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
    ],
)
def test_leap_seconds_leap_days_and_the_calendar_ends(text: str, expected: dt.datetime) -> None:
    shift = 23 * 3600 + 59 * 60 if text.endswith("-23:59") else 0
    micros = (expected - EPOCH) // dt.timedelta(microseconds=1) + shift * 1_000_000
    assert PARSE(text) == micros

"""Generated CloudEvents for the property tests: valid ones in every form the contract
allows, and ones with one thing wrong (a bad value, a missing attribute, odd types), and
records made of them, mutated byte by byte."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from roi_metrics.domain.events import EventType

CHANNEL = "web"


def dumps(value: Any) -> str:
    """JSON text with Decimals written as exact JSON numbers."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


ascii_digits = st.text("0123456789", min_size=1, max_size=3)
numbers = st.builds(
    lambda coefficient, exponent: Decimal(f"{coefficient}E{exponent}"),
    st.integers(-(10**17), 10**17),
    st.integers(-12, 12),
)
odd_values = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=8), st.just([]), st.just({})
)


def maybe(valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
    """A valid value nine times in ten, else a known-bad or an odd one."""
    bad = st.one_of(st.sampled_from(invalid), odd_values) if invalid else odd_values
    return st.integers(0, 9).flatmap(lambda roll: bad if roll == 5 else valid)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 text: real instants in every form, or with one thing wrong."""
    moment = draw(st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)))
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".1234567891234"]))
    zone = draw(st.sampled_from(["Z", "z", "+02:00", "-23:59", "+00:00"]))
    text = f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S") + fraction + zone
    if draw(st.integers(0, 9)) == 5:
        text = text[:17] + "60" + text[19:]  # a leap second
    if draw(st.integers(0, 3)) != 2:
        return text
    year, month, day = (
        draw(st.integers(0, 9999)),
        draw(st.integers(0, 13)),
        draw(st.integers(0, 32)),
    )
    mutations = [
        text + "\n",
        " " + text,
        text.replace("2", "\u0662", 1),
        text.replace("T", " ", 1),
        text[:10],
        text[:19],
        text[:19] + ".",
        text[:19] + "+0200",
        text[:19] + "+24:00",
        text[:19] + "+02:60",
        text[:11] + "24" + text[13:],
        text[:14] + "60" + text[16:],
        text[:17] + "61" + text[19:],
        f"{year:04d}-{month:02d}-{day:02d}" + text[10:],
    ]
    return draw(st.sampled_from(mutations))


valid_amounts = st.builds(
    lambda coefficient, exponent: Decimal(f"{coefficient}E{exponent}"),
    st.integers(0, 10**9),
    st.integers(-6, 0),
)
amounts = st.one_of(
    valid_amounts,
    valid_amounts.map(lambda amount: f"{amount:f}"),
    numbers,
    numbers.map(lambda number: str(abs(number))),
    st.sampled_from(
        [
            "0",
            "-0",
            "12.50",
            "1e3",
            " 1",
            "01.5",
            "1.1234567",
            "1.000000",
            "1000000000",
            "1000000000.000001",
            "999999999.999999",
            "\u0661\u0662",
            "12.",
            ".5",
            "1.5\n",
        ]
    ),
)

DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "support.conversation.started": st.fixed_dictionaries(
        {"handled_by": maybe(st.sampled_from(["ai", "human"]), "bot", "AI")}
    ),
    "support.conversation.escalated": st.fixed_dictionaries(
        {}, optional={"reason": maybe(st.text(max_size=70), "x" * 65)}
    ),
    "support.conversation.resolved": st.fixed_dictionaries(
        {"resolved_by": maybe(st.sampled_from(["ai", "human"]), "none")},
        optional={"confirmation": maybe(st.sampled_from(["assumed", "confirmed"]), "yes")},
    ),
    "support.conversation.reopened": st.fixed_dictionaries({}),
    "support.csat.recorded": st.fixed_dictionaries(
        {"score": maybe(st.integers(1, 5), Decimal("4.0"), Decimal("4.5"), Decimal("5E0"), 0, 6)}
    ),
    "support.cost.recorded": st.fixed_dictionaries(
        {
            "amount": amounts,
            "currency": maybe(st.just("USD"), "usd", "US", "USD\n", "\uff35SD"),
            "category": maybe(
                st.sampled_from(["ai_usage", "platform_fee", "human_handling", "other"]), "tokens"
            ),
        }
    ),
    "support.revenue.attributed": st.fixed_dictionaries(
        {"amount": amounts, "currency": maybe(st.just("USD"), "EUR\n", "usd")}
    ),
}
URI_CHARACTERS = "abcXYZ019-._~:/?#[]@!$&'()*+,;=%"


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from([event_type.value for event_type in EventType]))
    data = draw(DATA[event_type])
    if draw(st.booleans()):
        data["channel"] = draw(st.sampled_from([CHANNEL, None]))
    if draw(st.integers(0, 9)) == 5:
        data["extra"] = draw(st.recursive(odd_values, lambda inner: st.lists(inner, max_size=3)))
    event: dict[str, Any] = {
        "specversion": draw(maybe(st.just("1.0"), "1.0\n", "0.3", Decimal("1.0"))),
        "id": draw(maybe(st.text(min_size=1, max_size=130), "", "x" * 129)),
        "source": draw(
            maybe(
                st.text(st.sampled_from(URI_CHARACTERS), min_size=1, max_size=260),
                "/a b",
                "/caf\u00e9",
                "/x\n",
                "",
            )
        ),
        "type": event_type,
        "time": draw(maybe(timestamps(), "2026-03-01T12:00:00", "")),
        "subject": draw(maybe(st.text(min_size=1, max_size=130), "")),
        "data": draw(odd_values) if draw(st.integers(0, 19)) == 5 else data,
    }
    for name in list(event):
        if name != "type" and draw(st.integers(0, 29)) == 5:
            del event[name]  # a missing attribute
    if draw(st.integers(0, 9)) == 5:
        event["customer"] = draw(odd_values)  # an extension attribute
    return event


def _mutations(value: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0 and value:  # flip, drop or insert one byte
        at = draw(st.integers(0, len(value) - 1))
        return value[:at] + bytes([draw(st.integers(0, 255))]) + value[at + 1 :]
    if kind == 1 and value:
        at = draw(st.integers(0, len(value) - 1))
        return value[:at] + value[at + 1 :]
    if kind == 2:
        return draw(st.binary(max_size=64)) + value
    if kind == 3:
        return value + draw(st.binary(max_size=64))
    if kind == 4:
        depth = draw(st.integers(1, 5000))
        return b"[" * depth + value + b"]" * draw(st.integers(0, depth))
    return value


@st.composite
def records(draw: st.DrawFn) -> bytes:
    source = draw(st.one_of(events().map(dumps), st.lists(events(), max_size=3).map(dumps)))
    value = source.encode()
    for _ in range(draw(st.integers(0, 3))):
        value = _mutations(value, draw)
    return value

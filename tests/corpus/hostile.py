"""The hostile corpus: named records that once stopped the pipeline or slipped past the
contract (issue 9), with what must become of each.

Every record says which channel topic it goes to, its key, value and headers, the dead
letters it must give (one reason per rejected record or event, in any order) and the valid
events it carries (which must be counted, the others of its batch notwithstanding).
Records are built here rather than stored as files: several are a megabyte or more, and
each is easier to read as the line that makes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.cloudevents import encode, event, rfc3339

MIB = 1024 * 1024
MAX_AMOUNT = "1000000000"
OVERFLOW_CHANNEL = "overflow"
GARBAGE_CHANNELS = [f"garbage-{number}" for number in range(3)]
"""Topics that only ever carry invalid records: none may become a channel."""


@dataclass
class Hostile:
    name: str
    channel: str
    value: bytes | None
    key: bytes | None = b"hostile"
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    """The reason of each dead letter the record must give."""
    counted: list[dict[str, Any]] = field(default_factory=list)
    """The events of the record that must be counted."""


class Corpus:
    """Builds the corpus for events around `now` (Unix seconds)."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.serial = 0
        self.records: list[Hostile] = []

    def started(self, channel: str, **over: Any) -> dict[str, Any]:
        """A valid conversation start on `channel`, with `over` replacing attributes."""
        self.serial += 1
        body = event(
            "conversation.started",
            f"hostile-{self.serial}",
            f"hostile-conv-{self.serial}",
            self.now - 30,
            f"/{channel}/hostile",
            handled_by="ai",
        )
        body.update(over)
        return body

    def cost(self, channel: str, amount: Any, **over: Any) -> dict[str, Any]:
        body = self.started(channel, type="support.cost.recorded")
        body["data"] = {"amount": amount, "currency": "USD", "category": "ai_usage"}
        body.update(over)
        return body

    def add(self, name: str, channel: str, value: bytes | None, *reasons: str, **more: Any) -> None:
        self.records.append(Hostile(name, channel, value, reasons=list(reasons), **more))

    def text(self, channel: str, **over: Any) -> str:
        return json.dumps(self.started(channel, **over))

    def build(self) -> list[Hostile]:  # noqa: PLR0915  (one line per case)
        web, slack = "web", "slack"
        add, text = self.add, self.text

        # --- what stopped the pipeline --------------------------------------------------
        add("huge exponent alone", web, b"1e9999999999999999999", "invalid_envelope")
        add("990 nested arrays", web, b"[" * 990 + b"]" * 990, "invalid_json")
        add("100000 open arrays", web, b"[" * 100_000, "invalid_json")
        # a record is at most 1 MiB, key and value (CONTRACT §1)
        add("1.1 MB key on an invalid record", web, b"{oops", "too_large", key=b"k" * 1_100_000)
        add(
            "1.1 MB key on a valid event",
            web,
            encode(self.started(web)),
            "too_large",
            key=b"k" * 1_100_000,
        )
        add("record just over 1 MiB", web, encode(self.started(web, pad="x" * MIB)), "too_large")
        padding = "x" * (MIB - 400)
        add(
            "invalid record just under 1 MiB",
            web,
            b'{"pad":"' + padding.encode() + b'"',
            "invalid_json",
        )
        add("1001 events in one batch", slack, encode([self.started(slack)] * 1001), "too_large")

        # --- encodings and JSON itself ---------------------------------------------------
        add("NaN", web, text(web).replace('"hostile-', 'NaN, "x": "', 1).encode(), "invalid_json")
        add(
            "Infinity as id",
            web,
            text(web, id="@").replace('"@"', "Infinity").encode(),
            "invalid_json",
        )
        add(
            "-Infinity amount",
            web,
            json.dumps(self.cost(web, "@")).replace('"@"', "-Infinity").encode(),
            "invalid_json",
        )
        add(
            "duplicate id",
            web,
            text(web).replace('"id"', '"id": "dup", "id"', 1).encode(),
            "invalid_json",
        )
        add(
            "duplicate key inside data",
            web,
            text(web).replace('"handled_by"', '"handled_by": "human", "handled_by"').encode(),
            "invalid_json",
        )
        add("UTF-16", web, text(web).encode("utf-16"), "invalid_json")
        add("UTF-32", web, text(web).encode("utf-32"), "invalid_json")
        add("UTF-8 BOM", web, b"\xef\xbb\xbf" + text(web).encode(), "invalid_json")
        add(
            "invalid UTF-8 byte",
            web,
            text(web).encode().replace(b"hostile-conv", b"hostile\xffconv"),
            "invalid_json",
        )
        add(
            "overlong UTF-8",
            web,
            text(web).encode().replace(b"/hostile", b"\xc0\xafhostile"),
            "invalid_json",
        )
        add(
            "lone surrogate in subject",
            web,
            text(web).replace('"hostile-conv-', '"\\ud800-', 1).encode(),
            "invalid_json",
        )
        add(
            "lone surrogate in an extension",
            web,
            text(web, note="@").replace('"@"', '"\\udfff"').encode(),
            "invalid_json",
        )
        add(
            "raw control character in a string",
            web,
            text(web).replace("hostile-conv", "hostile\u0001conv").encode(),
            "invalid_json",
        )
        add("trailing garbage", web, text(web).encode() + b" }", "invalid_json")
        add("two documents", web, (text(web) + text(web)).encode(), "invalid_json")
        add("empty value", web, b"", "invalid_json")
        add("tombstone", web, None, "invalid_json")
        add("whitespace only", web, b" \n\t ", "invalid_json")
        add("empty batch", web, b"[]")

        # --- envelope and data strictness --------------------------------------------------
        stamp = rfc3339(self.now - 60)
        arabic = stamp.replace("2", "\u0662", 1)
        add("non-ASCII digit in time", web, text(web, time=arabic).encode(), "invalid_envelope")
        add(
            "trailing newline in time",
            web,
            text(web, time=stamp + "\n").encode(),
            "invalid_envelope",
        )
        add("time without offset", web, text(web, time=stamp[:-1]).encode(), "invalid_envelope")
        add(
            "no such date", web, text(web, time="2026-02-30T10:00:00Z").encode(), "invalid_envelope"
        )
        add("id as a number", web, text(web, id=17).encode(), "invalid_envelope")
        add(
            "subject of 129 characters",
            web,
            text(web, subject="s" * 129).encode(),
            "invalid_envelope",
        )
        add("source with a newline", web, text(web, source="/web/x\n").encode(), "invalid_envelope")
        add("amount -0 as a string", web, encode(self.cost(web, "-0")), "invalid_data")
        add(
            "amount of 30 significant digits",
            web,
            encode(self.cost(web, "0.10000000000000000000000000001")),
            "invalid_data",
        )
        add(
            "amount 1e-1000 read as 0",
            web,
            json.dumps(self.cost(web, "@")).replace('"@"', "1e-1000").encode(),
            "invalid_data",
        )
        add(
            "amount with a huge exponent",
            web,
            json.dumps(self.cost(web, "@")).replace('"@"', "1e999999999").encode(),
            "invalid_data",
        )
        add("amount string with an exponent", web, encode(self.cost(web, "1e3")), "invalid_data")
        add("amount with a leading zero", web, encode(self.cost(web, "012.5")), "invalid_data")
        add(
            "amount over the maximum",
            web,
            encode(self.cost(web, "1000000000.000001")),
            "invalid_data",
        )
        score = self.started(web, type="support.csat.recorded", data={"score": "4"})
        add("score as a string", web, encode(score), "invalid_data")
        half = self.started(web, type="support.csat.recorded", data={"score": "@"})
        add("score 4.5", web, json.dumps(half).replace('"@"', "4.5").encode(), "invalid_data")
        markup = self.started(web, data={"handled_by": "ai", "channel": "[/oops]"})
        add("Rich markup in data.channel", web, encode(markup), "channel_mismatch")
        euro = self.cost(web, "1.5")
        euro["data"]["currency"] = "EUR"
        add("another currency", web, encode(euro), "currency_mismatch")
        add("an hour ahead", web, text(web, time=rfc3339(self.now + 3600)).encode(), "future_time")

        # --- valid though odd: counted -----------------------------------------------------
        leap = self.started(web, time=rfc3339(self.now - 120)[:17] + "60Z")
        add("leap second", web, encode(leap), counted=[leap])
        fine = self.started(web, time=rfc3339(self.now - 90)[:-1] + "1234567890123Z")
        add("13 fraction digits", web, encode(fine), counted=[fine])
        four = self.started(web, type="support.csat.recorded", data={"score": "@"})
        add(
            "score 4.0",
            web,
            json.dumps(four).replace('"@"', "4.0").encode(),
            counted=[{**four, "data": {"score": 4}}],
        )
        nul = self.started(web, subject="nul\u0000in subject")
        add("NUL in a subject", web, encode(nul), counted=[nul])
        deep: Any = "bottom"
        for _ in range(50):
            deep = [deep]
        nested = self.started(web, extension=deep)
        add("50 levels in an extension", web, encode(nested), counted=[nested])
        binary_key = self.started(web)
        add(
            "a key that is not UTF-8",
            web,
            encode(binary_key),
            key=b"\xff\xfe\x00",
            counted=[binary_key],
        )
        with_headers = self.started(web)
        add(
            "odd headers",
            web,
            encode(with_headers),
            headers=[("traceparent", b"\xff" * 10), ("x" * 200, b"y" * 100_000)],
            counted=[with_headers],
        )
        add(  # a ce_specversion header makes the record binary (CONTRACT.md §1 v2)
            "a ce_specversion header that is not UTF-8",
            web,
            encode(self.started(web)),
            "invalid_envelope",
            headers=[("ce_specversion", b"\xff" * 10)],
        )
        self._mixed_batch(web)
        self._overflow()
        for garbage in GARBAGE_CHANNELS:
            add(f"garbage only on {garbage}", garbage, b"{not json", "invalid_json")
        return self.records

    def _mixed_batch(self, channel: str) -> None:
        good = [self.started(channel), self.started(channel)]
        bad = self.started(channel, specversion="0.3")
        unknown = self.started(channel, type="support.conversation.transferred")
        worse = self.started(channel, data={"handled_by": "robot"})
        batch = [good[0], bad, unknown, worse, good[1]]
        self.add(
            "a batch mixing valid, invalid and unknown events",
            channel,
            encode(batch),
            "invalid_envelope",
            "invalid_data",
            counted=good,
        )

    def _overflow(self) -> None:
        """Ten records of 1000 costs at the largest amount, on a channel of their own: sums
        hold 9223 of them (2^63 - 1 micro-units); the other 777 are dead-lettered."""
        for record in range(10):
            costs = [self.cost(OVERFLOW_CHANNEL, MAX_AMOUNT, subject="big") for _ in range(1000)]
            fits = max(0, min(1000, 9223 - record * 1000))
            self.add(
                f"1000 largest costs, record {record + 1} of 10",
                OVERFLOW_CHANNEL,
                encode(costs),
                *["overflow"] * (1000 - fits),
                key=b"big",
                counted=costs[:fits],
            )

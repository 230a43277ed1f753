"""Builders of CloudEvent JSON records for tests and benchmarks (plain dicts and bytes, so
the service's own models are not used to produce what they are tested on)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any


def rfc3339(unix_seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(unix_seconds, tz=dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event(
    kind: str,
    event_id: str,
    conversation: str,
    unix_seconds: float,
    source: str = "/test",
    **data: Any,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": f"support.{kind}",
        "time": rfc3339(unix_seconds),
        "subject": conversation,
        "data": data,
    }


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()

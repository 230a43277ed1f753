"""Prometheus's HTTP API, as the end-to-end tests read it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any


def prometheus_api(base: str, path: str, **params: str) -> Any:
    """`data` of /api/v1/<path>, after checking the answer says success."""
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]

"""Runs the tests' Node.js programs (tests/node: Grafana's panel code, the CRD checks)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

NODE = Path(__file__).resolve().parent / "node"


def run_node(script: str, payload: Any, package: str) -> Any:
    """`node tests/node/<script>` with `payload` as JSON on stdin; its JSON answer. Fails
    with what to do when `package` (a folder of node_modules) is not installed."""
    if not (NODE / "node_modules" / package).is_dir():
        raise AssertionError(f"{package} is not installed: run `make install` ({NODE})")
    result = subprocess.run(
        ["node", str(NODE / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)

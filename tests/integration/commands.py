"""The CLI run in-process with a deployment's settings, and waiting for what it reports."""

from __future__ import annotations

import json
import time
from typing import Any

from roi_metrics.cli.main import app
from typer.testing import CliRunner

from tests.integration.harness import Deployment, free_port


def cli(deployment: Deployment, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in deployment.env(free_port()).items() if k.startswith("ROI_")}
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def report(deployment: Deployment, *args: str) -> dict[str, Any]:
    code, out, err = cli(deployment, "report", "--json", *args)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def wait_for(what: str, check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(0.5)
    return result

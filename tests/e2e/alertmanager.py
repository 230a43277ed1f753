"""A real Alertmanager (Debian's) with the project's configuration, rendered to notify a
webhook receiver of the test's own; shared by the e2e tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "alertmanager" / "render.sh"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run deploy/local/install.sh (make test does)")
    return path


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)


def render(tmp_path: Path, url: str) -> Path:
    out = tmp_path / "alertmanager.yml"
    result = run("sh", str(RENDER), str(out), env={**os.environ, "ALERT_WEBHOOK_URL": url})
    assert result.returncode == 0, result.stderr
    return out


class Webhook:
    """A webhook receiver: keeps every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_names(self) -> set[tuple[str, str]]:
        return {
            (alert["labels"]["alertname"], notification["receiver"])
            for notification in self.received
            for alert in notification["alerts"]
        }


@contextmanager
def running_alertmanager(tmp_path: Path, quick: bool = False) -> Iterator[tuple[str, Webhook]]:
    """(its URL, the webhook it notifies) while the block runs. `quick`: every group_wait
    1 s instead of the configuration's 10 s (critical) and 30 s (warning), for tests of the
    routes and inhibitions that do not time the waits (the configuration is otherwise the
    project's own)."""
    webhook = Webhook()
    config = render(tmp_path, webhook.url)
    if quick:
        text = config.read_text()
        assert "group_wait: 30s" in text and "group_wait: 10s" in text
        for wait in ("30s", "10s"):
            text = text.replace(f"group_wait: {wait}", "group_wait: 1s")
        config.write_text(text)
    port = free_port()
    binary = tool("prometheus-alertmanager")  # Debian's name for alertmanager
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url=http://127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/-/ready", 30, "alertmanager", tmp_path / "alertmanager.log")
        yield base, webhook
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        webhook.server.shutdown()
        webhook.server.server_close()

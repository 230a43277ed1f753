"""The exporter's HTTP side: the server of /metrics, /healthz, /readyz and /runbooks."""

from __future__ import annotations

import gc
import gzip
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    generate_latest,
)

from roi_metrics.export import runbooks
from roi_metrics.export.collector import RoiCollector
from roi_metrics.telemetry import runtime_registry


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _StoppableServer(ThreadingWSGIServer):
    """Stops within its poll interval once `stopping()` says so."""

    stopping: Callable[[], bool] = staticmethod(lambda: False)

    def service_actions(self) -> None:
        if self.stopping():
            raise KeyboardInterrupt


def serve(
    collector: RoiCollector,
    ready: Callable[[], bool],
    host: str,
    port: int,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Serve /metrics (gzip when asked), /healthz, /readyz and /runbooks (the page every
    alert's runbook_url may point at) until interrupted. /metrics
    holds the business figures (RoiCollector.exposition), then the process, Python and
    build-info metrics."""
    runtime = runtime_registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            ok = ready()
            start_response(
                "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [b"ready\n" if ok else b"not ready\n"]
        if path == "/runbooks":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [runbooks.page()]
        body = collector.exposition() + generate_latest(runtime)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    server_class = type("Server", (_StoppableServer,), {"stopping": staticmethod(stopping)})
    server: _StoppableServer = make_server(
        host, port, app, server_class, handler_class=_QuietHandler
    )
    # What start-up made (modules, settings, the card) lives as long as the process: out of
    # the collector's way, a full collection no longer walks it, which took up to 42 ms in
    # the middle of a scrape (bench.scrape's process; 0.7 ms once frozen).
    gc.freeze()
    server.serve_forever()

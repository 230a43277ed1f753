"""The exporter's HTTP side: the text exposition of the collected families, and the server
of /metrics, /healthz and /readyz."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.core import Metric
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    generate_latest,
)
from prometheus_client.utils import floatToGoString

from roi_metrics.export import runbooks
from roi_metrics.export.collector import RoiCollector
from roi_metrics.telemetry import runtime_registry


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_text(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of gauge families, byte for byte what
    prometheus_client's generate_latest writes for them (tests/unit/test_exporter.py), in
    about a third of its time: a scrape repeats each (channel, window) label set some twenty
    times, and its text is built once here (once per labels dict when samples share one)."""
    out: list[str] = []
    by_dict: dict[int, tuple[dict[str, str], str]] = {}
    """Label text by the identity of a labels dict (the dict is kept, so its id stays its)."""
    by_items: dict[tuple[tuple[str, str], ...], str] = {}
    for metric in metrics:
        if metric.type != "gauge":
            raise ValueError(f"render_text writes gauges only, not {metric.type} {metric.name}")
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {metric.name} {documentation}\n# TYPE {metric.name} gauge\n")
        for sample in metric.samples:
            labels = sample.labels
            known = by_dict.get(id(labels))
            if known is not None and known[0] is labels:
                text = known[1]
            else:
                items = tuple(labels.items())
                if items not in by_items:
                    pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(items))
                    by_items[items] = f"{{{pairs}}}" if pairs else ""
                text = by_items[items]
                by_dict[id(labels)] = (labels, text)
            value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
            out.append(f"{sample.name}{text} {value}\n")
    return "".join(out).encode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def serve(collector: RoiCollector, ready: Callable[[], bool], host: str, port: int) -> None:
    """Serve /metrics (gzip when asked), /healthz, /readyz and /runbooks (the page every
    alert's runbook_url may point at) until interrupted. /metrics
    holds the business figures (the fast path of render_text), then the process, Python and
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
        body = render_text(collector.collect()) + generate_latest(runtime)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    server.serve_forever()

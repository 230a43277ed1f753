"""`roi-metrics worker` and `roi-metrics exporter`: the two long-running processes."""

from __future__ import annotations

import signal
import socket
from typing import Annotated

import typer

from roi_metrics.cli.common import (
    EXIT_FAILURE,
    STOP,
    LogLevel,
    LogLevelName,
    err,
    fail,
    interrupt,
    load_card,
    load_settings,
    print_banner,
    redis_client,
    refuse_evicting_redis,
    run_operator,
    say,
    warn,
)
from roi_metrics.state.memory import eviction_problem
from roi_metrics.traffic.publish import check_kafka, ensure_dead_letter_topic


def _check_port(host: str, port: int, setting: str) -> None:
    """One line and exit 1 when the web server could not listen there (Faust would print a
    traceback). The port is free again when this returns: a race with another process
    remains possible, and then Faust's own error stands."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise fail(
                f"cannot serve on {host}:{port}: {error.strerror}; set {setting}", EXIT_FAILURE
            ) from None


def worker(log_level: LogLevel = LogLevelName.INFO) -> None:
    """Consume every support.events.<channel> topic and keep the figures in Redis.

    Configured by ROI_* environment variables (see docs/configuration.md); serves /metrics,
    /healthz and /readyz on ROI_WORKER_HOST:ROI_WORKER_PORT.
    """
    settings = load_settings()  # first: from here on, its secrets are redacted
    card = load_card(settings)

    from faust import Worker  # noqa: PLC0415  (importing faust is slow; only the worker needs it)

    from roi_metrics.worker.app import create_app  # noqa: PLC0415

    try:  # Faust creates only the last level of its data directory
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(f"ROI_DATA_DIR {settings.data_dir}: {error.strerror}") from None
    run_operator(check_kafka(settings))  # one line, not Faust's traceback, when Kafka is not there
    run_operator(ensure_dead_letter_topic(settings))
    refuse_evicting_redis(settings)
    _check_port(settings.worker_host, settings.worker_port, "ROI_WORKER_PORT")
    print_banner("worker", settings)
    faust_app, _ = create_app(settings, card)
    Worker(faust_app, loglevel=log_level.value, quiet=True).execute_from_commandline()


def exporter(
    port: Annotated[
        int | None, typer.Option("--port", help="Port to serve on (default: ROI_EXPORTER_PORT).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: ROI_EXPORTER_HOST).")
    ] = None,
) -> None:
    """Serve the business figures on /metrics (and /healthz, /readyz) for Prometheus.

    Stateless: reads Redis at every scrape; run as many replicas as you like.
    """

    from roi_metrics.export.collector import RoiCollector  # noqa: PLC0415
    from roi_metrics.export.http import serve  # noqa: PLC0415
    from roi_metrics.state.connect import ERRORS, memory_info  # noqa: PLC0415
    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    bind, listen = host or settings.exporter_host, port or settings.exporter_port
    client = redis_client(settings, timeout=2)  # a scrape must not hang on Redis

    said: list[str | None] = [None]

    def ready() -> bool:
        """Redis answers and will not evict (a change of policy is said once, in one line)."""
        try:
            problem = eviction_problem(memory_info(client))
        except ERRORS:
            return False
        if problem != said[0]:
            said[0] = problem
            if problem is not None:
                warn(f"not ready: {problem}")
        return problem is None

    refuse_evicting_redis(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):  # a supervisor's stop: exit 0, as Ctrl-C
        signal.signal(signum, interrupt)
    _check_port(bind, listen, "ROI_EXPORTER_PORT or --port")
    print_banner("exporter", settings)
    say(err, f"serving http://{bind}:{listen}/metrics")
    try:
        collector = RoiCollector(
            card,
            StateReader(client).snapshot,
            memory=lambda: memory_info(client, masters_only=True),
        )
        serve(collector, ready, bind, listen, STOP.is_set)
    except OSError as error:
        raise fail(f"cannot serve on {bind}:{listen}: {error.strerror}", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        pass

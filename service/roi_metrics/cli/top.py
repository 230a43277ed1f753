"""`roi-metrics top`: the headline panels of the "AI support ROI" dashboard in a terminal,
for people without Grafana: programme ROI against target and payback, cost per resolution,
rates, the per-channel table, and Prometheus's firing and pending alerts when it answers."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from importlib import resources
from typing import Annotated, Any, Final

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from roi_metrics.cli.common import (
    load_card,
    load_settings,
    out,
    redis_client,
)
from roi_metrics.cli.common import redact as redact_secrets
from roi_metrics.cli.render import (
    amount,
    channel_table,
    escaped_names,
    journey_table,
    percent,
    printable,
)
from roi_metrics.domain.report import Report, build_report
from roi_metrics.domain.timebuckets import Window
from roi_metrics.settings import mask_url, redact, url_secrets

DEFAULT_PROMETHEUS: Final = f"http://127.0.0.1:{os.environ.get('ROI_PROMETHEUS_PORT') or 19090}"
"""The local stack's Prometheus (deploy/local)."""


@dataclass(frozen=True)
class Alerts:
    """Prometheus's alerts, or why there are none to show."""

    alerts: list[dict[str, Any]]
    error: str | None = None


def _alerts_request(prometheus: str) -> urllib.request.Request:
    """The alerts API request; credentials in the URL go in a Basic auth header (urllib
    would read `user:password@host` as a host name)."""
    parts = urllib.parse.urlsplit(prometheus)
    if parts.username is None:
        return urllib.request.Request(f"{prometheus}/api/v1/alerts")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    url = urllib.parse.urlunsplit(parts._replace(netloc=netloc)) + "/api/v1/alerts"
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})


def fetch_alerts(prometheus: str, timeout: float = 2.0) -> Alerts:
    """The alerts Prometheus has, or why not (the URL's password, if any, masked)."""
    try:
        with urllib.request.urlopen(_alerts_request(prometheus), timeout=timeout) as reply:
            body = json.load(reply)
    except (OSError, ValueError) as error:
        reason = redact(str(getattr(error, "reason", error)), url_secrets(prometheus))
        return Alerts([], f"Prometheus not reachable at {mask_url(prometheus)} ({reason})")
    data = body.get("data") if isinstance(body, dict) else None
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        return Alerts([], f"Prometheus at {mask_url(prometheus)} answered no list of alerts")
    return Alerts([alert for alert in alerts if isinstance(alert, dict)])


def headline(report: Report, target_roi: float, window: Window) -> Panel:
    program, since = report.program[window], report.program[Window.ALL]
    net_position = since.net_value
    roi_style = "green" if program.roi is not None and program.roi >= target_roi else "red"
    cells = [
        (f"Programme ROI {window.value}", percent(program.roi), roi_style),
        ("target", percent(Fraction(target_roi)), "dim"),
        ("ROI since go-live", percent(since.roi), ""),
        (
            "net position since go-live",
            f"{amount(net_position)} {report.currency}",
            "green" if net_position >= 0 else "red",
        ),
        (f"cost / resolution {window.value}", amount(program.cost_per_resolution), ""),
        (f"automation {window.value}", percent(program.automation_rate), ""),
    ]
    grid = Table.grid(expand=True)
    for _ in cells:
        grid.add_column(justify="center")
    grid.add_row(*(Text(label, style="dim") for label, _, _ in cells))
    grid.add_row(*(Text(value, style=f"bold {style}".strip()) for _, value, style in cells))
    return Panel(grid, title="AI support ROI", subtitle=payback_text(report))


def payback_text(report: Report) -> str:
    """Paid back, or when it will be at the last 30 days' pace (CONTRACT.md §14)."""
    if report.program[Window.ALL].net_value >= 0:
        return "paid back"
    remaining = report.payback_remaining_seconds
    if remaining is None:
        return "not paid back yet; the last 30 days' pace never pays it back"
    days = float(remaining) / 86400
    return f"not paid back yet: about {days:,.0f} days more at the last 30 days' pace"


@functools.cache
def project_alerts() -> frozenset[str]:
    """The names of this project's alerts, from the rules the package ships (the alert
    names of a deployment's rules are the same; only thresholds change)."""
    rules = resources.files("roi_metrics").joinpath("data", "roi-rules.yml").read_text()
    return frozenset(re.findall(r"^\s*- alert: (\S+)$", rules, re.MULTILINE))


def _field(alert: dict[str, Any], group: str, name: str) -> str:
    """A label or annotation of an alert as text ("" when it has none)."""
    values = alert.get(group)
    value = values.get(name) if isinstance(values, dict) else None
    return "" if value is None else printable(str(value))


def alerts_table(alerts: Alerts) -> RenderableType:
    """This project's firing then pending alerts (a Prometheus has other teams' alerts too).
    Their labels and annotations are whatever the rules and the series say: shown as plain
    text, never read as Rich markup."""
    if alerts.error:
        return Text(alerts.error, style="dim")
    ours = project_alerts()
    active = [
        a
        for a in alerts.alerts
        if a.get("state") in ("firing", "pending") and _field(a, "labels", "alertname") in ours
    ]
    if not active:
        return Text("No alert firing or pending.", style="green")
    table = Table(title="Alerts", title_justify="left")
    for column in ("state", "alert", "severity", "summary"):
        table.add_column(column)
    for alert in sorted(
        active, key=lambda a: (a["state"] != "firing", _field(a, "labels", "alertname"))
    ):
        table.add_row(
            Text(alert["state"], style="bold red" if alert["state"] == "firing" else "yellow"),
            Text(_field(alert, "labels", "alertname")),
            Text(_field(alert, "labels", "severity")),
            Text(_field(alert, "annotations", "summary")),
        )
    return table


def frame(
    report: Report | None,
    target_roi: float,
    window: Window,
    alerts: Alerts,
    problem: str | None = None,
    *,
    tolerance: float | None = None,
) -> RenderableType:
    """One screen of `top`."""
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts: list[RenderableType] = [Text(f"roi-metrics top · {at} · Ctrl-C to quit", style="dim")]
    if problem is not None:
        parts.append(Text(problem, style="bold red"))
    if report is not None:
        if report.channels:
            shown = escaped_names(report)
            parts += [
                headline(shown, target_roi, window),
                channel_table(shown, window),
                journey_table(shown, window, tolerance),
            ]
        else:
            parts.append(Text("No channel has counted an event yet.", style="yellow"))
    parts.append(alerts_table(alerts))
    return Group(*parts)


def top(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 5.0,
    window: Annotated[
        Window, typer.Option(help="Window shown.", case_sensitive=False)
    ] = Window.HOURS_24,
    prometheus: Annotated[
        str, typer.Option(help="Prometheus to read alerts from.", envvar="ROI_PROMETHEUS_URL")
    ] = DEFAULT_PROMETHEUS,
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
) -> None:
    """A live terminal view of the headline figures and alerts, refreshed every few seconds."""

    from roi_metrics.state.connect import ERRORS  # noqa: PLC0415
    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    chosen = window
    client = redis_client(settings)
    reader = StateReader(client)

    def screen() -> RenderableType:
        try:
            current: Report | None = build_report(reader.snapshot(int(time.time())), card)
            problem = None
        except ERRORS as error:
            current, problem = None, redact_secrets(f"cannot read Redis: {error}")
        alerts = fetch_alerts(prometheus)
        return frame(
            current, card.target_roi, chosen, alerts, problem, tolerance=card.ramp_tolerance
        )

    started = time.monotonic()

    def pause() -> bool:
        """Sleep until the next refresh; False once the duration is over."""
        left = duration - (time.monotonic() - started) if duration else interval
        if left <= 0:
            return False
        time.sleep(min(interval, left))
        return True

    try:
        if out.is_terminal:
            with Live(screen(), console=out, refresh_per_second=4) as live:
                while pause():
                    live.update(screen())
        else:  # piped or logged: one frame after the other
            out.print(screen())
            while pause():
                out.print(screen())
    except KeyboardInterrupt:
        pass
    finally:
        client.close()

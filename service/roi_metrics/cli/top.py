"""`roi-metrics top`: the headline panels of the "AI support ROI" dashboard in a terminal,
for people without Grafana: programme ROI against target and payback, cost per resolution,
rates, the per-channel table, and Prometheus's firing and pending alerts when it answers."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from roi_metrics.domain.events import Counter
from roi_metrics.domain.report import Report, amount, channel_table, percent
from roi_metrics.domain.timebuckets import Window
from roi_metrics.settings import mask_url, redact, url_secrets


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


_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters (escape sequences a terminal would obey: ESC, BEL,
    CR, C1 controls; line breaks and tabs are kept) shown as U+FFFD, for untrusted text
    about to reach a terminal."""
    return _CONTROLS.sub("\ufffd", text)


def escaped_names(report: Report) -> Report:
    """The report with its channel names escaped for Rich markup, for the tables of
    roi_metrics.domain.report, which render names as markup strings (a name read from Redis may be
    any text; a valid channel name is left as it is)."""
    channels = {escape(printable(name)): f for name, f in report.channels.items()}
    return replace(report, channels=channels)


def _automation(report: Report, window: Window) -> Fraction | None:
    conversations = sum(f[window].counts[Counter.CONVERSATIONS] for f in report.channels.values())
    net = sum(f[window].net_ai_resolutions for f in report.channels.values())
    return Fraction(net, conversations) if conversations else None


def headline(report: Report, target_roi: float, window: Window) -> Panel:
    program, since = report.program[window], report.program[Window.ALL]
    net_position = since.value - since.cost
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
        (f"automation {window.value}", percent(_automation(report, window)), ""),
    ]
    grid = Table.grid(expand=True)
    for _ in cells:
        grid.add_column(justify="center")
    grid.add_row(*(Text(label, style="dim") for label, _, _ in cells))
    grid.add_row(*(Text(value, style=f"bold {style}".strip()) for _, value, style in cells))
    payback = "paid back" if net_position >= 0 else "not paid back yet"
    return Panel(grid, title="AI support ROI", subtitle=payback)


def _field(alert: dict[str, Any], group: str, name: str) -> str:
    """A label or annotation of an alert as text ("" when it has none)."""
    values = alert.get(group)
    value = values.get(name) if isinstance(values, dict) else None
    return "" if value is None else printable(str(value))


def alerts_table(alerts: Alerts) -> RenderableType:
    """Firing then pending alerts. Their labels and annotations are whatever the rules and
    the series say: shown as plain text, never read as Rich markup."""
    if alerts.error:
        return Text(alerts.error, style="dim")
    active = [a for a in alerts.alerts if a.get("state") in ("firing", "pending")]
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
) -> RenderableType:
    """One screen of `top`."""
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts: list[RenderableType] = [Text(f"roi-metrics top · {at} · Ctrl-C to quit", style="dim")]
    if problem is not None:
        parts.append(Text(problem, style="bold red"))
    if report is not None:
        if report.channels:
            shown = escaped_names(report)
            parts += [headline(shown, target_roi, window), channel_table(shown, window)]
        else:
            parts.append(Text("No channel has counted an event yet.", style="yellow"))
    parts.append(alerts_table(alerts))
    return Group(*parts)

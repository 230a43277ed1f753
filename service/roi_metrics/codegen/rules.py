"""Generates the Prometheus rules, deploy/prometheus/rules/roi.yml, from the thresholds in
deploy/prometheus/thresholds.toml: recording rules that dashboards and alerts share, and the
alerts. `python -m roi_metrics.codegen.rules --check` fails when the committed rules are stale.

`--for-scale` multiplies every alert's `for` (a test or a demo shortens them this way,
without editing the rules); the committed file always uses scale 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from roi_metrics.codegen import PROJECT_ROOT
from roi_metrics.codegen.alerts import ALERTS, AlertSpec, runbook_url
from roi_metrics.codegen.promql import RECORDING

ROOT: Final = PROJECT_ROOT
DEFAULT_THRESHOLDS: Final = ROOT / "deploy" / "prometheus" / "thresholds.toml"
DEFAULT_RULES: Final = ROOT / "deploy" / "prometheus" / "rules" / "roi.yml"
SEVERITIES: Final = ("critical", "warning", "info")
DURATION: Final = re.compile(r"^(\d+)(s|m|h|d)$")
UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_WINDOW: Final = 60  # a range over fewer seconds may hold a single scrape
DEFAULT_RUNBOOKS: Final = "http://127.0.0.1:19464/runbooks"
"""The local stack's exporter, which serves the runbooks (roi_metrics.export.runbooks)."""


class ThresholdsError(ValueError):
    """A bad thresholds file; the message names the file, the field and the problem."""


@dataclass(frozen=True)
class Thresholds:
    runbook_url: str
    values: dict[str, dict[str, Any]]  # alert name -> for, severity and parameters
    min_ai_conversations_1h: int


def _seconds(duration: str) -> int:
    match = DURATION.match(duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration like 90s, 15m, 1h")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def load_thresholds(path: Path) -> Thresholds:
    """Read and check thresholds.toml: every alert present, known keys, sane values."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as error:
        raise ThresholdsError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ThresholdsError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ThresholdsError(f"{path}: {error}") from None

    def fail(field: str, problem: str) -> ThresholdsError:
        return ThresholdsError(f"{path}: {field}: {problem}")

    unknown = set(doc) - {"runbook_url", "min_ai_conversations_1h", "alerts"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key")
    minimum = doc.get("min_ai_conversations_1h")
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
        raise fail("min_ai_conversations_1h", "must be a whole number >= 1")
    alerts = doc.get("alerts", {})
    if not isinstance(alerts, dict):
        raise fail("alerts", "must be a table of [alerts.<name>] sections")
    stray = set(alerts) - {spec.name for spec in ALERTS}
    if stray:
        raise fail(f"alerts.{sorted(stray)[0]}", "no such alert")
    values: dict[str, dict[str, Any]] = {}
    for spec in ALERTS:
        problem = _alert_problem(spec, alerts.get(spec.name))
        if problem:
            raise fail(f"alerts.{spec.name}{problem[0]}", problem[1])
        values[spec.name] = alerts[spec.name]
    runbook_url = doc.get("runbook_url", DEFAULT_RUNBOOKS)
    if not _absolute(runbook_url):
        raise fail(
            "runbook_url",
            f"must be an absolute http(s) URL (a notification is read far from the checkout), "
            f"got {runbook_url!r}; the exporter serves the runbooks at /runbooks",
        )
    return Thresholds(runbook_url, values, minimum)


def _absolute(url: object) -> bool:
    if not isinstance(url, str) or any(char.isspace() for char in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment


def _alert_problem(spec: AlertSpec, section: object) -> tuple[str, str] | None:
    """(".field", problem) for a bad alert section, None when it is fine."""
    if not isinstance(section, dict):
        return "", "missing"
    extra = set(section) - {"for", "severity", *spec.params}
    if extra:
        return f".{sorted(extra)[0]}", "unknown key"
    try:
        _seconds(str(section.get("for", "")))
    except ValueError as error:
        return ".for", str(error)
    if section.get("severity") not in SEVERITIES:
        return ".severity", f"must be one of {', '.join(SEVERITIES)}"
    for param in spec.params:
        problem = _param_problem(section.get(param), window=param in spec.windows)
        if problem:
            return f".{param}", problem
    return None


def _param_problem(value: object, *, window: bool) -> str | None:
    """What is wrong with an alert parameter; a window is a range, `[...s]`, in PromQL."""
    if window:
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_WINDOW:
            return f"must be a whole number of seconds >= {MIN_WINDOW}"
    elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return "must be a number >= 0"
    return None


def _scaled(duration: str, scale: float) -> str:
    if scale == 1:
        return duration
    return f"{max(1, round(_seconds(duration) * scale))}s"


def rules(thresholds: Thresholds, for_scale: float = 1.0) -> dict[str, Any]:
    """The rules document Prometheus loads."""
    alerts = []
    for spec in ALERTS:
        section = thresholds.values[spec.name]
        params = {
            "min_ai_conversations_1h": thresholds.min_ai_conversations_1h,
            **{param: section[param] for param in spec.params},
        }
        alerts.append(
            {
                "alert": spec.name,
                "expr": spec.expr % params,
                "for": _scaled(section["for"], for_scale),
                "labels": {"severity": section["severity"], "component": spec.component},
                "annotations": {
                    "summary": spec.summary,
                    "description": spec.description % params,
                    "runbook_url": runbook_url(thresholds.runbook_url, spec.name),
                },
            }
        )
    return {
        "groups": [
            {
                "name": "roi-recording",
                "rules": [{"record": name, "expr": expr} for name, expr in RECORDING],
            },
            {"name": "roi-alerts", "rules": alerts},
        ]
    }


class _Literal(str):
    """A multi-line string written as a YAML block."""


class _Dumper(yaml.SafeDumper):
    """Writes _Literal strings as YAML blocks."""


_Dumper.add_representer(
    _Literal,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|"),
)


def dump(document: Any) -> str:
    """YAML of a document holding rule groups (any depth): multi-line expressions as blocks."""

    def blocks(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: _Literal(value)
                if key == "expr" and isinstance(value, str) and "\n" in value
                else blocks(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [blocks(item) for item in node]
        return node

    return yaml.dump(blocks(document), Dumper=_Dumper, sort_keys=False, width=100)


def render(thresholds: Thresholds, for_scale: float = 1.0) -> str:
    header = (
        "# Generated by `python -m roi_metrics.codegen.rules`"
        " from deploy/prometheus/thresholds.toml.\n"
        "# Do not edit: change thresholds.toml and run `make rules` (installed: `python -m\n"
        "# roi_metrics.codegen.rules --thresholds thresholds.toml --out roi-rules.yml`).\n"
    )
    return header + dump(rules(thresholds, for_scale))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m roi_metrics.codegen.rules", description=__doc__
    )
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    parser.add_argument("--out", type=Path, default=DEFAULT_RULES, help="rules file to write")
    parser.add_argument(
        "--for-scale", type=float, default=1.0, help="multiply every alert's `for` (default 1)"
    )
    parser.add_argument("--check", action="store_true", help="fail if --out is stale")
    args = parser.parse_args(argv)
    if args.for_scale <= 0:
        parser.error("--for-scale must be > 0")
    try:
        text = render(load_thresholds(args.thresholds), args.for_scale)
    except ThresholdsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"error: {args.out} is stale: run `make rules`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

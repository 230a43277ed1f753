"""What Grafana shows for a table or stat panel, computed by Grafana's own code.

No Grafana server can run here, so the test does what Grafana does between Prometheus and the
screen: it runs the panel's queries against the real Prometheus, shapes the answers as data
frames the way Grafana's Prometheus datasource returns them, and hands the frames and the
panel to tests/node/panel.cjs, which applies the panel's transformations, field config
(units, thresholds, overrides) and, for a stat, its reduction, with `@grafana/data`
(npm, Apache-2.0) in Node. `make install` installs it (npm ci in tests/node).

The shaping, as Grafana's Prometheus datasource does it:

- a range query (a stat's): one frame per series, a time field and a number field that
  carries the series' labels and, as its display name, the legend with `{{label}}` filled;
- an instant query in table format: one frame per query (refId), empty when it found no
  series: a `Time` field, one string field per label name of its series (in order of
  appearance, each series' names sorted; `__name__` included), then the values, named
  `Value #<refId>` when the panel has several queries and `Value` when one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.e2e.promapi import prometheus_api
from tests.nodejs import run_node

ROOT = Path(__file__).resolve().parents[2]
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
Frame = dict[str, Any]


def _api(base: str, path: str, **params: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = prometheus_api(base, path, **params)["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    return LEGEND.sub(lambda m: labels.get(m.group(1), ""), template)


def series_frames(base: str, targets: list[dict[str, Any]], now: float) -> list[Frame]:
    """The frames of a panel's range queries over the last 10 minutes, 15 s apart."""
    frames = []
    for target in targets:
        answer = _api(
            base,
            "query_range",
            query=target["expr"],
            start=str(now - 600),
            end=str(now),
            step="15",
        )
        for series in answer:
            labels = series["metric"]
            frames.append(
                {
                    "refId": target["refId"],
                    "fields": [
                        {
                            "name": "Time",
                            "type": "time",
                            "values": [int(float(t) * 1000) for t, _ in series["values"]],
                        },
                        {
                            "name": "Value",
                            "type": "number",
                            "labels": labels,
                            "config": {
                                "displayNameFromDS": legend(target.get("legendFormat", ""), labels)
                            },
                            "values": [v for _, v in series["values"]],
                        },
                    ],
                }
            )
    return frames


def table_frames(base: str, targets: list[dict[str, Any]], now: float) -> list[Frame]:
    """The frames of a panel's instant queries in table format, evaluated at `now`."""
    frames = []
    for target in targets:
        ref = target["refId"]
        series = _api(base, "query", query=target["expr"], time=str(now))
        names: list[str] = []  # in order of appearance, each series' own sorted
        for s in series:
            names += [name for name in sorted(s["metric"]) if name not in names]
        # a query without series still answers (an empty frame): it counts for the name
        value = f"Value #{ref}" if len(targets) > 1 else "Value"
        fields = [
            {
                "name": "Time",
                "type": "time",
                "values": [int(float(s["value"][0]) * 1000) for s in series],
            },
            *(
                {
                    "name": name,
                    "type": "string",
                    "values": [s["metric"].get(name, "") for s in series],
                }
                for name in names
            ),
            {"name": value, "type": "number", "values": [s["value"][1] for s in series]},
        ]
        frames.append({"refId": ref, "fields": fields})
    return frames


def with_variables(panel: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    """The panel with its queries' `$name` replaced, as Grafana interpolates them."""
    targets = []
    for target in panel.get("targets", []):
        expr = target["expr"]
        for name, value in variables.items():
            expr = expr.replace(f"${name}", value)
        targets.append({**target, "expr": expr})
    return {**panel, "targets": targets}


def shown(base: str, panel: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    """What Grafana draws for the panel, from the real Prometheus at `base`, now."""
    [drawn] = shown_all(base, [panel], variables)
    return drawn


def shown_all(
    base: str, panels: list[dict[str, Any]], variables: dict[str, str]
) -> list[dict[str, Any]]:
    """What Grafana draws for each panel (one Node process for all of them)."""
    now = time.time()
    inputs = []
    for raw in panels:
        panel = with_variables(raw, variables)
        table = any(t.get("format") == "table" for t in panel["targets"])
        frames = (table_frames if table else series_frames)(base, panel["targets"], now)
        inputs.append({"panel": panel, "frames": frames})
    drawn: list[dict[str, Any]] = run_node("panel.cjs", inputs, "@grafana/data")
    return drawn


def text_table(table: dict[str, Any]) -> str:
    """A table as Grafana computed it, one line per row (cell text, and colour where painted)."""

    def cell(c: dict[str, Any]) -> str:
        return f"{c['text']} ({c['color']})" if c["color"] else c["text"]

    lines = [" | ".join(table["columns"])]
    lines += [" | ".join(cell(c) for c in row) for row in table["rows"]]
    return "\n".join(lines)

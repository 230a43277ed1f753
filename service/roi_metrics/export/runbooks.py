"""The runbooks (docs/runbooks.md, shipped in the package) as one HTML page, which the
exporter serves at /runbooks: every alert's runbook_url can point at a page that exists
wherever the exporter runs. Headings become anchors named as the alert rules link them
(`#supportchannelsilent`); the text is shown as written, escaped, never interpreted."""

from __future__ import annotations

import functools
import html
import re
from importlib import resources

HEADING = re.compile(r"^(#{1,3}) (.+)$")


def anchor(heading: str) -> str:
    """The anchor of a heading, as GitHub makes it: lower case, letters, digits and '-'."""
    return re.sub(r"[^a-z0-9_-]", "", heading.strip().lower().replace(" ", "-"))


def render(markdown: str) -> str:
    """The page: headings as h1-h3 with their anchors, every other block as preformatted,
    escaped text."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>roi-metrics runbooks</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}"
        "div{white-space:pre-wrap;font-family:monospace}</style></head><body>",
    ]
    block: list[str] = []

    def flush() -> None:
        text = "\n".join(block).strip("\n")
        if text:
            parts.append(f"<div>{html.escape(text)}</div>")
        block.clear()

    for line in markdown.splitlines():
        match = HEADING.match(line)
        if match is None:
            block.append(line)
            continue
        flush()
        level, title = len(match.group(1)), match.group(2)
        parts.append(f"<h{level} id='{anchor(title)}'>{html.escape(title)}</h{level}>")
    flush()
    parts.append("</body></html>")
    return "\n".join(parts)


@functools.cache
def page() -> bytes:
    """The shipped runbooks as HTML, made once."""
    source = resources.files("roi_metrics").joinpath("data", "runbooks.md").read_text("utf-8")
    return render(source).encode()

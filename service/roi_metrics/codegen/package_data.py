"""Writes what the wheel ships for a user without the source (service/roi_metrics/data/):
the starter cost card and alert thresholds, the Prometheus rules made from them, the
runbooks (the exporter serves them at /runbooks), and the JSON Schemas and AsyncAPI
document. Copies of deploy/ and schemas/, kept equal:
`python -m roi_metrics.codegen.package_data --check` fails when one drifted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from roi_metrics.codegen import PROJECT_ROOT
from roi_metrics.codegen import schemas as schema_files

DATA_DIR: Final = PROJECT_ROOT / "service" / "roi_metrics" / "data"
STARTERS: Final = {
    "costs.toml": PROJECT_ROOT / "deploy" / "costs.toml",
    "thresholds.toml": PROJECT_ROOT / "deploy" / "prometheus" / "thresholds.toml",
    "roi-rules.yml": PROJECT_ROOT / "deploy" / "prometheus" / "rules" / "roi.yml",
    "runbooks.md": PROJECT_ROOT / "docs" / "runbooks.md",
}
"""Package file name -> its source in the checkout."""


def render() -> dict[str, str]:
    """Path under data/ -> exact text."""
    files = {name: source.read_text(encoding="utf-8") for name, source in STARTERS.items()}
    files |= {f"schemas/{name}": text for name, text in schema_files.render().items()}
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m roi_metrics.codegen.package_data", description=__doc__
    )
    parser.add_argument("--check", action="store_true", help="fail if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = DATA_DIR / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name in stale:
        print(f"{DATA_DIR / name}: out of date; run `make schemas`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())

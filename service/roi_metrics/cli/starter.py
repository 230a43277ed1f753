"""`roi-metrics init` and `roi-metrics schemas export`: the files a deployment starts from,
shipped in the package (service/roi_metrics/data/), for users without the source."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Final

import typer

from roi_metrics.cli.common import fail, out, say

DATA: Final = resources.files("roi_metrics").joinpath("data")
STARTERS: Final = {
    "costs.toml": "the cost card: set currency, go-live, costs and human prices",
    "thresholds.toml": "alert thresholds, the source of the rules below",
    "roi-rules.yml": "Prometheus recording and alert rules for the default thresholds",
}

schemas_app = typer.Typer(help="The event contract's JSON Schemas.", no_args_is_help=True)


def _write(files: dict[str, Traversable], directory: Path, force: bool) -> list[Path]:
    """Write every file into `directory` (made if missing), or nothing: refused when the
    folder is not one, when a target exists (unless `force`, and then only a regular file
    is overwritten) or is a symbolic link (never written through)."""
    if directory.exists() and not directory.is_dir():
        raise fail(f"{directory}: not a directory")
    targets = {name: directory / name for name in files}
    for path in targets.values():
        if path.is_symlink():
            raise fail(f"{path}: a symbolic link; not written through")
        if path.exists() and not path.is_file():
            raise fail(f"{path}: exists and is not a regular file")
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise fail(f"{', '.join(existing)} already {verb}; pass --force to overwrite")
    for name, source in files.items():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            targets[name].write_bytes(source.read_bytes())
        except OSError as error:
            raise fail(f"{targets[name]}: {error.strerror or error}") from None
    return list(targets.values())


def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented starter cost card, the alert thresholds and the Prometheus rules."""
    written = _write({name: DATA.joinpath(name) for name in STARTERS}, directory, force)
    for path, (_, what) in zip(written, STARTERS.items(), strict=True):
        say(out, f"wrote {path}: {what}")
    say(out, f"next: edit {written[0]}, then `roi-metrics config check {written[0]}`")


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the schemas.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write the JSON Schema of every event type and the AsyncAPI document of the topics."""
    schemas = DATA.joinpath("schemas")
    files = {entry.name: entry for entry in sorted(schemas.iterdir(), key=lambda e: e.name)}
    written = _write(files, directory, force)
    say(out, f"wrote {len(written)} files to {directory}")

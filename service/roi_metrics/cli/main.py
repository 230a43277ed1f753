"""The `roi-metrics` command: the command groups of roi_metrics.cli, assembled.

A usage mistake is one line (what, and where to read more) and exit 2, not Click's framed
message; a traceback that escapes anyway is printed with its secrets redacted.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Annotated

import typer

from roi_metrics import __version__
from roi_metrics.cli import channel, config, publish, report, run, starter, top
from roi_metrics.cli.common import EXIT_BAD_CONFIG, err, one_line, out, redact, say

app = typer.Typer(
    name="roi-metrics",
    help="Live return on investment of AI customer support.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(starter.init)
app.add_typer(config.app, name="config")
app.add_typer(starter.schemas_app, name="schemas")
app.command()(run.worker)
app.command()(run.exporter)
app.add_typer(channel.app, name="channel")
app.command()(publish.publish)
app.command()(report.report)
app.command()(report.replay)
app.command()(top.top)
app.command()(publish.simulate)


def _version(value: bool) -> None:
    if value:
        say(out, f"roi-metrics {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Live return on investment of AI customer support."""


def _excepthook(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    """A traceback that escapes anyway is printed with its secrets redacted."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, trace))))


def main() -> None:
    """The entry point: a usage mistake is one line (what, and where to read more) and exit
    2, not Click's framed message."""
    sys.excepthook = _excepthook
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C at a prompt
        sys.exit(130)
    except typer.TyperException as error:  # Click's usage errors (Typer vendors Click)
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError":
            error.show()  # type: ignore[attr-defined]  # a bare command: its help
        else:
            message = one_line(error.format_message()).replace("Value error, ", "")
            where = context.command_path if context is not None else "roi-metrics"
            say(err, f"error: {message} (see {where} --help)")
        sys.exit(getattr(error, "exit_code", EXIT_BAD_CONFIG))
    sys.exit(code if isinstance(code, int) else 0)


# --- operator commands ---------------------------------------------------------------------

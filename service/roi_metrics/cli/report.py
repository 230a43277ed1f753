"""`roi-metrics report` (the figures from Redis) and `roi-metrics replay` (the figures of
an export, offline)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from roi_metrics.cli.common import (
    EXIT_FAILURE,
    check_channel,
    err,
    fail,
    load_card,
    load_settings,
    out,
    parse_time,
    redis_client,
    redis_unreachable,
    say,
)
from roi_metrics.cli.render import (
    channel_table,
    escaped_names,
    journey_table,
    program_table,
    report_json,
    vendor_table,
)
from roi_metrics.domain.events import MICROS_PER_SECOND
from roi_metrics.domain.report import Report, build_report
from roi_metrics.domain.timebuckets import Window
from roi_metrics.ingest.contract import MAX_TIME_MICROS, MIN_TIME_MICROS, TIME_RANGE
from roi_metrics.ingest.replay import Replay, newest_time_micros
from roi_metrics.traffic.events import OperatorError, read_bytes


def _print_report(
    report: Report,
    window: Window,
    as_json: bool,
    extra: dict[str, Any],
    tolerance: float | None = None,
) -> None:
    if as_json:
        sys.stdout.write(json.dumps({**report_json(report), **extra}, indent=2) + "\n")
        return
    shown = escaped_names(report)
    out.print(program_table(shown, list(Window)))
    if report.program_vendor:
        out.print(vendor_table(shown, list(Window)))
    if report.channels:
        out.print(channel_table(shown, window))
        out.print(journey_table(shown, window, tolerance))
    else:
        say(out, "No channel has counted an event.")


def report(
    window: Annotated[
        Window, typer.Option(help="Window of the channel table.", case_sensitive=False)
    ] = Window.HOURS_24,
    at: Annotated[
        str, typer.Option(help="Clock of the windows: now, RFC 3339 or Unix seconds.")
    ] = "now",
    as_json: Annotated[bool, typer.Option("--json", help="Every window, as JSON.")] = False,
) -> None:
    """The current figures from Redis: programme and channels, per window."""

    from roi_metrics.state.connect import ERRORS  # noqa: PLC0415
    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    chosen, clock = window, parse_time(at) // MICROS_PER_SECOND
    client = redis_client(settings)
    try:
        snapshot = StateReader(client).snapshot(clock)
    except ERRORS as error:
        raise redis_unreachable(error) from None
    finally:
        client.close()
    _print_report(build_report(snapshot, card), chosen, as_json, {}, card.ramp_tolerance)


def replay(
    file: Annotated[Path, typer.Argument(help="NDJSON export: one record value per line.")],
    channel: Annotated[
        str | None, typer.Option(help="Channel of lines whose events carry no data.channel.")
    ] = None,
    at: Annotated[
        str,
        typer.Option(
            help="Clock: 'last' (the newest event's time), now, RFC 3339 or Unix seconds."
        ),
    ] = "last",
    window: Annotated[
        Window, typer.Option(help="Window of the channel table.", case_sensitive=False)
    ] = Window.HOURS_24,
    as_json: Annotated[bool, typer.Option("--json", help="Every window, as JSON.")] = False,
) -> None:
    """Compute the figures of an export offline: no Kafka, no Redis.

    The worker's own validation, dedup, joins and lateness apply, all at one clock (--at).
    """
    settings = load_settings()
    card = load_card(settings)
    chosen = window
    if channel is not None:
        check_channel(channel)
    try:
        lines = read_bytes(file, sys.stdin.buffer).splitlines()
    except OperatorError as error:
        raise fail(str(error)) from None
    if at == "last":
        newest = newest_time_micros(lines)
        if newest is None:
            raise fail(f"{file}: no event with a valid time; pass --at")
        if not MIN_TIME_MICROS <= newest <= MAX_TIME_MICROS:
            raise fail(f"{file}: the newest event's time is not {TIME_RANGE} in UTC; pass --at")
        clock = newest
    else:
        clock = parse_time(at)
    engine = Replay(
        card.currency,
        clock,
        settings.max_lateness_seconds,
        channel,
        recontact_window_seconds=settings.recontact_window_seconds,
    )
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("replaying", total=len(lines))
        for start in range(0, len(lines), 2000):
            chunk = lines[start : start + 2000]
            engine.feed(enumerate(chunk, start + 1))
            progress.advance(task, len(chunk))
    outcomes, refused = engine.outcome_counts(), engine.refused_counts()
    _print_report(
        build_report(engine.snapshot(), card),
        chosen,
        as_json,
        {"events": outcomes, "refused": refused},
        card.ramp_tolerance,
    )
    if not as_json:
        say(err, f"events: {_counts(outcomes)}; refused lines or events: {_counts(refused)}")
        for example in engine.examples:
            say(err, f"  line {example.line}: {example.reason}: {example.message}")
    if refused:
        raise typer.Exit(EXIT_FAILURE)


def _counts(counts: dict[str, int]) -> str:
    """`counted 15, duplicate 1`, or `none`."""
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"

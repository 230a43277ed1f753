"""`roi-metrics publish` and `roi-metrics simulate`: events onto the channel topics."""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import typer

from roi_metrics.cli.common import (
    EXIT_FAILURE,
    check_channel,
    err,
    fail,
    load_card,
    load_settings,
    one_line,
    out,
    run_operator,
    say,
)
from roi_metrics.domain.costcard import ChannelRamp, CostCard
from roi_metrics.ingest.decode import MAX_BATCH_EVENTS
from roi_metrics.traffic.events import OperatorError, check_events, read_bytes, read_events
from roi_metrics.traffic.publish import Limits, Simulation, send_records
from roi_metrics.traffic.publish import Progress as SimulationProgress
from roi_metrics.traffic.simulator import DEFAULT_CHANNELS, RETURN_CHANCE, Simulator
from roi_metrics.traffic.simulator import Options as SimulatorOptions

MODES: Final = ("structured", "batch", "binary")


class Scenario(StrEnum):
    """What the simulator plays."""

    NORMAL = "normal"
    DEGRADE = "degrade"


def publish(
    channel: Annotated[str, typer.Argument(help="The channel to publish to.")],
    file: Annotated[
        Path | None,
        typer.Argument(help="JSON (one event or an array) or NDJSON; '-' or none: stdin."),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_BATCH_EVENTS,
            help="Events per record in batch mode (one conversation per record).",
        ),
    ] = 1,
    mode: Annotated[
        str,
        typer.Option(
            help="structured: one CloudEvent a record; batch: a JSON array of up to --batch; "
            "binary: the data, attributes in ce_ headers.",
        ),
    ] = "structured",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; send nothing.")] = (
        False
    ),
) -> None:
    """Validate events as the worker would and send the valid ones to the channel's topic.

    Prints what was refused and why; exits 1 when anything was refused, 0 otherwise.
    """
    if mode not in MODES:
        raise fail(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "binary" and batch > 1:
        raise fail("--batch: binary mode carries one event a record")
    settings = load_settings()
    card = load_card(settings)
    check_channel(channel)
    try:
        data = read_bytes(file, sys.stdin.buffer)
    except OperatorError as error:
        raise fail(str(error)) from None
    checked = check_events(read_events(data), channel, card.currency, batch, mode=mode)
    topic = settings.topic_prefix + channel
    if checked.records and not dry_run:
        run_operator(send_records(settings, topic, checked.records))
    verb = "would send" if dry_run else "sent"
    say(
        out,
        f"{verb} {checked.events} events in {len(checked.records)} records to {topic}; "
        f"refused {len(checked.problems)}",
    )
    for problem in checked.problems:  # one line each, as replay says them; never markup
        say(err, f"  {problem.where}: {problem.reason}: {one_line(problem.message)}")
    if checked.problems:
        raise typer.Exit(EXIT_FAILURE)


def ramps_of(card: CostCard, channels: list[str]) -> dict[str, ChannelRamp]:
    """The card's expected learning curve of each channel (CONTRACT.md §11)."""
    found = {channel: card.channel_ramp(channel) for channel in channels}
    return {channel: ramp for channel, ramp in found.items() if ramp is not None}


def simulate(  # noqa: PLR0917  (each parameter is a command-line option)
    channels: Annotated[str, typer.Option(help="Comma-separated channels.")] = ",".join(
        DEFAULT_CHANNELS
    ),
    rate: Annotated[float, typer.Option(min=0.1, help="Events per second (about).")] = 20.0,
    seed: Annotated[int, typer.Option(help="Same seed, same conversations.")] = 42,
    time_scale: Annotated[
        float,
        typer.Option(min=0, help="Simulated seconds per real second; 17280 = 120 days in 10 min."),
    ] = 1.0,
    start_day: Annotated[
        float, typer.Option(min=0, help="Days since go-live when the run starts.")
    ] = 0.0,
    scenario: Annotated[
        Scenario,
        typer.Option(help="degrade: one channel's AI stops resolving.", case_sensitive=False),
    ] = Scenario.NORMAL,
    degrade_channel: Annotated[str, typer.Option(help="The channel that degrades.")] = "web",
    degrade_after: Annotated[
        float, typer.Option(min=0, help="Seconds into the run the degradation starts.")
    ] = 30.0,
    add_channel: Annotated[
        str | None, typer.Option(help="A channel to plug in mid-run (its topic is created).")
    ] = None,
    add_after: Annotated[float, typer.Option(min=0, help="Seconds before it is added.")] = 60.0,
    backfill_days: Annotated[
        float, typer.Option(min=0, max=7, help="Publish this many days of history first.")
    ] = 0.0,
    returning: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of conversations started by a customer back after an AI resolution.",
        ),
    ] = RETURN_CHANCE,
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
    max_events: Annotated[int, typer.Option(min=0, help="Stop after this many events.")] = 0,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of new topics.")] = 3,
    output: Annotated[
        Path | None, typer.Option(help="Also write every event here (NDJSON, for replay).")
    ] = None,
    run_id: Annotated[
        str, typer.Option(help="Fixes event ids (default: random, so reruns are not duplicates).")
    ] = "",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
    follow_ramp: Annotated[
        bool,
        typer.Option(
            "--follow-ramp",
            help="Each channel's AI resolves as the cost card's [ramp] expects today (whatsapp "
            "above it, email below, the others on it), not on the simulator's own ramp-up.",
        ),
    ] = False,
) -> None:
    """Publish realistic support traffic to the channel topics until Ctrl-C."""
    numbers = {
        "--rate": rate,
        "--time-scale": time_scale,
        "--start-day": start_day,
        "--degrade-after": degrade_after,
        "--add-after": add_after,
        "--backfill-days": backfill_days,
        "--returning": returning,
        "--duration": duration,
    }
    for option, number in numbers.items():
        if not math.isfinite(number):
            raise fail(f"{option}: must be a finite number (got {number})")
    settings = load_settings()
    card = load_card(settings)
    if follow_ramp and card.ramp is None:
        raise fail(f"--follow-ramp: the cost card {settings.cost_card} has no [ramp] section")
    names = [check_channel(name.strip()) for name in channels.split(",") if name.strip()]
    if not names:
        raise fail("--channels: give at least one channel")
    if scenario is Scenario.DEGRADE and degrade_channel not in names:
        raise fail(f"--degrade-channel {degrade_channel!r} is not among --channels")
    options = SimulatorOptions(
        channels=names,
        rate=rate,
        seed=seed,
        time_scale=time_scale,
        start_day=start_day,
        degrade=degrade_channel if scenario is Scenario.DEGRADE else None,
        degrade_after=degrade_after,
        add_channel=check_channel(add_channel) if add_channel else None,
        add_after=add_after,
        backfill_days=backfill_days,
        returning=returning,
        currency=card.currency,
        run_id=run_id,
        ramps=ramps_of(card, [*names, *([add_channel] if add_channel else [])])
        if follow_ramp
        else None,
    )

    def progress_line(progress: SimulationProgress, simulator: Simulator) -> None:
        if quiet:
            return
        elapsed = max(1e-9, time.time() - progress.started)
        channels_sent = ", ".join(f"{c} {n:,}" for c, n in sorted(progress.by_channel.items()))
        state = (
            f", {options.degrade} degraded"
            if simulator.degraded(options.degrade or "", time.time())
            else ""
        )
        say(
            err,
            f"{elapsed:6.0f} s  day {simulator.day(time.time()):5.1f}{state}  "
            f"{progress.sent:,} events ({progress.sent / elapsed:.1f}/s): {channels_sent}",
        )

    limits = Limits(duration=duration, max_events=max_events, partitions=partitions)
    try:
        sink = output.open("w", encoding="utf-8") if output else None
    except OSError as error:
        raise fail(f"--output {output}: {error.strerror}") from None
    run = Simulation(settings, options, limits, progress_line, sink)

    async def main() -> SimulationProgress:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, run.stop.set)
        return await run.run()

    try:
        done = run_operator(main())
    finally:
        if sink is not None:
            sink.close()
    say(out, f"published {done.sent:,} events to {len(done.topics)} topics")

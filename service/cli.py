"""The `roi-metrics` command line.

Exit codes: 0 ok, 1 failure, 2 bad usage or bad configuration. A mistake a user can make gets
one line saying what, where and how to fix it, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import Progress
from rich.table import Table

from service import __version__
from service.contract import CHANNEL_PATTERN, rfc3339_micros
from service.decode import MAX_BATCH_EVENTS
from service.domain.costcard import CostCard, CostCardError, load_cost_card
from service.domain.timebuckets import Window
from service.operator import (
    Limits,
    OperatorError,
    Simulation,
    check_events,
    check_kafka,
    create_channel,
    read_events,
    read_text,
    send_records,
)
from service.operator import Progress as SimulationProgress
from service.replay import Replay, newest_time_micros
from service.report import Report, build_report, channel_table, program_table, report_json
from service.settings import Settings
from service.simulator import DEFAULT_CHANNELS, Simulator
from service.simulator import Options as SimulatorOptions
from service.top import fetch_alerts, frame

T = TypeVar("T")
CHANNEL = re.compile(CHANNEL_PATTERN)

EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2

app = typer.Typer(
    name="roi-metrics",
    help="Live return on investment of AI customer support.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
err = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped or redirected output gets wide tables instead of the 80 columns Rich assumes.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def _version(value: bool) -> None:
    if value:
        out.print(f"roi-metrics {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Live return on investment of AI customer support."""


@config_app.command("check")
def config_check(
    cost_card: Annotated[Path, typer.Argument(help="The cost card (TOML) to validate.")],
) -> None:
    """Validate a cost card and summarise it; exit 2 with one line if it is wrong."""
    try:
        card = load_cost_card(cost_card)
    except CostCardError as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    program = card.program
    one_off = sum(cost.amount_micros for cost in program.one_off) / 1_000_000
    monthly = (program.subscription_per_month_micros + program.optimisation_per_month_micros) / 1e6
    out.print(f"{cost_card}: ok", markup=False)
    out.print(
        f"  currency {card.currency}, go-live {program.go_live}, target ROI {card.target_roi}\n"
        f"  recurring {monthly:,.2f}/month, one-off {one_off:,.2f} over "
        f"{program.amortize_months} months\n"
        f"  channels priced: {', '.join(sorted(card.human_cost_per_resolution))}",
        markup=False,
    )


def _fail(message: str, code: int = EXIT_BAD_CONFIG) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment; one line and exit 2 when one is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = (
            "ROI_" + "_".join(str(part) for part in first["loc"]).upper()
            if first["loc"]
            else "settings"
        )
        raise _fail(f"{where}: {first['msg']}") from None


def load_card(settings: Settings) -> CostCard:
    try:
        return load_cost_card(settings.cost_card)
    except CostCardError as error:
        raise _fail(f"{error} (set ROI_COST_CARD to use another file)") from None


def redis_client(settings: Settings, timeout: float = 5) -> Any:
    """A synchronous Redis client (exporter, report, top) that fails fast when Redis is away."""
    import redis  # noqa: PLC0415  (the worker's commands use the asyncio client)

    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=2,
        socket_timeout=timeout,
        **settings.redis_options(),
    )


def print_banner(what: str, settings: Settings) -> None:
    err.print(f"roi-metrics {__version__} {what}", markup=False)
    for name, value in settings.describe().items():
        err.print(f"  {name} = {value}", markup=False)


LogLevel = Annotated[
    str, typer.Option("--log-level", help="debug, info, warn or error.", case_sensitive=False)
]


@app.command()
def worker(log_level: LogLevel = "info") -> None:
    """Consume every support.events.<channel> topic and keep the figures in Redis.

    Configured by ROI_* environment variables (see docs/configuration.md); serves /metrics,
    /healthz and /readyz on ROI_WORKER_HOST:ROI_WORKER_PORT.
    """
    from faust import Worker  # noqa: PLC0415  (importing faust is slow; only the worker needs it)

    from service.app import create_app  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    try:  # Faust creates only the last level of its data directory
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(f"ROI_DATA_DIR {settings.data_dir}: {error.strerror}") from None
    _run(check_kafka(settings))  # one line, not Faust's traceback, when Kafka is not there
    print_banner("worker", settings)
    faust_app, _ = create_app(settings, card)
    Worker(faust_app, loglevel=log_level.lower(), quiet=True).execute_from_commandline()


@app.command()
def exporter(
    port: Annotated[
        int | None, typer.Option("--port", help="Port to serve on (default: ROI_EXPORTER_PORT).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: ROI_EXPORTER_HOST).")
    ] = None,
) -> None:
    """Serve the business figures on /metrics (and /healthz, /readyz) for Prometheus.

    Stateless: reads Redis at every scrape; run as many replicas as you like.
    """
    import redis  # noqa: PLC0415  (only this command needs the synchronous client)

    from service.exporter import RoiCollector, serve  # noqa: PLC0415
    from service.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    bind, listen = host or settings.exporter_host, port or settings.exporter_port
    client = redis_client(settings, timeout=2)  # a scrape must not hang on Redis

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    print_banner("exporter", settings)
    err.print(f"serving http://{bind}:{listen}/metrics", markup=False)
    try:
        serve(RoiCollector(card, StateReader(client).snapshot), ready, bind, listen)
    except OSError as error:
        raise _fail(f"cannot serve on {bind}:{listen}: {error.strerror}", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()


# --- operator commands ---------------------------------------------------------------------

channel_app = typer.Typer(help="Manage channels (one Kafka topic each).", no_args_is_help=True)
app.add_typer(channel_app, name="channel")
CHANNEL_RULE = "lowercase letters, digits, '-' or '_', starting with a letter or digit, at most 32"
WINDOW_NAMES = ", ".join(window.value for window in Window)


def check_channel(name: str) -> str:
    if not CHANNEL.match(name):
        raise _fail(f"channel {name!r} is not a valid name: {CHANNEL_RULE} characters")
    return name


def parse_window(name: str) -> Window:
    try:
        return Window(name)
    except ValueError:
        raise _fail(f"--window {name!r}: use one of {WINDOW_NAMES}") from None


def parse_time(value: str, option: str = "--at") -> int:
    """Unix microseconds of 'now', an RFC 3339 time or Unix seconds."""
    if value == "now":
        return time.time_ns() // 1000
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return int(Decimal(value) * 1_000_000)
    try:
        return rfc3339_micros(value)
    except ValueError as error:
        raise _fail(f"{option} {value!r}: {error} (or 'now', or Unix seconds)") from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an operator coroutine; its OperatorError becomes one line and exit 1."""
    try:
        return asyncio.run(coroutine)
    except OperatorError as error:
        raise _fail(str(error), EXIT_FAILURE) from None


@channel_app.command("add")
def channel_add(
    name: Annotated[str, typer.Argument(help="The channel, e.g. voice: topic <prefix><name>.")],
    partitions: Annotated[
        int, typer.Option(min=1, max=1000, help="Partitions: how many workers can share it.")
    ] = 6,
) -> None:
    """Create a channel's topic; the workers pick it up within ROI_DISCOVERY_INTERVAL_SECONDS."""
    settings = load_settings()
    topic = settings.topic_prefix + check_channel(name)
    created = _run(create_channel(settings, name, partitions))
    if created:
        out.print(f"created {topic} ({partitions} partitions)", markup=False)
    else:
        out.print(f"{topic} already exists: nothing to do", markup=False)


@app.command()
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
            help="Events per record (batched mode, one conversation per record); 1: one each.",
        ),
    ] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; send nothing.")] = (
        False
    ),
) -> None:
    """Validate events as the worker would and send the valid ones to the channel's topic.

    Prints what was refused and why; exits 1 when anything was refused, 0 otherwise.
    """
    settings = load_settings()
    card = load_card(settings)
    check_channel(channel)
    try:
        text = read_text(file, sys.stdin)
    except OperatorError as error:
        raise _fail(str(error)) from None
    checked = check_events(read_events(text), channel, card.currency, batch)
    topic = settings.topic_prefix + channel
    if checked.records and not dry_run:
        _run(send_records(settings, topic, checked.records))
    verb = "would send" if dry_run else "sent"
    out.print(
        f"{verb} {checked.events} events in {len(checked.records)} records to {topic}; "
        f"refused {len(checked.problems)}",
        markup=False,
    )
    if checked.problems:
        table = Table("where", "reason", "why", title="Refused", title_justify="left")
        for problem in checked.problems:
            table.add_row(problem.where, problem.reason, problem.message)
        err.print(table)
        raise typer.Exit(EXIT_FAILURE)


def _print_report(report: Report, window: Window, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        sys.stdout.write(json.dumps({**report_json(report), **extra}, indent=2) + "\n")
        return
    out.print(program_table(report, list(Window)))
    if report.channels:
        out.print(channel_table(report, window))
    else:
        out.print("No channel has counted an event.")


@app.command()
def report(
    window: Annotated[str, typer.Option(help=f"Window of the channel table: {WINDOW_NAMES}.")] = (
        "24h"
    ),
    at: Annotated[
        str, typer.Option(help="Clock of the windows: now, RFC 3339 or Unix seconds.")
    ] = "now",
    as_json: Annotated[bool, typer.Option("--json", help="Every window, as JSON.")] = False,
) -> None:
    """The current figures from Redis: programme and channels, per window."""
    import redis  # noqa: PLC0415

    from service.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    chosen, clock = parse_window(window), parse_time(at) // 1_000_000
    client = redis_client(settings)
    try:
        snapshot = StateReader(client).snapshot(clock)
    except redis.RedisError as error:
        raise _fail(
            f"cannot read Redis ({error.__class__.__name__}: {error}); start it "
            "(`make stack-up`) or set ROI_REDIS_URL",
            EXIT_FAILURE,
        ) from None
    finally:
        client.close()
    _print_report(build_report(snapshot, card), chosen, as_json, {})


@app.command()
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
    window: Annotated[str, typer.Option(help=f"Window of the channel table: {WINDOW_NAMES}.")] = (
        "24h"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Every window, as JSON.")] = False,
) -> None:
    """Compute the figures of an export offline: no Kafka, no Redis.

    The worker's own validation, dedup, joins and lateness apply, all at one clock (--at).
    """
    settings = load_settings()
    card = load_card(settings)
    chosen = parse_window(window)
    if channel is not None:
        check_channel(channel)
    try:
        lines = read_text(file, sys.stdin).encode().splitlines()
    except OperatorError as error:
        raise _fail(str(error)) from None
    if at == "last":
        newest = newest_time_micros(lines)
        if newest is None:
            raise _fail(f"{file}: no event with a valid time; pass --at")
        clock = newest
    else:
        clock = parse_time(at)
    engine = Replay(card.currency, clock, settings.max_lateness_seconds, channel)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("replaying", total=len(lines))
        for start in range(0, len(lines), 2000):
            chunk = lines[start : start + 2000]
            engine.feed(enumerate(chunk, start + 1))
            progress.advance(task, len(chunk))
    outcomes: dict[str, int] = {}
    for (_, outcome), count in sorted(engine.outcomes.items()):
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + count
    refused = dict(sorted(engine.refused.items()))
    _print_report(
        build_report(engine.snapshot(), card),
        chosen,
        as_json,
        {"events": outcomes, "refused": refused},
    )
    if not as_json:
        err.print(f"events: {outcomes or 'none'}; refused lines or events: {refused or 'none'}")
        for example in engine.examples:
            err.print(f"  line {example.line}: {example.reason}: {example.message}", markup=False)


@app.command()
def top(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 5.0,
    window: Annotated[str, typer.Option(help=f"Window shown: {WINDOW_NAMES}.")] = "24h",
    prometheus: Annotated[
        str, typer.Option(help="Prometheus to read alerts from.", envvar="ROI_PROMETHEUS_URL")
    ] = "http://127.0.0.1:19090",
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
) -> None:
    """A live terminal view of the headline figures and alerts, refreshed every few seconds."""
    import redis  # noqa: PLC0415

    from service.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    chosen = parse_window(window)
    client = redis_client(settings)
    reader = StateReader(client)

    def screen() -> RenderableType:
        try:
            current: Report | None = build_report(reader.snapshot(int(time.time())), card)
            problem = None
        except redis.RedisError as error:
            current, problem = None, f"cannot read Redis: {error}"
        return frame(current, card.target_roi, chosen, fetch_alerts(prometheus), problem)

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


@app.command()
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
        str, typer.Option(help="normal, or degrade: one channel's AI stops resolving.")
    ] = "normal",
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
) -> None:
    """Publish realistic support traffic to the channel topics until Ctrl-C."""
    settings = load_settings()
    card = load_card(settings)
    names = [check_channel(name.strip()) for name in channels.split(",") if name.strip()]
    if not names:
        raise _fail("--channels: give at least one channel")
    if scenario not in ("normal", "degrade"):
        raise _fail(f"--scenario {scenario!r}: use normal or degrade")
    if scenario == "degrade" and degrade_channel not in names:
        raise _fail(f"--degrade-channel {degrade_channel!r} is not among --channels")
    options = SimulatorOptions(
        channels=names,
        rate=rate,
        seed=seed,
        time_scale=time_scale,
        start_day=start_day,
        degrade=degrade_channel if scenario == "degrade" else None,
        degrade_after=degrade_after,
        add_channel=check_channel(add_channel) if add_channel else None,
        add_after=add_after,
        backfill_days=backfill_days,
        currency=card.currency,
        run_id=run_id,
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
        err.print(
            f"{elapsed:6.0f} s  day {simulator.day(time.time()):5.1f}{state}  "
            f"{progress.sent:,} events ({progress.sent / elapsed:.1f}/s): {channels_sent}",
            markup=False,
        )

    limits = Limits(duration=duration, max_events=max_events, partitions=partitions)
    try:
        sink = output.open("w", encoding="utf-8") if output else None
    except OSError as error:
        raise _fail(f"--output {output}: {error.strerror}") from None
    run = Simulation(settings, options, limits, progress_line, sink)

    async def main() -> SimulationProgress:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, run.stop.set)
        return await run.run()

    try:
        done = _run(main())
    finally:
        if sink is not None:
            sink.close()
    out.print(f"published {done.sent:,} events to {len(done.topics)} topics", markup=False)

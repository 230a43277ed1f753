"""The `roi-metrics` command line.

Exit codes: 0 ok, 1 failure, 2 bad usage or bad configuration. A mistake a user can make gets
one line saying what, where and how to fix it, never a traceback.

Text that comes from outside (events, Redis, Prometheus, error messages) reaches Rich as
`rich.text.Text`, never as markup, and the consoles replace no :emoji: codes. Error and
warning lines, every log record and a traceback, if one ever escapes, go through `_redact`:
the secrets of the settings (the Redis URL's password, wherever it is in the URL, the Redis
and Kafka SASL passwords) are never printed; the start-up banner shows them masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from roi_metrics import __version__
from roi_metrics.cli.top import escaped_names, fetch_alerts, frame, printable
from roi_metrics.domain.costcard import CostCard, CostCardError, load_cost_card
from roi_metrics.domain.report import (
    Report,
    build_report,
    channel_table,
    program_table,
    report_json,
)
from roi_metrics.domain.timebuckets import Window
from roi_metrics.ingest.contract import CHANNEL_PATTERN, rfc3339_micros
from roi_metrics.ingest.decode import MAX_BATCH_EVENTS
from roi_metrics.ingest.replay import Replay, newest_time_micros
from roi_metrics.settings import Settings
from roi_metrics.state.memory import eviction_problem
from roi_metrics.traffic.publish import (
    Limits,
    OperatorError,
    Simulation,
    channel_topics,
    check_events,
    check_kafka,
    create_channel,
    delete_channel_topic,
    read_bytes,
    read_events,
    send_records,
)
from roi_metrics.traffic.publish import Progress as SimulationProgress
from roi_metrics.traffic.simulator import DEFAULT_CHANNELS, Simulator
from roi_metrics.traffic.simulator import Options as SimulatorOptions

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
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Check configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
# Piped or redirected output gets wide tables instead of the 80 columns Rich assumes.
out = Console(
    highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 160
)
_loaded: list[Settings] = []
"""Every Settings loaded in this process (see load_settings): whose secrets to redact."""


def _redact(text: str) -> str:
    """`text` without the secrets of the settings loaded so far (a URL shown masked)."""
    for settings in _loaded:
        text = settings.redact(text)
    return text


def _say(console: Console, text: str, style: str = "") -> None:
    """Print `text` as it is: no markup, no emoji codes."""
    console.print(Text(printable(text), style=style))


def _version(value: bool) -> None:
    if value:
        _say(out, f"roi-metrics {__version__}")
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
        raise _fail(str(error)) from None
    program = card.program
    one_off = sum(cost.amount_micros for cost in program.one_off) / 1_000_000
    monthly = (program.subscription_per_month_micros + program.optimisation_per_month_micros) / 1e6
    _say(out, f"{cost_card}: ok")
    _say(
        out,
        f"  currency {card.currency}, go-live {program.go_live}, target ROI {card.target_roi}\n"
        f"  recurring {monthly:,.2f}/month, one-off {one_off:,.2f} over "
        f"{program.amortize_months} months\n"
        f"  channels priced: {', '.join(sorted(card.human_cost_per_resolution))}",
    )


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()


def _fail(message: str, code: int = EXIT_BAD_CONFIG) -> typer.Exit:
    """Say `message` as one `error:` line (secrets redacted); the Exit to raise."""
    _say(err, f"error: {_redact(_one_line(message))}")
    return typer.Exit(code)


def _warn(message: str) -> None:
    """Say `message` as one `warning:` line (secrets redacted)."""
    _say(err, f"warning: {_redact(_one_line(message))}")


def _redacting_log_records() -> None:
    """Make every log record's message and traceback go through `_redact`: a library that
    logs a URL or an exception carrying one cannot print a secret. Installed once."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        # a malformed record stays as it is: its handler reports it
        with contextlib.suppress(Exception):
            record.msg, record.args = _redact(record.getMessage()), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = _redact("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            record.stack_info = _redact(record.stack_info)
        return record

    redacting.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)


def load_settings() -> Settings:
    """The settings from the environment; one line and exit 2 when one is wrong. Their
    secrets are redacted from everything this process prints from now on."""
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = (
            "ROI_" + "_".join(str(part) for part in first["loc"]).upper()
            if first["loc"]
            else "settings"
        )
        raise _fail(f"{where}: {first['msg']}") from None
    if settings not in _loaded:
        _loaded.append(settings)
    _redacting_log_records()
    return settings


def load_card(settings: Settings) -> CostCard:
    try:
        return load_cost_card(settings.cost_card)
    except CostCardError as error:
        raise _fail(f"{error} (set ROI_COST_CARD to use another file)") from None


def redis_client(settings: Settings, timeout: float = 5) -> Any:
    """A synchronous Redis client (exporter, report, top) that fails fast when Redis is away."""
    import redis  # noqa: PLC0415  (the worker's commands use the asyncio client)

    try:
        client = redis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_connect_timeout=2,
            socket_timeout=timeout,
            **settings.redis_options(),
        )
        client.connection_pool.make_connection()  # no I/O: refuses unknown parameters now
    except (ValueError, TypeError) as error:  # a query parameter redis-py cannot read
        raise _fail(f"ROI_REDIS_URL (or REDIS_URL): {error}") from None
    return client


def redis_unreachable(error: Exception, doing: str = "read") -> typer.Exit:
    """One line and exit 1 for a Redis error (its message redacted, as every error line)."""
    return _fail(
        f"cannot {doing} Redis ({error.__class__.__name__}: {error}); start it "
        "(`make stack-up`) or set ROI_REDIS_URL",
        EXIT_FAILURE,
    )


def print_banner(what: str, settings: Settings) -> None:
    _say(err, f"roi-metrics {__version__} {what}")
    for name, value in settings.describe().items():
        _say(err, f"  {name} = {value}")


LogLevel = Annotated[
    str, typer.Option("--log-level", help="debug, info, warn or error.", case_sensitive=False)
]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def refuse_evicting_redis(settings: Settings) -> None:
    """Exit 2 with one line that names the fix when Redis may evict keys. A Redis that does
    not answer yet is waited for: the worker checks again while it runs, the exporter's
    /readyz fails until it is right."""
    import redis  # noqa: PLC0415

    client = redis_client(settings)
    try:
        info = client.info("memory")
    except redis.RedisError as error:
        _warn(f"cannot check Redis's eviction policy now ({type(error).__name__}: {error})")
        return
    except (TypeError, ValueError) as error:  # redis-py refused a query parameter
        raise _fail(f"ROI_REDIS_URL (or REDIS_URL): {error}") from None
    finally:
        client.close()
    problem = eviction_problem(info)
    if problem is not None:
        raise _fail(problem)


@app.command()
def worker(log_level: LogLevel = "info") -> None:
    """Consume every support.events.<channel> topic and keep the figures in Redis.

    Configured by ROI_* environment variables (see docs/configuration.md); serves /metrics,
    /healthz and /readyz on ROI_WORKER_HOST:ROI_WORKER_PORT.
    """
    settings = load_settings()  # first: from here on, its secrets are redacted
    card = load_card(settings)

    from faust import Worker  # noqa: PLC0415  (importing faust is slow; only the worker needs it)

    from roi_metrics.worker.app import create_app  # noqa: PLC0415

    try:  # Faust creates only the last level of its data directory
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(f"ROI_DATA_DIR {settings.data_dir}: {error.strerror}") from None
    _run(check_kafka(settings))  # one line, not Faust's traceback, when Kafka is not there
    refuse_evicting_redis(settings)
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

    from roi_metrics.export.collector import RoiCollector, serve  # noqa: PLC0415
    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    bind, listen = host or settings.exporter_host, port or settings.exporter_port
    client = redis_client(settings, timeout=2)  # a scrape must not hang on Redis

    said: list[str | None] = [None]

    def ready() -> bool:
        """Redis answers and will not evict (a change of policy is said once, in one line)."""
        try:
            problem = eviction_problem(client.info("memory"))
        except redis.RedisError:
            return False
        if problem != said[0]:
            said[0] = problem
            if problem is not None:
                _warn(f"not ready: {problem}")
        return problem is None

    refuse_evicting_redis(settings)
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop: exit 0, as Ctrl-C does
    print_banner("exporter", settings)
    _say(err, f"serving http://{bind}:{listen}/metrics")
    try:
        collector = RoiCollector(
            card, StateReader(client).snapshot, memory=lambda: client.info("memory")
        )
        serve(collector, ready, bind, listen)
    except OSError as error:
        raise _fail(f"cannot serve on {bind}:{listen}: {error.strerror}", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        pass


def _excepthook(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    """A traceback that escapes anyway is printed with its secrets redacted."""
    sys.stderr.write(_redact("".join(traceback.format_exception(kind, error, trace))))


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
            message = _one_line(error.format_message())
            where = context.command_path if context is not None else "roi-metrics"
            _say(err, f"error: {message} (see {where} --help)")
        sys.exit(getattr(error, "exit_code", EXIT_BAD_CONFIG))
    sys.exit(code if isinstance(code, int) else 0)


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
        _say(out, f"created {topic} ({partitions} partitions)")
    else:
        _say(out, f"{topic} already exists: nothing to do")


def _keys(count: int) -> str:
    return f"{count:,} key{'' if count == 1 else 's'} in Redis"


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _micros(value: int | None) -> str | None:
    """Exact money from micro-units, as report --json writes it ("12.500000")."""
    if value is None:
        return None
    units, rest = divmod(abs(value), 1_000_000)
    return f"{'-' if value < 0 else ''}{units}.{rest:06d}"


@channel_app.command("list")
def channel_list(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """The channels: registered in Redis (counted an event), with a topic in Kafka, or both.

    A registered channel without a topic is one whose topic was deleted; a topic without a
    registered channel has not counted an event yet (or was removed and has had none since).
    """
    import redis  # noqa: PLC0415

    from roi_metrics.state.channels import list_channels, registered  # noqa: PLC0415

    settings = load_settings()
    client = redis_client(settings)
    try:
        registered(client)  # fail fast, before waiting on Kafka, when Redis is away
        kafka_problem = None
        try:
            topics: set[str] | None = asyncio.run(channel_topics(settings))
        except OperatorError as error:
            topics, kafka_problem = None, _redact(str(error))
        channels = list_channels(client, topics or ())
    except redis.RedisError as error:
        raise redis_unreachable(error) from None
    finally:
        client.close()

    def topic_exists(name: str) -> bool | None:
        return None if topics is None else name in topics

    if as_json:
        rows = [
            {
                "channel": info.name,
                "registered": info.registered,
                "topic": settings.topic_prefix + info.name,
                "topic_exists": topic_exists(info.name),
                "conversations": info.conversations,
                "ai_cost": _micros(info.ai_cost_micros),
            }
            for info in channels
        ]
        document = {"channels": rows, "kafka_error": kafka_problem}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    if kafka_problem is not None:
        _warn(f"{kafka_problem}; topics not listed")
    if not channels:
        kafka = "" if topics is None else ", no channel topic in Kafka"
        _say(out, f"No channel: none registered in Redis{kafka}.")
        return
    table = Table(title="Channels", title_justify="left")
    table.add_column("channel")
    table.add_column("registered")
    table.add_column("topic exists")
    table.add_column("conversations (all)", justify="right")
    table.add_column("AI cost (all)", justify="right")
    for info in channels:
        conversations, cost = info.conversations, info.ai_cost_micros
        table.add_row(
            Text(printable(info.name)),  # from Redis: any text
            Text("yes" if info.registered else "no (topic only)"),
            Text(_yes_no(topic_exists(info.name))),
            Text("—" if conversations is None else f"{conversations:,}"),
            Text("—" if cost is None else f"{Decimal(cost) / 1_000_000:,.2f}"),
        )
    out.print(table)


@channel_app.command("remove")
def channel_remove(
    name: Annotated[str, typer.Argument(help="The channel to forget.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do it; without it, only say what would be deleted.")
    ] = False,
    delete_topic: Annotated[
        bool,
        typer.Option("--delete-topic", help="Delete its Kafka topic too (first), with its events."),
    ] = False,
) -> None:
    """Forget a channel: it leaves the exporter's /metrics and every key it has in Redis is
    deleted (its figures, joins, dedup marks, offsets).

    Its topic stays unless --delete-topic: while it exists, the channel comes back with its
    next counted event, counted from there (what was removed does not come back).
    """
    import redis  # noqa: PLC0415

    from roi_metrics.state.channels import count_keys, registered, remove_channel  # noqa: PLC0415

    settings = load_settings()
    check_channel(name)
    topic = settings.topic_prefix + name
    client = redis_client(settings)
    try:
        is_registered = name in registered(client)
        keys_found = count_keys(client, name)
        has_topic = delete_topic and name in _run(channel_topics(settings))
        if not (is_registered or keys_found or has_topic):
            hint = "" if delete_topic else " (a topic without state goes with --delete-topic)"
            raise _fail(f"channel {name!r} is unknown: not registered, no state in Redis{hint}")
        steps = [f"delete topic {topic} and its events"] if has_topic else []
        steps += [f"unregister {name}"] if is_registered else []
        steps.append(f"delete its {_keys(keys_found)}")
        if not yes:
            raise _fail(f"channel remove {name} would {', '.join(steps)}; pass --yes to do it")
        if has_topic:
            _run(delete_channel_topic(settings, name))
            _say(out, f"deleted topic {topic}")
        deleted = remove_channel(client, name)
    except redis.RedisError as error:
        raise redis_unreachable(error, "change") from None
    finally:
        client.close()
    _say(
        out,
        f"removed channel {name}: "
        f"{'unregistered' if is_registered else 'was not registered'}, "
        f"deleted {_keys(deleted)}",
    )
    try:
        still = name in asyncio.run(channel_topics(settings))
    except OperatorError as error:
        _warn(
            f"cannot check whether {topic} still exists ({error}); if it does, "
            f"{name} comes back with its next counted event"
        )
        return
    if still:
        _warn(
            f"{topic} still exists: {name} comes back with its next counted event "
            "(--delete-topic deletes the topic)"
        )


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
        data = read_bytes(file, sys.stdin.buffer)
    except OperatorError as error:
        raise _fail(str(error)) from None
    checked = check_events(read_events(data), channel, card.currency, batch)
    topic = settings.topic_prefix + channel
    if checked.records and not dry_run:
        _run(send_records(settings, topic, checked.records))
    verb = "would send" if dry_run else "sent"
    _say(
        out,
        f"{verb} {checked.events} events in {len(checked.records)} records to {topic}; "
        f"refused {len(checked.problems)}",
    )
    for problem in checked.problems:  # one line each, as replay says them; never markup
        _say(err, f"  {problem.where}: {problem.reason}: {_one_line(problem.message)}")
    if checked.problems:
        raise typer.Exit(EXIT_FAILURE)


def _print_report(report: Report, window: Window, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        sys.stdout.write(json.dumps({**report_json(report), **extra}, indent=2) + "\n")
        return
    shown = escaped_names(report)
    out.print(program_table(shown, list(Window)))
    if report.channels:
        out.print(channel_table(shown, window))
    else:
        _say(out, "No channel has counted an event.")


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

    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

    settings = load_settings()
    card = load_card(settings)
    chosen, clock = parse_window(window), parse_time(at) // 1_000_000
    client = redis_client(settings)
    try:
        snapshot = StateReader(client).snapshot(clock)
    except redis.RedisError as error:
        raise redis_unreachable(error) from None
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
        lines = read_bytes(file, sys.stdin.buffer).splitlines()
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
        _say(err, f"events: {_counts(outcomes)}; refused lines or events: {_counts(refused)}")
        for example in engine.examples:
            _say(err, f"  line {example.line}: {example.reason}: {example.message}")
    if refused:
        raise typer.Exit(EXIT_FAILURE)


def _counts(counts: dict[str, int]) -> str:
    """`counted 15, duplicate 1`, or `none`."""
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"


@app.command()
def top(
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 5.0,
    window: Annotated[str, typer.Option(help=f"Window shown: {WINDOW_NAMES}.")] = "24h",
    prometheus: Annotated[
        str, typer.Option(help="Prometheus to read alerts from.", envvar="ROI_PROMETHEUS_URL")
    ] = f"http://127.0.0.1:{os.environ.get('ROI_PROMETHEUS_PORT') or 19090}",
    duration: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
) -> None:
    """A live terminal view of the headline figures and alerts, refreshed every few seconds."""
    import redis  # noqa: PLC0415

    from roi_metrics.state.reader import StateReader  # noqa: PLC0415

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
            current, problem = None, _redact(f"cannot read Redis: {error}")
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
        _say(
            err,
            f"{elapsed:6.0f} s  day {simulator.day(time.time()):5.1f}{state}  "
            f"{progress.sent:,} events ({progress.sent / elapsed:.1f}/s): {channels_sent}",
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
    _say(out, f"published {done.sent:,} events to {len(done.topics)} topics")

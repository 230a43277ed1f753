"""What every command shares: the consoles, one-line errors and warnings with secrets
redacted, the settings and the cost card, the Redis client, and the parsing of the options
several commands take.

Exit codes: 0 ok, 1 failure, 2 bad usage or bad configuration. A mistake a user can make gets
one line saying what, where and how to fix it, never a traceback.

Text that comes from outside (events, Redis, Prometheus, error messages) reaches Rich as
`rich.text.Text`, never as markup, and the consoles replace no :emoji: codes. Error and
warning lines, every log record and a traceback, if one ever escapes, go through `redact`:
the secrets of the settings (the Redis URL's password, wherever it is in the URL, the Redis
and Kafka SASL passwords) are never printed; the start-up banner shows them masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Coroutine
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from roi_metrics import __version__
from roi_metrics.cardfile import load_cost_card
from roi_metrics.cli.render import printable
from roi_metrics.domain.channels import CHANNEL_RULE, is_channel_name
from roi_metrics.domain.costcard import CostCard, CostCardError
from roi_metrics.domain.events import MICROS_PER_SECOND
from roi_metrics.ingest.contract import MAX_TIME_MICROS, TIME_RANGE, rfc3339_micros
from roi_metrics.settings import Settings
from roi_metrics.state.memory import eviction_problem
from roi_metrics.traffic.events import OperatorError

T = TypeVar("T")
EXIT_FAILURE: Final = 1
EXIT_BAD_CONFIG: Final = 2

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
# Piped or redirected output gets wide tables instead of the 80 columns Rich assumes.
out = Console(
    highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 160
)
_loaded: list[Settings] = []
"""Every Settings loaded in this process (see load_settings): whose secrets to redact."""


class LogLevelName(StrEnum):
    """The worker's log levels."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


LogLevel = Annotated[LogLevelName, typer.Option("--log-level", case_sensitive=False)]


def redact(text: str) -> str:
    """`text` without the secrets of the settings loaded so far (a URL shown masked)."""
    for settings in _loaded:
        text = settings.redact(text)
    return text


def say(console: Console, text: str, style: str = "") -> None:
    """Print `text` as it is: no markup, no emoji codes."""
    console.print(Text(printable(text), style=style))


def one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()


def fail(message: str, code: int = EXIT_BAD_CONFIG) -> typer.Exit:
    """Say `message` as one `error:` line (secrets redacted); the Exit to raise."""
    say(err, f"error: {redact(one_line(message))}")
    return typer.Exit(code)


def warn(message: str) -> None:
    """Say `message` as one `warning:` line (secrets redacted)."""
    say(err, f"warning: {redact(one_line(message))}")


def _redacting_log_records() -> None:
    """Make every log record's message and traceback go through `redact`: a library that
    logs a URL or an exception carrying one cannot print a secret. Installed once."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        # a malformed record stays as it is: its handler reports it
        with contextlib.suppress(Exception):
            record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule across settings: its message names the variables
            raise fail(message) from None
        name = "_".join(str(part) for part in first["loc"]).upper()
        if not name.startswith("ROI_"):  # an alias is named in full (ROI_REDIS_URL)
            name = f"ROI_{name}"
        raise fail(f"{name}: {message}") from None
    try:
        settings.check_tls_files()
    except ValueError as error:
        raise fail(str(error)) from None
    if settings not in _loaded:
        _loaded.append(settings)
    _redacting_log_records()
    return settings


def load_card(settings: Settings) -> CostCard:
    try:
        return load_cost_card(settings.cost_card)
    except CostCardError as error:
        raise fail(f"{error}{card_hint(settings.cost_card, str(error))}") from None


def card_hint(path: Path, problem: str) -> str:
    """What to do about the cost card ROI_COST_CARD names, after its problem."""
    if "No such file" in problem:
        here = Path("costs.toml")
        if here.is_file() and path != here:
            return " (./costs.toml is here: set ROI_COST_CARD=costs.toml)"
        return " (set ROI_COST_CARD to your card; `roi-metrics init` writes a starter one)"
    if "Permission denied" in problem:
        return " (this user may not read it: make it readable, e.g. by uid 10001 in the image)"
    return " (set ROI_COST_CARD to use another file)"


def redis_client(settings: Settings, timeout: float = 5) -> Any:
    """A synchronous Redis client (exporter, report, top) that fails fast when Redis is away."""
    from roi_metrics.state.connect import ERRORS, sync_client  # noqa: PLC0415

    options = {"socket_connect_timeout": 2, "socket_timeout": timeout, **settings.redis_options()}
    url = settings.redis_url.get_secret_value()
    try:
        client = sync_client(url, options, settings.redis_cluster)
        if not settings.redis_cluster:
            client.connection_pool.make_connection()  # no I/O: refuses unknown parameters now
    except (ValueError, TypeError) as error:  # a query parameter redis-py cannot read
        raise fail(f"ROI_REDIS_URL (or REDIS_URL): {error}") from None
    except ERRORS as error:  # a cluster client asks for the cluster's layout at once
        problem = redis_settings_problem(error)
        if problem is not None:
            raise fail(settings.redact(problem)) from None
        said = settings.redact(f"{type(error).__name__}: {error}")
        raise fail(f"cannot reach the Redis Cluster at ROI_REDIS_URL ({said})", 1) from None
    return client


CLOSED: Final = ("reset by peer", "closed by server", "EOF occurred", "Connection closed")
"""How a Redis connection the server closed reads: a TLS server a plaintext client reached,
a client certificate it requires, or a restart."""


REFUSALS: Final = (
    (
        (),
        ("DB index is out of range",),
        "the Redis at ROI_REDIS_URL has no such database ({said}); end ROI_REDIS_URL with "
        "/0 or another database the server has (its `databases` setting)",
    ),
    (
        ("AskError", "MovedError"),
        (),
        "the Redis at ROI_REDIS_URL is a node of a Redis Cluster ({said}); set "
        "ROI_REDIS_CLUSTER=true",
    ),
    (
        (),
        ("Cluster mode is not enabled",),
        "ROI_REDIS_CLUSTER=true but the Redis at ROI_REDIS_URL is not a cluster node ({said}); "
        "set ROI_REDIS_CLUSTER=false",
    ),
    (
        ("AuthenticationError", "AuthenticationWrongNumberOfArgsError"),
        ("NOAUTH", "HELLO must", "WRONGPASS", "invalid username-password pair"),
        "Redis refused this client's credentials ({said}); check the user and password in "
        "ROI_REDIS_URL (or ROI_REDIS_PASSWORD)",
    ),
    (
        ("NoPermissionError",),
        (),
        "Redis's user for this client lacks a permission ({said}); it needs the roi:* keys, "
        "reads, writes, scripts and INFO (docs/production.md)",
    ),
    (
        (),
        ("Hostname mismatch", "IP address mismatch"),
        "Redis has a certificate for another name than the one in ROI_REDIS_URL ({said}); use "
        "a host name the certificate was issued for",
    ),
    (
        (),
        ("CERTIFICATE_VERIFY_FAILED",),
        "Redis has a certificate this client does not trust ({said}); set "
        "ROI_REDIS_SSL_CAFILE to the CA that signed it",
    ),
)
"""(error classes by name, texts in what was said, what to say): Redis refusals that waiting
will not cure, first match wins. A cluster client wraps its node's answer in its own
exception, so the texts are looked for whatever the class."""


def redis_settings_problem(error: Exception) -> str | None:
    """What to fix in the settings when Redis refused this client for good (a password it
    does not take, a permission its user lacks, a certificate this client does not trust,
    the wrong ROI_REDIS_CLUSTER); None for anything that may pass (Redis down, restarting,
    busy)."""
    said = f"{error.__class__.__name__}: {error}"
    classes = {cls.__name__ for cls in type(error).__mro__}
    for names, texts, problem in REFUSALS:
        if classes.intersection(names) or any(text in said for text in texts):
            return problem.format(said=said)
    return None


def redis_unreachable(error: Exception, doing: str = "read") -> typer.Exit:
    """One line for a Redis error (its message redacted, as every error line): exit 2 when
    the fix is in the settings, else 1."""
    problem = redis_settings_problem(error)
    if problem is not None:
        return fail(problem)
    said = f"{error.__class__.__name__}: {error}"
    hint = "start it (`make stack-up`) or set ROI_REDIS_URL"
    if any(text in said for text in CLOSED):
        hint = (
            "if the server requires a client certificate, set ROI_REDIS_SSL_CERTFILE and "
            "ROI_REDIS_SSL_KEYFILE"
            if is_tls_redis()
            else "if the server speaks TLS, use a rediss:// ROI_REDIS_URL"
        )
    return fail(f"cannot {doing} Redis ({said}); {hint}", EXIT_FAILURE)


def is_tls_redis() -> bool:
    """Whether the settings loaded last reach Redis over TLS."""
    return bool(_loaded) and _loaded[-1].redis_url.get_secret_value().startswith("rediss:")


def print_banner(what: str, settings: Settings) -> None:
    say(err, f"roi-metrics {__version__} {what}")
    for name, value in settings.describe().items():
        say(err, f"  {name} = {value}")


STOP: Final = threading.Event()
"""Set by `interrupt`: a server polls it, so a stop that lands while it starts (where the
KeyboardInterrupt can be lost) still stops it."""


def interrupt(signum: int, frame: object) -> None:
    STOP.set()
    raise KeyboardInterrupt


def refuse_evicting_redis(settings: Settings) -> None:
    """Exit 2 with one line that names the fix when Redis may evict keys. A Redis that does
    not answer yet is waited for: the worker checks again while it runs, the exporter's
    /readyz fails until it is right."""
    from roi_metrics.state.connect import ERRORS, memory_info  # noqa: PLC0415

    client = redis_client(settings)
    try:
        info = memory_info(client)
        cluster = client.info("cluster")
    except ERRORS as error:
        problem = redis_settings_problem(error)
        if problem is not None:  # it will not pass by waiting: say so now, not forever
            raise fail(problem) from None
        said = f"{type(error).__name__}: {error}"
        hint = ""
        if any(text in said for text in CLOSED) and not is_tls_redis():
            hint = "; if the server speaks TLS, use a rediss:// ROI_REDIS_URL"
        warn(f"cannot check Redis's eviction policy now ({said}){hint}")
        return
    except (TypeError, ValueError) as error:  # redis-py refused a query parameter
        raise fail(f"ROI_REDIS_URL (or REDIS_URL): {error}") from None
    finally:
        client.close()
    if not settings.redis_cluster and str(cluster.get("cluster_enabled")) == "1":
        raise fail(
            "the Redis at ROI_REDIS_URL is a node of a Redis Cluster; set ROI_REDIS_CLUSTER=true"
        )
    problem = eviction_problem(info)
    if problem is not None:
        raise fail(problem)


def check_channel(name: str) -> str:
    if not is_channel_name(name):
        raise fail(f"channel {name!r} is not a valid name: {CHANNEL_RULE} characters")
    return name


def parse_time(value: str, option: str = "--at") -> int:
    """Unix microseconds of 'now', an RFC 3339 time or Unix seconds."""
    if value == "now":
        return time.time_ns() // 1000
    if re.fullmatch(r"[0-9]{1,12}(?:\.[0-9]{1,6})?", value):  # ASCII digits; at most 6 decimals
        micros = int(Decimal(value) * MICROS_PER_SECOND)
        if micros > MAX_TIME_MICROS:
            raise fail(f"{option} {value!r}: Unix seconds must be {TIME_RANGE}")
        return micros
    try:
        return rfc3339_micros(value)
    except ValueError as error:
        raise fail(f"{option} {value!r}: {error} (or 'now', or Unix seconds)") from None


def run_operator(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an operator coroutine; its OperatorError becomes one line and exit 1 (2 when the
    fix is in the settings)."""
    try:
        return asyncio.run(coroutine)
    except OperatorError as error:
        raise fail(str(error), EXIT_BAD_CONFIG if error.configuration else EXIT_FAILURE) from None

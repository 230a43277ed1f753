"""The `roi-metrics` command line.

Exit codes: 0 ok, 1 failure, 2 bad usage or bad configuration. A mistake a user can make gets
one line saying what, where and how to fix it, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from service import __version__
from service.domain.costcard import CostCard, CostCardError, load_cost_card
from service.settings import Settings

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
out = Console(highlight=False, soft_wrap=True)


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
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=2,
        socket_connect_timeout=2,
        **settings.redis_options(),
    )

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

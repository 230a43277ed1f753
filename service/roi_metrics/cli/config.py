"""`roi-metrics config check`: validate a cost card and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roi_metrics.cardfile import load_cost_card
from roi_metrics.cli.common import card_hint, fail, load_settings, out, say
from roi_metrics.cli.render import amount
from roi_metrics.domain.costcard import CostCardError
from roi_metrics.domain.figures import money

app = typer.Typer(help="Check configuration.", no_args_is_help=True)


@app.command("check")
def config_check(
    cost_card: Annotated[
        Path | None,
        typer.Argument(help="The cost card (TOML) to validate; default: ROI_COST_CARD."),
    ] = None,
) -> None:
    """Validate a cost card and summarise it; exit 2 with one line if it is wrong."""
    configured = cost_card is None
    if cost_card is None:
        cost_card = load_settings().cost_card
    try:
        card = load_cost_card(cost_card)
    except CostCardError as error:
        where = card_hint(cost_card, str(error)) if configured else ""
        raise fail(f"{error}{where}") from None
    program = card.program
    one_off = amount(money(program.one_off_total_micros))
    monthly = amount(money(program.monthly_micros))
    say(out, f"{cost_card}: ok")
    say(
        out,
        f"  currency {card.currency}, go-live {program.go_live}, target ROI {card.target_roi}\n"
        f"  recurring {monthly}/month, one-off {one_off} over "
        f"{program.amortize_months} months\n"
        f"  channels priced: {', '.join(sorted(card.human_cost_per_resolution))}",
    )

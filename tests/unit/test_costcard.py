"""The cost card: a valid one loads exactly; a bad one is refused with one line naming the
file, the field and the problem (and `roi-metrics config check` exits 2)."""

import datetime as dt
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from roi_metrics.cardfile import load_cost_card, parse_cost_card
from roi_metrics.cli.main import app
from roi_metrics.domain.costcard import CostCardError, ramp_point
from typer.testing import CliRunner

from tests.unit.helpers import NO_RAMP, RAMP, RAMPED

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "deploy" / "costs.toml").read_text()


def test_the_contract_example_loads_exactly() -> None:
    card = load_cost_card(ROOT / "deploy" / "costs.toml")
    assert card.currency == "USD"
    assert card.target_roi == 1.0
    assert card.program.go_live == dt.date(2026, 1, 15)
    assert card.program.subscription_per_month_micros == 2_000_000_000
    assert card.program.optimisation_per_month_micros == 1_500_000_000
    assert card.program.amortize_months == 12
    assert [(c.name, c.amount_micros) for c in card.program.one_off] == [
        ("setup", 12_000_000_000),
        ("training", 4_000_000_000),
    ]
    assert card.human_cost_per_resolution_micros("whatsapp") == 5_000_000
    assert card.human_cost_per_resolution_micros("discord") == 6_500_000
    assert card.vendor is not None
    assert card.vendor.price_per_resolution_micros == 990_000
    assert card.vendor.bills_assumed


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'subscription_per_month = "2000"',
            'subscription_per_month = "-2000"',
            "program.subscription_per_month: amount must not be negative, got '-2000'",
        ),
        (
            "amortize_months = 12",
            "amortize_months = 12\nmonths = 3",
            "program.months: unknown key (allowed: amortize_months, go_live, one_off, "
            "optimisation_per_month, subscription_per_month)",
        ),
        (
            'go_live = "2026-01-15"',
            'go_live = "2026-13-01"',
            "program.go_live: must be a date (YYYY-MM-DD), got '2026-13-01'",
        ),
        ('go_live = "2026-01-15"', "go_live = 2026-01-15", None),  # a TOML date is fine too
        (
            'go_live = "2026-01-15"',
            "go_live = 2026-01-15T10:00:00Z",
            "program.go_live: must be a date (YYYY-MM-DD), not a date-time",
        ),
        ('go_live = "2026-01-15"', "", "program.go_live: missing"),
        ('currency = "USD"', 'currency = "usd"', "currency: must be an ISO 4217 code"),
        (
            "amortize_months = 12",
            "amortize_months = 0",
            "program.amortize_months: must be a whole number >= 1, got 0",
        ),
        (
            'amount = "4000"',
            'amount = "4000.1234567"',
            "program.one_off[1].amount: amount has more than 6 decimal places",
        ),
        ("[channels.whatsapp]", "[channels.WhatsApp]", "channels.WhatsApp: not a channel name"),
        ("[channels.default]", "[channels.web]", "channels.default: missing"),
        ("target_roi = 1.0", 'target_roi = "high"', "target_roi: must be a number, got 'high'"),
        ('currency = "USD"', 'currency = "USD', "not valid TOML: "),
        (
            'bills = "assumed"',
            'bills = "billed"',
            'vendor.bills: must be "assumed" or "confirmed", got \'billed\'',
        ),
        ('bills = "assumed"', "bills = true", 'vendor.bills: must be "assumed" or'),
        (
            'price_per_resolution = "0.99"',
            'price_per_resolution = "-0.99"',
            "vendor.price_per_resolution: amount must not be negative",
        ),
        ('price_per_resolution = "0.99"', "", "vendor.price_per_resolution: missing"),
        (
            'bills = "assumed"',
            'bills = "assumed"\nper = "month"',
            "vendor.per: unknown key (allowed: bills, price_per_resolution)",
        ),
    ],
)
def test_bad_cards_are_refused_with_one_line(old: str, new: str, message: str | None) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    if message is None:
        parse_cost_card(text, Path("costs.toml"))
        return
    with pytest.raises(CostCardError) as caught:
        parse_cost_card(text, Path("costs.toml"))
    line = str(caught.value)
    assert line.startswith("costs.toml: ")
    assert message in line
    assert "\n" not in line


def test_config_check_exits_2_with_one_line(tmp_path: Path) -> None:
    card = tmp_path / "costs.toml"
    card.write_text(GOOD.replace('amount = "12000"', 'amount = "-1"'))
    result = CliRunner().invoke(app, ["config", "check", str(card)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {card}: program.one_off[0].amount: amount must not be negative, got '-1'\n"
    )


def test_config_check_of_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {tmp_path / 'nope.toml'}: cannot read: No such file or directory\n"
    )


def test_config_check_of_a_good_card() -> None:
    result = CliRunner().invoke(app, ["config", "check", str(ROOT / "deploy" / "costs.toml")])
    assert result.exit_code == 0
    assert "currency USD, go-live 2026-01-15, target ROI 1.0" in result.stdout
    assert "recurring 3,500.00/month, one-off 16,000.00 over 12 months" in result.stdout


NEVER_FIRES = (
    "target_roi: must be greater than -1 (an ROI is never below -1, so the programme ROI "
    "alert would never fire), got "
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "target_roi: must be a finite number, got nan"),
        ("inf", "target_roi: must be a finite number, got inf"),
        ("-inf", "target_roi: must be a finite number, got -inf"),
        ("-5", NEVER_FIRES + "-5"),
        ("-1", NEVER_FIRES + "-1"),
        ("-1.0", NEVER_FIRES + "-1.0"),
        ("true", "target_roi: must be a number, got True"),
    ],
)
def test_a_target_roi_the_alert_could_use_is_required(value: str, message: str) -> None:
    text = GOOD.replace("target_roi = 1.0", f"target_roi = {value}", 1)
    with pytest.raises(CostCardError) as caught:
        parse_cost_card(text, Path("costs.toml"))
    assert str(caught.value) == f"costs.toml: {message}"


@pytest.mark.parametrize(("value", "expected"), [("-0.5", -0.5), ("3", 3.0), ("0", 0.0)])
def test_a_target_roi_above_minus_one_is_kept(value: str, expected: float) -> None:
    text = GOOD.replace("target_roi = 1.0", f"target_roi = {value}", 1)
    assert parse_cost_card(text, Path("costs.toml")).target_roi == expected


@pytest.mark.parametrize("code", ["XYZ", "usd", "US", "USDX"])
def test_a_currency_that_is_not_iso_4217_is_refused(code: str) -> None:
    text = GOOD.replace('currency = "USD"', f'currency = "{code}"', 1)
    with pytest.raises(CostCardError) as caught:
        parse_cost_card(text, Path("costs.toml"))
    assert str(caught.value) == (
        f"costs.toml: currency: must be an ISO 4217 code such as \"USD\", got '{code}'"
    )


@pytest.mark.parametrize("code", ["EUR", "JPY"])
def test_any_iso_4217_currency_is_accepted(code: str) -> None:
    text = GOOD.replace('currency = "USD"', f'currency = "{code}"', 1)
    assert parse_cost_card(text, Path("costs.toml")).currency == code


def test_the_card_is_frozen() -> None:
    card = parse_cost_card(GOOD, Path("costs.toml"))
    with pytest.raises(ValidationError) as caught:
        card.target_roi = 2.0  # type: ignore[misc]
    assert caught.value.errors()[0]["msg"] == "Instance is frozen"
    with pytest.raises(ValidationError):
        card.program.amortize_months = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        card.channels["whatsapp"] = card.channels["default"]  # type: ignore[index]
    with pytest.raises(TypeError):
        card.human_cost_per_resolution["web"] = 1  # type: ignore[index]
    assert card.target_roi == 1.0
    assert card.human_cost_per_resolution == {"default": 6_500_000, "whatsapp": 5_000_000}


def test_what_cannot_be_a_cost_card_is_refused_unparsed(tmp_path: Path) -> None:
    """A device, a directory, a huge file or a very long line (Python's TOML parser needs
    gigabytes for a dotted key 20,000 deep) get one line each, before any parsing."""
    deep = tmp_path / "deep.toml"
    deep.write_text(GOOD.replace('currency = "USD"', "currency" + ".a" * 20_000 + " = 1"))
    huge = tmp_path / "huge.toml"
    huge.write_text(GOOD + "#" * 70_000)
    bom = tmp_path / "bom.toml"
    bom.write_text("\ufeff" + GOOD)
    pipe = tmp_path / "pipe.toml"
    os.mkfifo(pipe)  # nothing writes to it: opening it would wait for ever
    cases = {
        pipe: f"{pipe}: cannot read: not a regular file",
        Path("/dev/zero"): "/dev/zero: cannot read: not a regular file",
        tmp_path: f"{tmp_path}: cannot read: not a regular file",
        huge: f"{huge}: larger than 64 KiB: not a cost card",
        deep: f"{deep}: line 4 is longer than 1024 characters",
        bom: f"{bom}: starts with a byte order mark; save it as UTF-8 without",
    }
    for path, message in cases.items():
        with pytest.raises(CostCardError) as refused:
            load_cost_card(path)
        assert str(refused.value) == message


def test_a_ramp_resolves_each_channel_s_own_fields_or_the_default_s() -> None:
    card = parse_cost_card(RAMPED, Path("costs.toml"))
    assert card.ramp is not None and card.ramp.tolerance == 0.2
    whatsapp = card.channel_ramp("whatsapp")  # its own go-live and target, default's start
    assert whatsapp == (1772323200, 0.2, 0.7, 105.0)  # 2026-03-01T00:00:00Z
    web = card.channel_ramp("web")  # not listed: default's fields, the programme's go-live
    assert web == (1768435200, 0.2, 0.6, 105.0)  # 2026-01-15T00:00:00Z
    assert parse_cost_card(NO_RAMP, Path("costs.toml")).channel_ramp("web") is None  # no [ramp]


def test_where_a_channel_stands_on_its_ramp_hand_computed() -> None:
    web = parse_cost_card(RAMPED, Path("costs.toml")).channel_ramp("web")
    assert web is not None
    go_live = 1768435200
    assert ramp_point(web, go_live - 1) is None  # before go-live: absent
    assert ramp_point(web, go_live) == (0.0, 0.2)  # day 0: the start
    # day 35 of 105: progress 1 - exp(-3 x 35 / 105) = 1 - 1/e = 0.6321205588285577;
    # expected 0.2 + 0.4 x 0.6321205588285577 = 0.45284822353142306
    point = ramp_point(web, go_live + 35 * 86400)
    assert point is not None
    assert point.progress == pytest.approx(0.6321205588285577, rel=1e-15)
    assert point.expected == pytest.approx(0.45284822353142306, rel=1e-15)
    # day 105: 1 - exp(-3) = 0.950212931632136, "95 % of the way"
    point = ramp_point(web, go_live + 105 * 86400)
    assert point is not None and point.progress == pytest.approx(0.950212931632136)
    # half a day (days are fractional): 1 - exp(-3 x 0.5 / 105) = 0.014184157647595397
    point = ramp_point(web, go_live + 43200)
    assert point is not None and point.progress == pytest.approx(0.014184157647595397, rel=1e-12)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "tolerance = 0.2",
            "tolerance = 1",
            "ramp.tolerance: must be at least 0 and below 1, got 1",
        ),
        ("tolerance = 0.2", "tolerance = -0.1", "ramp.tolerance: must be at least 0 and below 1"),
        ("days_to_95 = 105", "days_to_95 = 0", "ramp.days_to_95: must be greater than 0, got 0"),
        ("days_to_95 = 105", 'days_to_95 = "105"', "ramp.days_to_95: must be a number"),
        ("days_to_95 = 105", "days_to_95 = inf", "ramp.days_to_95: must be a finite number"),
        (
            "tolerance = 0.2",
            "tolerance = 0.2\ndays = 3",
            "ramp.days: unknown key (allowed: days_to_95, tolerance)",
        ),
        (
            "resolution_start = 0.20",
            "resolution_start = 1.5",
            "channels.default.resolution_start: must be between 0 and 1, got 1.5",
        ),
        (
            "resolution_start = 0.20",
            "resolution_start = 0.65",  # whatsapp's own target 0.70 holds; default's 0.60 not
            "channels.default: resolution_start (0.65) is above resolution_target (0.6)",
        ),
        (
            "resolution_target = 0.70",
            "resolution_target = 0.10",
            "channels.whatsapp: resolution_start (0.2) (channels.default's) is above",
        ),
        (
            "resolution_start = 0.20",
            "# resolution_start = 0.20",
            "channels.default.resolution_start: missing ([ramp] needs the default channel's",
        ),
        (
            'go_live = "2026-03-01"',
            'go_live = "2026-02-30"',
            "channels.whatsapp.go_live: must be a date",
        ),
    ],
)
def test_bad_ramps_are_refused_with_one_line(old: str, new: str, message: str) -> None:
    assert old in RAMPED
    with pytest.raises(CostCardError) as caught:
        parse_cost_card(RAMPED.replace(old, new, 1), Path("costs.toml"))
    assert str(caught.value).startswith("costs.toml: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_ramp_s_fields_without_a_ramp_are_refused() -> None:
    without = RAMPED.replace(RAMP, "")
    with pytest.raises(
        CostCardError, match=r"channels\.default\.resolution_start: needs a \[ramp\]"
    ):
        parse_cost_card(without, Path("costs.toml"))


def test_the_default_channel_s_go_live_serves_only_the_channels_not_listed() -> None:
    card = parse_cost_card(
        RAMPED.replace(
            "resolution_start = 0.20", 'go_live = "2026-06-01"\nresolution_start = 0.20', 1
        ).replace('go_live = "2026-03-01"\n', "", 1),
        Path("costs.toml"),
    )
    june, program = 1780272000, 1768435200  # 2026-06-01 and 2026-01-15, midnight UTC
    assert card.channel_ramp("web") is not None
    assert card.channel_ramp("web").go_live_seconds == june  # type: ignore[union-attr]
    assert card.channel_ramp("whatsapp").go_live_seconds == program  # type: ignore[union-attr]


def test_a_go_live_of_a_channel_without_a_ramp_is_refused() -> None:
    with pytest.raises(CostCardError, match=r"channels\.whatsapp\.go_live: needs a \[ramp\]"):
        parse_cost_card(
            NO_RAMP.replace("[channels.whatsapp]", '[channels.whatsapp]\ngo_live = "2026-03-01"'),
            Path("costs.toml"),
        )


def test_an_inherited_start_above_a_channel_s_target_says_where_it_came_from() -> None:
    with pytest.raises(CostCardError) as caught:
        parse_cost_card(
            RAMPED.replace("resolution_target = 0.70", "resolution_target = 0.10"),
            Path("costs.toml"),
        )
    assert str(caught.value) == (
        "costs.toml: channels.whatsapp: resolution_start (0.2) (channels.default's) is above "
        "resolution_target (0.1)"
    )


def test_a_vendor_bills_assumed_resolutions_unless_told_otherwise() -> None:
    card = parse_cost_card(GOOD.replace('bills = "assumed"', "", 1), Path("costs.toml"))
    assert card.vendor is not None and card.vendor.bills_assumed
    confirmed = GOOD.replace('bills = "assumed"', 'bills = "confirmed"', 1)
    vendor = parse_cost_card(confirmed, Path("costs.toml")).vendor
    assert vendor is not None and not vendor.bills_assumed

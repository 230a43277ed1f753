"""The operator commands without services: help everywhere, one-line errors with the right
exit code, publish --dry-run, replay on hand-built exports with exact figures."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from roi_metrics.cli.main import app
from typer.testing import CliRunner

from tests.cloudevents import encode, event

ROOT = Path(__file__).resolve().parents[2]
CARD = str(ROOT / "deploy" / "costs.toml")
ENV = {
    "ROI_COST_CARD": CARD,
    "ROI_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "ROI_REDIS_URL": "redis://127.0.0.1:1/12",  # nothing listens there
}
COMMANDS = [
    [],
    ["worker"],
    ["exporter"],
    ["simulate"],
    ["publish"],
    ["replay"],
    ["report"],
    ["top"],
    ["config"],
    ["config", "check"],
    ["channel"],
    ["channel", "add"],
    ["channel", "list"],
    ["channel", "remove"],
    ["init"],
    ["schemas"],
    ["schemas", "export"],
]
T0 = 1_780_000_000  # 2026-05-28T20:26:40Z, after the card's go-live


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=ENV, input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "roi-metrics")
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert "Usage:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "Web"], "channel 'Web' is not a valid name"),
        (["publish", "web", "--mode", "xml"], "--mode 'xml': use one of structured, batch, binary"),
        (
            ["publish", "web", "--mode", "binary", "--batch", "2"],
            "--batch: binary mode carries one event a record",
        ),
        (["publish", "web", "/no/such/file.json"], "/no/such/file.json: no such file"),
        (["channel", "add", "Voice"], "channel 'Voice' is not a valid name"),
        (["channel", "remove", "Voice", "--yes"], "channel 'Voice' is not a valid name"),
        (["channel", "remove", "[/oops]"], "channel '[/oops]' is not a valid name"),
        (["replay", "/no/such.ndjson"], "/no/such.ndjson: no such file"),
        (["report", "--at", "yesterday"], "--at 'yesterday'"),
        (["report", "--at", "253402300800"], "Unix seconds must be between 0001-01-01T00:00:00Z"),
        (["report", "--at", "\u0661\u0662"], "--at '\u0661\u0662': must be an RFC 3339 date-time"),
        (["simulate", "--channels", "web,Bad"], "channel 'Bad' is not a valid name"),
        (["simulate", "--rate", "inf"], "--rate: must be a finite number (got inf)"),
        (["simulate", "--time-scale", "1e999"], "--time-scale: must be a finite number"),
        (
            ["simulate", "--output", "/no/such/dir/x.ndjson"],
            "--output /no/such/dir/x.ndjson: No such",
        ),
        (
            ["simulate", "--channels", "slack", "--scenario", "degrade"],
            "--degrade-channel 'web' is not among --channels",
        ),
    ],
)
def test_a_user_mistake_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2, err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_cost_card_is_one_line_and_exit_2(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text('currency = "USD"\n')
    result = CliRunner().invoke(app, ["replay", str(card)], env={**ENV, "ROI_COST_CARD": str(card)})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {card}: program: ")


@pytest.mark.parametrize(
    "args",
    [["channel", "add", "voice"], ["worker"], ["simulate", "--duration", "1"]],
    ids=lambda a: a[0],
)
def test_an_unreachable_broker_is_one_line_and_exit_1(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, args, env={**ENV, "ROI_DATA_DIR": str(tmp_path / "w")})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert "ROI_KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["channel", "list"], ["channel", "list", "--json"], ["channel", "remove", "web", "--yes"]],
    ids=" ".join,
)
def test_an_unreachable_redis_is_one_line_and_exit_1(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 1, err
    assert err.startswith("error: cannot ") and "Redis (ConnectionError" in err
    assert "set ROI_REDIS_URL" in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


def test_the_worker_makes_its_data_directory_or_says_why(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "faust"
    result = CliRunner().invoke(app, ["worker"], env={**ENV, "ROI_DATA_DIR": str(deep)})
    assert result.exit_code == 1 and deep.is_dir()  # made, then Kafka was not there
    result = CliRunner().invoke(app, ["worker"], env={**ENV, "ROI_DATA_DIR": "/dev/null/x"})
    assert result.exit_code == 2
    assert result.stderr == "error: ROI_DATA_DIR /dev/null/x: Not a directory\n"


def started(n: int, at: int, **extra: object) -> dict[str, object]:
    return event("conversation.started", f"s{n}", f"c{n}", at, "/web", handled_by="ai", **extra)


def test_publish_dry_run_validates_like_the_worker_and_says_why(tmp_path: Path) -> None:
    lines = [
        json.dumps(started(1, T0)),
        json.dumps(started(2, T0, channel="slack")),  # names another channel
        "{not json",
        json.dumps({**started(3, T0), "type": "support.unknown"}),
        json.dumps(event("csat.recorded", "q1", "c1", T0, "/web", score=9)),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run("publish", "web", str(path), "--dry-run")
    assert code == 1  # something was refused
    assert "would send 1 events in 1 records to support.events.web; refused 4" in out
    for reason in ("channel_mismatch", "invalid_json", "ignored", "invalid_data"):
        assert reason in err
    assert "line 3" in err and "line 5" in err


@pytest.mark.parametrize("name", ["[/oops]", "[bold red]x[/]", ":smile: [link=x]y"])
def test_publish_prints_untrusted_text_literally(name: str, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(started(1, T0, channel=name)) + "\n")
    code, out, err = run("publish", "web", str(path), "--dry-run")
    assert code == 1, err
    assert "would send 0 events in 0 records to support.events.web; refused 1" in out
    assert "channel_mismatch" in err and "Traceback" not in err
    assert f"data.channel is {name!r}" in err  # as written: no markup, no emoji


def test_publish_groups_a_conversation_into_batched_records(tmp_path: Path) -> None:
    events = [started(1, T0)] + [
        event("csat.recorded", f"q{i}", "c1", T0 + i, "/web", score=5) for i in range(1, 4)
    ]
    events.append(started(2, T0))
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))  # one JSON array
    code, out, _ = run("publish", "web", str(path), "--dry-run", "--batch", "3")
    assert code == 0
    # c1's four events make records of 3 and 1; c2's one event a record of its own
    assert "would send 5 events in 3 records" in out


def write_export(path: Path) -> None:
    """Two channels; every figure below is computed by hand in the test."""
    records = []
    for n in range(4):  # web: 4 AI conversations, 3 resolved by the AI, one escalated
        conv = f"w{n}"
        records.append(
            event(
                "conversation.started",
                f"{conv}s",
                conv,
                T0 + n,
                "/web",
                channel="web",
                handled_by="ai",
            )
        )
        records.append(
            event(
                "cost.recorded",
                f"{conv}c",
                conv,
                T0 + n,
                "/web",
                channel="web",
                amount="0.50",
                currency="USD",
                category="ai_usage",
            )
        )
        if n < 3:
            records.append(
                event(
                    "conversation.resolved",
                    f"{conv}r",
                    conv,
                    T0 + n + 5,
                    "/web",
                    channel="web",
                    resolved_by="ai",
                )
            )
        else:
            records.append(
                event("conversation.escalated", f"{conv}e", conv, T0 + n + 5, "/web", channel="web")
            )
    records.append(records[0])  # a duplicate: counted once
    lines = [encode(r).decode() for r in records]
    # whatsapp, batched in one record, no data.channel: needs --channel... so name it
    batch = [
        event("conversation.started", "a1", "a", T0, "/wa", channel="whatsapp", handled_by="ai"),
        event(
            "conversation.resolved",
            "a2",
            "a",
            T0 + 9,
            "/wa",
            channel="whatsapp",
            resolved_by="ai",
            confirmation="confirmed",
        ),
        event(
            "revenue.attributed",
            "a3",
            "a",
            T0 + 10,
            "/wa",
            channel="whatsapp",
            amount="20",
            currency="USD",
        ),
    ]
    lines.append(encode(batch).decode())
    lines.append(
        encode(event("conversation.started", "x", "x", T0, "/x", handled_by="ai")).decode()
    )
    lines.append("")
    path.write_text("\n".join(lines) + "\n")


def test_replay_computes_exact_figures_offline(tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    write_export(export)
    code, out, err = run("replay", str(export), "--json")
    assert code == 1, err  # one line was refused (no channel): exit 1, as publish does
    report = json.loads(out)
    assert report["at"] == "2026-05-28T20:26:50Z"  # the newest event: T0 + 10
    web = report["channels"]["web"]["1h"]
    assert web["counts"]["conversations"] == 4
    assert web["counts"]["ai_resolutions_assumed"] == 3
    assert web["counts"]["escalations"] == 1
    assert web["ai_cost"] == "2.000000"
    assert web["cost_avoided"] == "19.500000"  # 3 x 6.50
    assert web["roi"] == (19.5 - 2) / 2
    assert web["cost_per_resolution"] == 2 / 3
    assert web["resolution_rate"] == 0.75
    whatsapp = report["channels"]["whatsapp"]["all"]
    assert whatsapp["cost_avoided"] == "5.000000" and whatsapp["ai_revenue"] == "20.000000"
    assert whatsapp["roi"] is None  # no AI cost: no sample
    assert report["events"] == {"counted": 15, "duplicate": 1}
    assert report["refused"] == {"no_channel": 1}
    program = report["program"]["1h"]
    assert program["value"] == "44.500000"  # 19.50 + 5.00 + 20.00


def test_replay_with_a_channel_and_a_clock_and_the_tables(tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    write_export(export)
    # two hours later the 1h window is empty, the 24h one is not
    code, out, err = run("replay", str(export), "--channel", "email", "--at", str(T0 + 7200))
    assert code == 0, err
    assert "Programme (fully loaded, USD)" in out and "Channels, 24h (USD)" in out
    assert "email" in out  # the line without data.channel, now on --channel
    assert "refused lines or events: none" in err
    code, out, _ = run("replay", str(export), "--at", str(T0 + 7200), "--json")
    assert json.loads(out)["channels"]["web"]["1h"]["counts"]["conversations"] == 0


def test_replay_tells_hostile_lines_in_one_line_each(tmp_path: Path) -> None:
    export = tmp_path / "hostile.ndjson"
    write_export(export)
    hostile = [
        "1e9999999999999999999",
        "[" * 5000,
        encode(event("conversation.started", "n", "n", T0, "/n", handled_by="ai"))
        .decode()
        .replace('"n"', "NaN", 1),
        encode(event("csat.recorded", "m", "m", T0, "/m", channel="[/oops]", score=4)).decode(),
    ]
    export.write_text(export.read_text() + "\n".join(hostile) + "\n")
    code, out, err = run("replay", str(export), "--channel", "web", "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["refused"] == {"invalid_channel": 1, "invalid_envelope": 1, "invalid_json": 2}
    assert set(report["channels"]) == {"web", "whatsapp"}  # counted events only
    assert "Traceback" not in err


def test_replay_reads_stdin_and_refuses_a_file_without_times() -> None:
    code, _, err = run("replay", "-", stdin="{}\n")
    assert code == 2 and "no event with a valid time; pass --at" in err


def test_replay_refuses_a_clock_no_date_can_show() -> None:
    """An offset can put the calendar's last second past year 9999 in UTC: a valid event
    time (the worker finds it in the future), but no clock for a report."""
    event = {**started(1, 0), "time": "9999-12-31T23:59:59-00:01"}
    code, _, err = run("replay", "-", "--json", stdin=json.dumps(event) + "\n")
    assert code == 2
    assert err == (
        "error: -: the newest event's time is not between 0001-01-01T00:00:00Z and "
        "9999-12-31T23:59:59.999999Z in UTC; pass --at\n"
    )


def test_log_lines_and_error_lines_carry_no_secret() -> None:
    """Once a command loaded settings, every log record and every error line is redacted:
    a library that logs the URL or an exception carrying it cannot print the password."""
    url = "redis://127.0.0.1:1/12?password=l0g-s3cret"
    result = CliRunner().invoke(app, ["channel", "list"], env={**ENV, "ROI_REDIS_URL": url})
    assert result.exit_code == 1 and "l0g-s3cret" not in result.stderr
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("100%% sure: connecting to %s", url)
        try:
            raise ConnectionError(f"cannot connect to {url}")
        except ConnectionError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "100% sure: connecting to redis://127.0.0.1:1/12?password=****" in logged
    assert "ConnectionError: cannot connect to redis://127.0.0.1:1/12?password=****" in logged
    assert "l0g-s3cret" not in logged


def test_publish_reads_as_the_worker_does_and_sends_the_bytes_as_written() -> None:
    from roi_metrics.traffic.events import check_events, read_events  # noqa: PLC0415

    spaced = (
        '{ "specversion" : "1.0", "id": "é1", "source": "/w", "type": '
        '"support.conversation.started", "time": "2026-01-01T00:00:00Z", "subject": "c",'
        ' "data": {"handled_by": "ai"} }'
    )
    duplicate = spaced.replace('"id": "é1"', '"id": "a", "id": "b"')
    nan = spaced.replace('"é1"', "NaN")
    text = "\n".join([spaced, duplicate, nan, f"[{spaced} ,  {spaced}]"])
    checked = check_events(read_events(text.encode()), "web", "USD", 1, now_micros=2 * 10**15)
    assert [(p.where, p.reason) for p in checked.problems] == [
        ("line 2", "invalid_json"),
        ("line 3", "invalid_json"),
    ]
    assert checked.records == [(b"c", spaced.encode(), [])] * 3  # exactly the bytes written
    batched = check_events(read_events(text.encode()), "web", "USD", 10, now_micros=2 * 10**15)
    batch_type = [("content-type", b"application/cloudevents-batch+json")]
    assert batched.records == [(b"c", ("[" + ",".join([spaced] * 3) + "]").encode(), batch_type)]
    binary = check_events(
        read_events(text.encode()), "web", "USD", 1, now_micros=2 * 10**15, mode="binary"
    )
    attributes = [
        ("content-type", b"application/json"),
        ("ce_specversion", b"1.0"),
        ("ce_id", "é1".encode()),
        ("ce_source", b"/w"),
        ("ce_type", b"support.conversation.started"),
        ("ce_time", b"2026-01-01T00:00:00Z"),
        ("ce_subject", b"c"),
    ]
    assert binary.records == [(b"c", b'{"handled_by":"ai"}', attributes)] * 3
    assert (binary.events, len(binary.problems)) == (3, 2)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["bogus"], "error: No such command 'bogus'. (see roi-metrics --help)"),
        (
            ["schemas", "export"],
            "error: Missing argument 'directory'. (see roi-metrics schemas export --help)",
        ),
        (
            ["report", "--widow", "1h"],
            "error: No such option: --widow (Possible options: --window)"
            " (see roi-metrics report --help)",
        ),
        # closed options take only their choices, before anything starts (`worker
        # --log-level loud` connected to Kafka, then stopped with a traceback)
        (
            ["worker", "--log-level", "loud"],
            "error: Invalid value for '--log-level': 'loud' is not one of 'debug', 'info', "
            "'warn', 'error'. (see roi-metrics worker --help)",
        ),
        (
            ["report", "--window", "2h"],
            "error: Invalid value for '--window': '2h' is not one of '1h', '24h', '7d', '30d', "
            "'all'. (see roi-metrics report --help)",
        ),
        (
            ["simulate", "--scenario", "chaos"],
            "error: Invalid value for '--scenario': 'chaos' is not one of 'normal', 'degrade'. "
            "(see roi-metrics simulate --help)",
        ),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(argv: list[str], line: str) -> None:
    executable = Path(sys.executable).parent / "roi-metrics"
    result = subprocess.run([str(executable), *argv], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stderr) == (2, line + "\n")


def test_a_redis_url_parameter_redis_py_does_not_know_is_one_line() -> None:
    env = {**ENV, "ROI_REDIS_URL": "redis://127.0.0.1:1/0?PassWord=p4ss-s3cret"}
    result = CliRunner().invoke(app, ["report"], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ROI_REDIS_URL (or REDIS_URL): ")
    assert "p4ss-s3cret" not in result.stderr and result.stderr.count("\n") == 1


def test_publish_refuses_a_line_that_is_not_utf8_and_keeps_the_others(tmp_path: Path) -> None:
    good = encode(event("conversation.started", "u1", "c", T0, "/w", handled_by="ai"))
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(good + b"\n\xff{}\n" + good.replace(b"u1", b"u2") + b"\n")
    code, out, err = run("publish", "web", str(path), "--dry-run")
    assert code == 1
    assert "would send 2 events in 2 records" in out
    assert err == "  line 2: invalid_json: not strict JSON: not UTF-8: byte 0 is invalid\n"


def test_a_missing_option_value_is_one_line_too() -> None:
    executable = Path(sys.executable).parent / "roi-metrics"
    result = subprocess.run(
        [str(executable), "report", "--window"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (
        2,
        "error: Option '--window' requires an argument. (see roi-metrics --help)\n",
    )


def test_replay_says_why_a_line_is_no_json_even_without_a_channel() -> None:
    """Without --channel a line's channel is read from its events; a line that is no JSON
    has none, and is refused for what it is, not for the missing channel."""
    stdin = 'not json\n{"a": 1, "a": 2}\n' + json.dumps(started(1, 1_772_366_400)) + "\n"
    code, _, err = run("replay", "-", "--at", "1772366460", stdin=stdin)
    assert code == 1
    assert "refused lines or events: invalid_json 2" in err
    assert "line 1: invalid_json: Expecting value at character 0" in err
    assert "line 2: invalid_json: duplicate member name 'a'" in err


def test_init_writes_the_starter_files_once(tmp_path: Path) -> None:
    """From the package, not the checkout: a wheel user's first step."""
    target = tmp_path / "roi"
    code, out, err = run("init", str(target))
    assert code == 0, err
    written = sorted(path.name for path in target.iterdir())
    assert written == ["costs.toml", "roi-rules.yml", "thresholds.toml"]
    assert (target / "costs.toml").read_text() == (ROOT / "deploy" / "costs.toml").read_text()
    assert f"next: edit {target / 'costs.toml'}" in out
    code, _, err = run("init", str(target))
    assert code == 2
    assert err == (
        f"error: {target / 'costs.toml'}, {target / 'thresholds.toml'}, "
        f"{target / 'roi-rules.yml'} already exist; pass --force to overwrite\n"
    )
    assert run("init", str(target), "--force")[0] == 0


def test_schemas_export_and_config_check_of_the_configured_card(tmp_path: Path) -> None:
    code, out, _ = run("schemas", "export", str(tmp_path))
    assert code == 0 and out == f"wrote 8 files to {tmp_path}\n"
    assert (tmp_path / "asyncapi.yaml").read_text() == (
        ROOT / "schemas" / "asyncapi.yaml"
    ).read_text()
    code, out, _ = run("config", "check")  # ROI_COST_CARD of the test environment
    assert code == 0 and out.startswith(f"{ENV['ROI_COST_CARD']}: ok")


def test_publish_checks_each_record_as_it_will_be_sent() -> None:
    """Key and headers count in a record's 1 MiB: an event that fits alone but not with its
    key is refused, and a batch is split before it passes the limit."""
    from roi_metrics.ingest.decode import MAX_RECORD_BYTES  # noqa: PLC0415
    from roi_metrics.traffic.events import check_events, read_events  # noqa: PLC0415

    def padded(number: int, size: int) -> str:
        body = started(number, 1_772_366_400, pad="")
        text = json.dumps(body)
        return json.dumps({**body, "pad": "x" * (size - len(text))})

    at = 1_772_366_460 * 10**6
    edge = padded(1, MAX_RECORD_BYTES - 1)  # its key, "c1", takes it over
    checked = check_events(read_events(edge.encode()), "web", "USD", 1, now_micros=at)
    assert checked.records == []
    assert [(p.where, p.reason) for p in checked.problems] == [("event 1", "too_large")]
    halves = "\n".join(padded(1, 600_000) for _ in range(2))  # one conversation, twice
    batched = check_events(read_events(halves.encode()), "web", "USD", 2, now_micros=at)
    assert batched.events == 2 and len(batched.records) == 2  # split: 1.2 MB in one is too much
    assert all(len(value) <= MAX_RECORD_BYTES for _, value, _ in batched.records)


def test_init_writes_only_regular_files_and_nothing_when_it_refuses(tmp_path: Path) -> None:
    (tmp_path / "roi-rules.yml").mkdir()
    (tmp_path / "costs.toml").write_text("mine")
    code, _, err = run("init", str(tmp_path), "--force")
    assert (code, err) == (
        2,
        f"error: {tmp_path / 'roi-rules.yml'}: exists and is not a regular file\n",
    )
    assert (tmp_path / "costs.toml").read_text() == "mine"  # nothing written
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "costs.toml").symlink_to(tmp_path / "victim")
    code, _, err = run("init", str(linked))
    assert (code, err) == (
        2,
        f"error: {linked / 'costs.toml'}: a symbolic link; not written through\n",
    )
    assert not (tmp_path / "victim").exists()
    assert run("schemas", "export", str(tmp_path / "costs.toml"))[2] == (
        f"error: {tmp_path / 'costs.toml'}: not a directory\n"
    )


def test_a_closed_option_takes_its_choices_in_any_case() -> None:
    code, _, err = run("report", "--window", "ALL", "--json", "--at", "now")
    assert code in {0, 1}, err  # read Redis or said it cannot: not a usage error
    assert "Invalid value" not in err


def test_shell_completion_is_offered() -> None:
    code, out, _ = run("--show-completion", "bash")
    assert code == 0 and "_roi_metrics_completion" in out

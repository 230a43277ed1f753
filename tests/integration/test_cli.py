"""The operator commands against the real stack: channel add, publish, simulate, report and
top with real Kafka and Redis and a real worker; replay gives the figures the streaming
pipeline gives on the same events; the installed `roi-metrics` executable runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from roi_metrics.cli.main import app
from roi_metrics.traffic.simulator import PROFILES
from typer.testing import CliRunner

from tests.cloudevents import event
from tests.integration.commands import cli, report, wait_for
from tests.integration.harness import EXECUTABLE, Deployment, free_port
from tests.integration.pipeline import create_channels, publish, wait_applied
from tests.integration.traffic import Traffic
from tests.stack import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
DB = 12


async def flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def deployment(tmp_path: Path, bootstrap: str) -> Iterator[Deployment]:
    url = f"{redis_url().rsplit('/', 1)[0]}/{DB}"
    asyncio.run(flush(url))
    deployed = Deployment(bootstrap, url, tmp_path)
    yield deployed
    deployed.stop_all()


async def partitions_of(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
        return len(description["partitions"])
    finally:
        await admin.close()


def test_channel_add_creates_the_topic_once(deployment: Deployment) -> None:
    code, out, err = cli(deployment, "channel", "add", "voice", "--partitions", "4")
    assert code == 0, err
    topic = f"{deployment.prefix}voice"
    assert out.strip() == f"created {topic} (4 partitions)"
    assert asyncio.run(partitions_of(deployment.bootstrap, topic)) == 4
    code, out, _ = cli(deployment, "channel", "add", "voice")
    assert code == 0 and out.strip() == f"{topic} already exists: nothing to do"


def test_publish_reaches_the_worker_and_report_reads_it_back(
    deployment: Deployment, tmp_path: Path
) -> None:
    code, _, err = cli(deployment, "channel", "add", "voice", "--partitions", "2")
    assert code == 0, err
    deployment.start_worker()
    now = time.time()
    events = [
        event("conversation.started", f"s{i}", f"c{i}", now - 60, "/voice", handled_by="ai")
        for i in range(5)
    ] + [
        event("conversation.resolved", f"r{i}", f"c{i}", now - 30, "/voice", resolved_by="ai")
        for i in range(3)
    ]
    bad = event("csat.recorded", "q", "c0", now, "/voice", score=11)
    lines = "\n".join(json.dumps(e) for e in [*events, bad])
    code, out, err = cli(deployment, "publish", "voice", "--batch", "10", stdin=lines)
    assert code == 1  # one event refused
    assert "sent 8 events in 5 records" in out and "refused 1" in out
    assert "invalid_data" in err and "line 9" in err

    def counted() -> dict[str, Any] | None:
        figures = report(deployment)["channels"].get("voice", {}).get("1h")
        return figures if figures and figures["counts"]["ai_resolutions_assumed"] == 3 else None

    voice = wait_for("the worker counted the published events", counted)
    assert voice["counts"]["conversations"] == 5
    assert voice["resolution_rate"] == 0.6
    code, out, _ = cli(deployment, "report", "--window", "1h")
    assert code == 0 and "voice" in out and "60.0 %" in out
    # the same kind of events again, as binary-mode records (attributes in ce_ headers)
    more = [
        event("conversation.started", f"bs{i}", f"b{i}", now - 20, "/voice", handled_by="ai")
        for i in range(4)
    ]
    code, out, err = cli(
        deployment, "publish", "voice", "--mode", "binary", stdin="\n".join(map(json.dumps, more))
    )
    assert code == 0, err
    assert "sent 4 events in 4 records" in out

    def counted_binary() -> dict[str, Any] | None:
        figures = report(deployment)["channels"].get("voice", {}).get("1h")
        return figures if figures and figures["counts"]["conversations"] == 9 else None

    voice = wait_for("the worker counted the binary-mode events", counted_binary)
    assert voice["counts"]["ai_conversations"] == 9


def by_turn(lines: list[str]) -> list[list[tuple[str, bytes, bytes]]]:
    """The export's events as (channel, key, record) in turns: turn k holds, in file order,
    the events of every customer's k-th conversation (and turn 0 those of conversations
    without a customer). A customer's conversations follow one another in the simulator's
    traffic, so publishing turn after turn keeps each customer's events in their order."""
    turn_of: dict[tuple[str, str], int] = {}
    seen: dict[str, int] = {}
    turns: list[list[tuple[str, bytes, bytes]]] = []
    for line in lines:
        body = json.loads(line)
        conversation = (body["data"]["channel"], body["subject"])
        if conversation not in turn_of:
            customer = body.get("customer")
            turn_of[conversation] = 0 if customer is None else seen.get(customer, 0)
            if customer is not None:
                seen[customer] = turn_of[conversation] + 1
        turn = turn_of[conversation]
        turns.extend([] for _ in range(turn + 1 - len(turns)))
        turns[turn].append((conversation[0], conversation[1].encode(), line.encode()))
    return turns


def test_replay_gives_the_figures_the_streaming_pipeline_gives(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Re-contacts included (CONTRACT.md §9). The join follows the order in which the
    service processes each customer's events, and a customer's conversations on two
    channels a moment apart may be processed in either order (one channel lags); replay
    follows the file's. So the events are published turn after turn (every customer's first
    conversations, then once they are applied their second, ...): each customer's events
    reach the worker in the file's order, as they do when a customer comes back after the
    pipeline caught up."""
    export = tmp_path / "export.ndjson"
    scratch = dataclasses.replace(deployment, run=f"{deployment.run}s", workers=[])
    code, out, err = cli(
        scratch,  # its own topics: the worker reads none of them
        "simulate",
        "--rate", "150",
        "--duration", "6",
        "--backfill-days", "2",
        "--time-scale", "86400",
        "--seed", "11",
        "--returning", "0.2",
        "--output", str(export),
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    lines = export.read_text().splitlines()
    sent = int(out.split()[1].replace(",", ""))
    assert sent == len(lines) > 3000
    turns = by_turn(lines)
    assert len(turns) >= 3  # customers who came back twice
    deployment.start_worker()

    async def publish_by_turn() -> None:
        client = aioredis.Redis.from_url(deployment.redis_url)
        try:
            await create_channels(deployment, list(PROFILES), partitions=2)
            for turn in turns:
                offsets = await publish(deployment, Traffic(records=turn))
                await wait_applied(client, deployment, offsets)
        finally:
            await client.aclose()

    asyncio.run(publish_by_turn())
    at = str(int(time.time()) + 5)  # both read their windows at this clock
    code, out, err = cli(deployment, "replay", str(export), "--at", at, "--json")
    assert code == 0, err
    offline = json.loads(out)
    assert offline["events"] == {"counted": sent}  # nothing refused, nothing duplicated
    recontacts = sum(
        figures["all"]["counts"]["ai_recontacts"] for figures in offline["channels"].values()
    )
    assert recontacts > 50

    def streamed() -> dict[str, Any] | None:
        live = report(deployment, "--at", at)
        return live if live["channels"] == offline["channels"] else None

    live = wait_for("the streaming figures equal the replayed ones", streamed)
    assert live["program"] == offline["program"]
    assert set(live["channels"]) == {"whatsapp", "slack", "discord", "web", "email"}


def test_report_says_in_one_line_when_redis_is_unreachable(deployment: Deployment) -> None:
    env = {k: v for k, v in deployment.env(free_port()).items() if k.startswith("ROI_")}
    env["ROI_REDIS_URL"] = "redis://127.0.0.1:1/0"
    result = CliRunner().invoke(app, ["report"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot read Redis (ConnectionError")
    assert result.stderr.count("\n") == 1


def test_the_installed_executable_runs_report_and_top(deployment: Deployment) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROI_")}
    env.update({k: v for k, v in deployment.env(free_port()).items() if k.startswith("ROI_")})
    client_env = {**env, "COLUMNS": "200"}
    version = subprocess.run(
        [str(EXECUTABLE), "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("roi-metrics ")
    asyncio.run(seed_redis(deployment.redis_url))
    result = subprocess.run(
        [str(EXECUTABLE), "report", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["channels"]["web"]["all"]["counts"]["conversations"] == 7
    result = subprocess.run(
        [
            str(EXECUTABLE),
            "top",
            "--duration",
            "1.5",
            "--interval",
            "1",
            "--prometheus",
            "http://127.0.0.1:1",
        ],
        env=client_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    frames = result.stdout.count("roi-metrics top ·")
    assert frames == 3  # not a terminal: frames appended, at 0 s, 1 s and the end (1.5 s)
    assert "AI support ROI" in result.stdout and "web" in result.stdout
    assert "Prometheus not reachable at http://127.0.0.1:1" in result.stdout


async def seed_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.sadd("roi:channels", "web")
    await client.hset("roi:{web}:b:all:0", mapping={"conversations": 7, "ai_conversations": 7})
    await client.aclose()


def test_simulate_stops_at_max_events_exactly(deployment: Deployment, tmp_path: Path) -> None:
    export = tmp_path / "sent.ndjson"
    code, out, err = cli(
        deployment,
        "simulate",
        "--max-events", "50",
        "--rate", "200",
        "--backfill-days", "1",
        "--output", str(export),
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip().startswith("published 50 events to 5 topics")
    assert len(export.read_text().splitlines()) == 50

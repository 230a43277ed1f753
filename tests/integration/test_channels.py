"""`roi-metrics channel list` and `channel remove` against the real Kafka and Redis: two
channels' state seeded as the worker writes it (state/keys.py) in Redis database 12,
their topics (and a topic-only channel) under a topic prefix of the test's own. Checks which
keys remain, to the key, that the other channel is untouched and that the real exporter stops
showing the removed channel.

Also: the real worker, on the real Kafka with an unreachable Redis whose URL holds a
password, never prints the password (the unit tests cover the unreachable-Kafka path)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient
from roi_metrics.cli.main import app
from roi_metrics.ingest.topics import ensure_topic
from roi_metrics.settings import Settings
from roi_metrics.state import keys
from typer.testing import CliRunner

from tests.integration.harness import EXECUTABLE, Deployment, free_port
from tests.stack import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
DB = 12  # this test's database: flushed before and after; never 0, 13, 14 or 15
HOUR = 1_780_002_000  # an hour's start (2026-05-28T21:00:00Z)


@pytest.fixture
def db() -> Iterator[tuple[str, redis.Redis]]:
    url = f"{redis_url().rsplit('/', 1)[0]}/{DB}"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {url}; start it with `make stack-up`")
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


@pytest.fixture
def deployment(tmp_path: Path, bootstrap: str, db: tuple[str, redis.Redis]) -> Iterator[Deployment]:
    deployed = Deployment(bootstrap, db[0], tmp_path)
    yield deployed
    deployed.stop_all()
    asyncio.run(delete_topics(bootstrap, f"t{deployed.run}"))  # channels, dead letters, Faust


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def cli(deployment: Deployment, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in deployment.env(free_port()).items() if k.startswith("ROI_")}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def seed(client: redis.Redis, channel: str, conversations: int, ai_cost_micros: int) -> set[bytes]:
    """A channel's state as the worker leaves it after a few batches; its keys."""
    written = {
        keys.bucket(channel, ("all", 0)).encode(),
        keys.bucket(channel, ("m", HOUR)).encode(),
        keys.bucket(channel, ("h", HOUR)).encode(),
        keys.bucket(channel, ("d", HOUR - 21 * 3600)).encode(),
        keys.watermarks(channel).encode(),
        keys.closed_writes(channel).encode(),
    }
    figures = {"conversations": conversations, "ai_cost_micros": ai_cost_micros}
    pipe = client.pipeline(transaction=False)
    for bucket in sorted(written - {keys.watermarks(channel).encode()}):
        if bucket.endswith(b":cw"):
            pipe.set(bucket, 2)
        else:
            pipe.hset(bucket, mapping={**figures, "ai_conversations": conversations})
    pipe.hset(keys.watermarks(channel), f"support.events.{channel}:0", 41)
    for n in range(3):
        conversation = keys.conversation(channel, f"conv-{n}").encode()
        pipe.set(conversation, f"ai:{HOUR * 1_000_000}", px=60_000_000)
        mark = keys.dedup_prefix(channel) + f"{HOUR}:1:{n}".encode()
        pipe.hset(mark, keys.dedup_digest(f"/{channel}", f"event-{n}"), "1")
        written |= {conversation, mark}
    directory = keys.dedup_directory(channel)
    pipe.hset(directory, mapping={"v2": 0, str(HOUR): f"{4 * HOUR} 3", f"{HOUR}:c": 3})
    written.add(directory.encode())
    pipe.sadd(keys.CHANNELS, channel)
    pipe.execute()
    return written


def the_topic_not_read_is_told(deployment: Deployment, name: str) -> None:
    """`channel list` warns of a topic under the prefix that is not a channel's; the worker
    says so once in its log (its discovery runs every second), and counts it."""
    code, out, err = cli(deployment, "channel", "list")
    assert code == 0, err
    assert "no (topic only)" in out and "1.25" in out and name not in out
    assert err == (
        f"warning: 1 topic(s) under {deployment.prefix!r} are not channel topics (a channel "
        "name is lowercase letters, digits, '-' or '_', starting with a letter or digit, at "
        f"most 32); nothing reads them: '{deployment.prefix}{name}'\n"
    )
    worker = deployment.start_worker()
    deadline = time.monotonic() + 30
    while worker.metric_or_zero("support_worker_ignored_topics") != 1:
        assert time.monotonic() < deadline, "support_worker_ignored_topics never 1"
        time.sleep(0.5)
    time.sleep(3)  # three more looks: still told once
    told = [line for line in worker.log.read_text().splitlines() if "is not a channel" in line]
    assert len(told) == 1 and f"topic '{deployment.prefix}{name}' is under" in told[0]


def test_channel_list_and_remove(deployment: Deployment, db: tuple[str, redis.Redis]) -> None:
    _, client = db
    web = seed(client, "web", 7, 1_250_000)
    slack = seed(client, "slack", 3, 500)
    # not channels of this registry, or not web: each must survive `channel remove web`
    web2 = seed(client, "web2", 1, 1)
    client.srem(keys.CHANNELS, "web2")  # state without registration (e.g. a half removal)
    client.set("roi:{web}", "not a key of web (no ':' after the tag)")
    client.set("other:key", "1")
    others = {keys.CHANNELS.encode(), b"roi:{web}", b"other:key"} | slack | web2
    assert set(client.keys("*")) == web | others
    settings = Settings(kafka_bootstrap_servers=deployment.bootstrap)
    for name in ("web", "slack", "voice", "Upper"):  # voice: a topic only; Upper: no channel
        asyncio.run(ensure_topic(settings, deployment.prefix + name))

    code, out, err = cli(deployment, "channel", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["kafka_error"] is None
    assert listed["ignored_topics"] == [f"{deployment.prefix}Upper"]  # not a channel name
    assert listed["channels"] == [
        {
            "channel": "slack",
            "registered": True,
            "topic": f"{deployment.prefix}slack",
            "topic_exists": True,
            "conversations": 3,
            "ai_cost": "0.000500",
        },
        {
            "channel": "voice",
            "registered": False,
            "topic": f"{deployment.prefix}voice",
            "topic_exists": True,
            "conversations": None,
            "ai_cost": None,
        },
        {
            "channel": "web",
            "registered": True,
            "topic": f"{deployment.prefix}web",
            "topic_exists": True,
            "conversations": 7,
            "ai_cost": "1.250000",
        },
    ]
    the_topic_not_read_is_told(deployment, "Upper")

    exporter = deployment.start_exporter()  # the figures leave /metrics with the channel

    def exported() -> str:
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())

    assert 'channel="web"' in exported() and 'channel="slack"' in exported()

    code, _, err = cli(deployment, "channel", "remove", "web")  # no --yes: nothing happens
    assert code == 2
    assert err == (
        "error: channel remove web would unregister web, delete its 13 keys in Redis; "
        "pass --yes to do it\n"
    )
    assert set(client.keys("*")) == web | others

    code, out, err = cli(deployment, "channel", "remove", "web", "--yes")
    assert code == 0, err
    assert out == "removed channel web: unregistered, deleted 13 keys in Redis\n"
    assert err == (
        f"warning: {deployment.prefix}web still exists: web comes back with its next counted "
        "event (--delete-topic deletes the topic)\n"
    )
    assert set(client.keys("*")) == others  # exactly web's keys went
    assert client.smembers(keys.CHANNELS) == {b"slack"}
    assert client.hgetall(keys.bucket("slack", ("all", 0)))[b"conversations"] == b"3"
    metrics = exported()
    assert 'channel="web"' not in metrics and 'channel="slack"' in metrics

    code, _, err = cli(deployment, "channel", "remove", "web", "--yes")  # gone: unknown
    assert code == 2
    assert err.startswith("error: channel 'web' is unknown: not registered, no state in Redis")

    code, out, err = cli(deployment, "channel", "remove", "voice", "--yes", "--delete-topic")
    assert code == 0, err
    assert out == (
        f"deleted topic {deployment.prefix}voice\n"
        "removed channel voice: was not registered, deleted 0 keys in Redis\n"
    )
    assert err == ""  # the topic is gone: no warning
    assert f"{deployment.prefix}voice" not in asyncio.run(topic_names(deployment.bootstrap))

    code, out, err = cli(deployment, "channel", "list", "--json")
    assert code == 0, err
    assert [c["channel"] for c in json.loads(out)["channels"]] == ["slack", "web"]
    assert json.loads(out)["channels"][1]["registered"] is False  # web: topic only now
    assert set(client.keys("*")) == others


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `roi-metrics` with `args`."""
    return subprocess.run(
        [str(EXECUTABLE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_installed_command_and_an_unreachable_kafka(
    deployment: Deployment, db: tuple[str, redis.Redis]
) -> None:
    _, client = db
    seed(client, "email", 2, 0)
    env = {
        **deployment.env(free_port()),
        "ROI_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # nothing listens there
    }
    done = run(env, "channel", "list")  # what Redis knows, and a failure
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert done.stderr.endswith("; topics not listed (the channels in Redis are)\n")
    assert done.stderr.count("\n") == 1
    assert "email" in done.stdout and "?" in done.stdout  # registered; topic unknown
    done = run(env, "channel", "remove", "email", "--yes", "--delete-topic")
    assert done.returncode == 1  # the topic comes first: nothing deleted
    assert done.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert client.sismember(keys.CHANNELS, "email")


def test_the_worker_on_real_kafka_prints_no_redis_password(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The worker starts on the real Kafka; Redis, behind a URL with a password, is away:
    whatever it says (banner, warnings, a refusal to start), the password is not in it."""
    forms = [
        "redis://127.0.0.1:1/0?password=wq-s3cret",
        "redis://:wu-s3cret@127.0.0.1:1/0",
        "unix:///nonexistent/redis.sock?PASSWORD=ws-s3cret&db=0",
    ]
    for url in forms:
        env = {**deployment.env(free_port()), "ROI_REDIS_URL": url}
        log = tmp_path / "worker.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(EXECUTABLE), "worker", "--log-level", "info"],
                env=env,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 8
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        output = log.read_text()
        if "PASSWORD" in url:  # a parameter redis-py does not know: refused in one line
            assert (
                output.startswith("error: ROI_REDIS_URL (or REDIS_URL): ")
                and output.count("\n") == 1
            )
        else:
            assert "redis_url = " in output, output  # it got past its checks of Kafka
        assert "s3cret" not in output, output
        assert "Logging error" not in output, output  # the redaction broke no log line

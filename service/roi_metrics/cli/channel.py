"""`roi-metrics channel add | list | remove`: a channel is one Kafka topic and its state."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from roi_metrics.cli.common import (
    EXIT_FAILURE,
    check_channel,
    err,
    fail,
    load_settings,
    out,
    redact,
    redis_client,
    redis_unreachable,
    run_operator,
    say,
    warn,
)
from roi_metrics.cli.render import amount, printable
from roi_metrics.domain.channels import CHANNEL_RULE
from roi_metrics.domain.figures import money
from roi_metrics.domain.money import units_text
from roi_metrics.traffic.events import OperatorError
from roi_metrics.traffic.publish import (
    channel_topics,
    create_channel,
    delete_channel_topic,
    prefixed_topics,
)

app = typer.Typer(help="Manage channels (one Kafka topic each).", no_args_is_help=True)


@app.command("add")
def channel_add(
    name: Annotated[str, typer.Argument(help="The channel, e.g. voice: topic <prefix><name>.")],
    partitions: Annotated[
        int, typer.Option(min=1, max=1000, help="Partitions: how many workers can share it.")
    ] = 6,
) -> None:
    """Create a channel's topic; the workers pick it up within ROI_DISCOVERY_INTERVAL_SECONDS."""
    settings = load_settings()
    topic = settings.topic_prefix + check_channel(name)
    created = run_operator(create_channel(settings, name, partitions))
    if created:
        say(out, f"created {topic} ({partitions} partitions)")
    else:
        say(out, f"{topic} already exists: nothing to do")


def _keys(count: int) -> str:
    return f"{count:,} key{'' if count == 1 else 's'} in Redis"


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else "yes" if value else "no"


def _micros(value: int | None) -> str | None:
    """Exact money from micro-units, as report --json writes it ("12.500000")."""
    return None if value is None else units_text(value)


@app.command("list")
def channel_list(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """The channels: registered in Redis (counted an event), with a topic in Kafka, or both.

    A registered channel without a topic is one whose topic was deleted; a topic without a
    registered channel has not counted an event yet (or was removed and has had none since).
    """

    from roi_metrics.state.channels import list_channels, registered  # noqa: PLC0415
    from roi_metrics.state.connect import ERRORS  # noqa: PLC0415

    settings = load_settings()
    client = redis_client(settings)
    try:
        registered(client)  # fail fast, before waiting on Kafka, when Redis is away
        kafka_problem = None
        ignored: list[str] = []
        try:
            topics: set[str] | None
            topics, ignored = asyncio.run(prefixed_topics(settings))
        except OperatorError as error:
            topics, kafka_problem = None, redact(str(error))
        channels = list_channels(client, topics or ())
    except ERRORS as error:
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
        document = {"channels": rows, "ignored_topics": ignored, "kafka_error": kafka_problem}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        if kafka_problem is not None:  # what Redis knows is listed; the command failed
            raise typer.Exit(EXIT_FAILURE)
        return
    if ignored:
        shown = ", ".join(repr(printable(name[:80])) for name in ignored[:10])
        more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        warn(
            f"{len(ignored)} topic(s) under {settings.topic_prefix!r} are not channel topics "
            f"(a channel name is {CHANNEL_RULE}); nothing reads them: {shown}{more}"
        )
    if not channels:
        kafka = "" if topics is None else ", no channel topic in Kafka"
        say(out, f"No channel: none registered in Redis{kafka}.")
        if kafka_problem is not None:
            say(err, f"error: {kafka_problem}; topics not listed")
            raise typer.Exit(EXIT_FAILURE)
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
            Text(amount(None if cost is None else money(cost))),
        )
    out.print(table)
    if kafka_problem is not None:  # what Redis knows is listed; the command failed
        say(err, f"error: {kafka_problem}; topics not listed (the channels in Redis are)")
        raise typer.Exit(EXIT_FAILURE)


@app.command("remove")
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
    """Forget a channel: it leaves the exporter's /metrics, and every key it has in Redis
    (its figures, joins, dedup marks, offsets) is deleted.

    Its topic stays unless --delete-topic: while it exists, the channel
    comes back with its next counted event, counted from there (what was
    removed does not come back).
    """

    from roi_metrics.state.channels import count_keys, registered, remove_channel  # noqa: PLC0415
    from roi_metrics.state.connect import ERRORS  # noqa: PLC0415

    settings = load_settings()
    check_channel(name)
    topic = settings.topic_prefix + name
    client = redis_client(settings)
    try:
        is_registered = name in registered(client)
        keys_found = count_keys(client, name)
        has_topic = delete_topic and name in run_operator(channel_topics(settings))
        if not (is_registered or keys_found or has_topic):
            hint = "" if delete_topic else " (a topic without state goes with --delete-topic)"
            raise fail(f"channel {name!r} is unknown: not registered, no state in Redis{hint}")
        steps = [f"delete topic {topic} and its events"] if has_topic else []
        steps += [f"unregister {name}"] if is_registered else []
        steps.append(f"delete its {_keys(keys_found)}")
        if not yes:
            raise fail(f"channel remove {name} would {', '.join(steps)}; pass --yes to do it")
        if has_topic:
            run_operator(delete_channel_topic(settings, name))
            say(out, f"deleted topic {topic}")
        deleted = remove_channel(client, name)
    except ERRORS as error:
        raise redis_unreachable(error, "change") from None
    finally:
        client.close()
    say(
        out,
        f"removed channel {name}: "
        f"{'unregistered' if is_registered else 'was not registered'}, "
        f"deleted {_keys(deleted)}",
    )
    try:
        still = name in asyncio.run(channel_topics(settings))
    except OperatorError as error:
        warn(
            f"cannot check whether {topic} still exists ({error}); if it does, "
            f"{name} comes back with its next counted event"
        )
        return
    if still:
        warn(
            f"{topic} still exists: {name} comes back with its next counted event "
            "(--delete-topic deletes the topic)"
        )

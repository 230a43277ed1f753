"""Lua scripts in pipelines, on one Redis server or a Redis Cluster.

redis-py's Script objects cannot run in a cluster pipeline (it blocks EVALSHA there), and a
server that never saw a script, or a replica just promoted to master (scripts are not
replicated), answers NOSCRIPT. So the state code queues plain EVALSHA commands and runs
them with `execute` (asyncio) or `execute_sync`: every command in one non-transactional
pipeline (redis-py splits a cluster pipeline by node); the commands a server answered
NOSCRIPT did not run, so the scripts are loaded (on every master of a cluster) and just
those commands run again. The first other error is raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from redis.exceptions import NoScriptError

Command: TypeAlias = tuple[Any, ...]
"""One Redis command and its arguments, e.g. ("HGET", key, field)."""


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    sha: str = field(init=False)
    """Redis names a script by the SHA-1 of its source."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _missing(replies: Sequence[Any]) -> list[int]:
    return [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def _raise_first_error(replies: Sequence[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return list(replies)


async def _run(client: Any, commands: Sequence[Command]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


async def execute(client: Any, commands: Sequence[Command], scripts: Sequence[Script]) -> list[Any]:
    """Run `commands` (asyncio client), loading `scripts` where a server lacks them."""
    replies = await _run(client, commands)
    missing = _missing(replies)
    if missing:
        for script in scripts:
            await client.script_load(script.source)
        again = await _run(client, [commands[index] for index in missing])
        for index, reply in zip(missing, again, strict=True):
            replies[index] = reply
    return _raise_first_error(replies)


def execute_sync(client: Any, commands: Sequence[Command], scripts: Sequence[Script]) -> list[Any]:
    """Run `commands` (synchronous client), loading `scripts` where a server lacks them."""

    def run(batch: Sequence[Command]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for command in batch:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))

    replies = run(commands)
    missing = _missing(replies)
    if missing:
        for script in scripts:
            client.script_load(script.source)
        for index, reply in zip(missing, run([commands[i] for i in missing]), strict=True):
            replies[index] = reply
    return _raise_first_error(replies)

"""Channels and their topics (CONTRACT.md §1): the one definition the event contract, the
cost card, the settings, the worker and the operator commands share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

CHANNEL_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"
"""A channel name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter or a
digit, at most 32 characters. The published schemas carry this very pattern."""
DEFAULT_TOPIC_PREFIX: Final = "support.events."
"""A channel's events arrive on <prefix><channel>."""
DEAD_LETTER_TOPIC: Final = "support.deadletter"

_CHANNEL_NAME: Final = re.compile(CHANNEL_PATTERN)
CHANNEL_RULE: Final = (
    "lowercase letters, digits, '-' or '_', starting with a letter or digit, at most 32"
)


def not_channel_topics(names: Iterable[str], prefix: str) -> list[str]:
    """The topics among `names` under `prefix` whose rest is not a channel name: nothing
    reads them (a publisher's mistake to tell, not to guess at)."""
    return sorted(
        name for name in names if name.startswith(prefix) and channel_of_topic(name, prefix) is None
    )


def is_channel_name(name: str) -> bool:
    """Whether `name` is a channel name; the whole of it (a final newline included).

    >>> is_channel_name("web"), is_channel_name("web\\n"), is_channel_name("Web")
    (True, False, False)
    """
    return _CHANNEL_NAME.fullmatch(name) is not None


def channel_of_topic(topic: str, prefix: str) -> str | None:
    """The channel whose events `topic` carries (`<prefix><channel>`), or None when it is
    not a channel topic."""
    if not topic.startswith(prefix):
        return None
    name = topic[len(prefix) :]
    return name if is_channel_name(name) else None

"""Redis must never evict: a dropped key would silently change a figure (a bucket, a
dedup mark, a watermark). The worker and the exporter refuse to run against a Redis whose
`maxmemory-policy` is not `noeviction`; the exporter exports used and maximum memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

NOEVICTION: Final = "noeviction"


def eviction_problem(memory_info: Mapping[str, Any]) -> str | None:
    """What is wrong with Redis's eviction policy (from `INFO memory`), in one line that
    names the fix; None when it is noeviction, or when the server does not say (a proxy)."""
    policy = memory_info.get("maxmemory_policy")
    if policy is None or policy == NOEVICTION:
        return None
    return (
        f"Redis maxmemory-policy is {policy}: Redis may evict the figures' state; set it to "
        f"{NOEVICTION} (redis-cli CONFIG SET maxmemory-policy {NOEVICTION}, and in redis.conf)"
    )


def memory_bytes(memory_info: Mapping[str, Any]) -> tuple[int, int]:
    """(used, max) bytes from `INFO memory`; max is 0 when Redis has no limit."""
    return int(memory_info.get("used_memory", 0)), int(memory_info.get("maxmemory", 0))

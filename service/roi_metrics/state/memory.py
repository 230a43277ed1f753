"""Redis must never evict: a dropped key would silently change a figure (a bucket, a
dedup mark, a watermark). The worker and the exporter refuse to run against a Redis whose
`maxmemory-policy` is not `noeviction`; the exporter exports used and maximum memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

NOEVICTION: Final = "noeviction"


def per_node(memory_info: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """`INFO memory` by node: a cluster client answers {node: info}, one server its info."""
    if memory_info and all(isinstance(value, Mapping) for value in memory_info.values()):
        return dict(memory_info)
    return {"": memory_info}


def eviction_problem(memory_info: Mapping[str, Any]) -> str | None:
    """What is wrong with Redis's eviction policy (from `INFO memory`, of one server or of
    every node of a cluster), in one line that names the fix; None when it is noeviction,
    or when the server does not say (a proxy)."""
    for node, info in per_node(memory_info).items():
        policy = info.get("maxmemory_policy")
        if policy is None or policy == NOEVICTION:
            continue
        where = f" on {node}" if node else ""
        return (
            f"Redis maxmemory-policy is {policy}{where}: Redis may evict the figures' state; "
            f"set it to {NOEVICTION} (redis-cli CONFIG SET maxmemory-policy {NOEVICTION}, "
            "and in redis.conf)"
        )
    return None


def memory_bytes(memory_info: Mapping[str, Any]) -> tuple[int, int]:
    """(used, max) bytes from `INFO memory`; max is 0 when there is no limit. On a cluster
    (its masters' answers), the fullest master's: each channel lives on one master, and the
    first master to reach its limit stops the channels it holds."""
    nodes = [
        (int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)))
        for info in per_node(memory_info).values()
    ]
    return max(nodes, key=lambda node: (node[0] / node[1] if node[1] else 0.0, node[0]))

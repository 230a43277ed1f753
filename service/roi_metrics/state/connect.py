"""Redis clients for one server or a Redis Cluster (ROI_REDIS_CLUSTER), built the same way:
the worker's asyncio client and the synchronous one of the exporter and the CLI. Every key
of a channel carries its hash tag (roi_metrics.state.keys), so each script runs on one node."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

ERRORS: tuple[type[Exception], ...] = (redis.RedisError, redis.exceptions.RedisClusterException)
"""What a Redis client raises when Redis is away or refuses (a cluster client raises the
second while it cannot reach any node)."""


def async_client(url: str, options: dict[str, Any], cluster: bool) -> Any:
    """redis.asyncio.Redis, or RedisCluster when `cluster` (it connects on first use)."""
    if cluster:
        return AsyncRedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)


def sync_client(url: str, options: dict[str, Any], cluster: bool) -> Any:
    """redis.Redis, or RedisCluster when `cluster`; the cluster client asks a node for the
    cluster's layout at once, so this raises one of ERRORS when none answers."""
    if cluster:
        return redis.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def memory_info(client: Any, masters_only: bool = False) -> Any:
    """`INFO memory` of the one server, or of every node of a cluster ({node: info}; its
    masters only with `masters_only`)."""
    if isinstance(client, redis.RedisCluster):
        nodes = redis.RedisCluster.PRIMARIES if masters_only else redis.RedisCluster.ALL_NODES
        return client.info("memory", target_nodes=nodes)
    return client.info("memory")


async def memory_info_async(client: Any) -> Any:
    """`INFO memory` of the one server, or of every node of a cluster ({node: info})."""
    if isinstance(client, AsyncRedisCluster):
        return await client.info("memory", target_nodes=AsyncRedisCluster.ALL_NODES)
    return await client.info("memory")

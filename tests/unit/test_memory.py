"""Redis's memory as the exporter and the eviction check read it: one server, or every node
of a Redis Cluster (redis-py answers {node: info})."""

from __future__ import annotations

from roi_metrics.state.memory import eviction_problem, memory_bytes


def node(used: int, limit: int, policy: str = "noeviction") -> dict[str, object]:
    return {"used_memory": used, "maxmemory": limit, "maxmemory_policy": policy}


def test_one_server_is_read_as_it_answers() -> None:
    assert memory_bytes(node(100, 1000)) == (100, 1000)
    assert eviction_problem(node(100, 1000)) is None
    assert "allkeys-lru" in (eviction_problem(node(1, 0, "allkeys-lru")) or "")


def test_on_a_cluster_the_fullest_master_is_the_one_that_counts() -> None:
    masters = {
        "127.0.0.1:17001": node(300, 1000),  # 30 %
        "127.0.0.1:17002": node(900, 1000),  # 90 %: its channels stop first
        "127.0.0.1:17003": node(950, 4000),  # 24 %
    }
    assert memory_bytes(masters) == (900, 1000)
    unlimited = {"a": node(300, 0), "b": node(700, 0)}
    assert memory_bytes(unlimited) == (700, 0)


def test_on_a_cluster_any_evicting_node_is_refused_by_name() -> None:
    nodes = {"127.0.0.1:17001": node(1, 0), "127.0.0.1:17005": node(1, 0, "volatile-lru")}
    problem = eviction_problem(nodes)
    assert problem is not None
    assert "volatile-lru on 127.0.0.1:17005" in problem
    assert eviction_problem({"127.0.0.1:17001": node(1, 0)}) is None

"""How fast the customer agent joins facts (CONTRACT.md §9), on the local stack's Redis.

    .venv/bin/python -m bench.joiner [--customers 2000] [--db 9]

Each customer has an AI resolution on web and comes back on slack: two facts, the second
revoking the first, as the joiner handles them one at a time (CustomerAgent.take: its
record's watermark looked up, the customer's state read and written, the revocation applied
in web's slot, the progress mark moved). No Kafka: the facts' records are "applied" by
setting the channels' watermarks first. Prints facts per second, and what one fact costs.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from rich.console import Console
from roi_metrics.domain.aggregate import CUMULATIVE
from roi_metrics.domain.events import Actor, ConversationState, Counter
from roi_metrics.domain.recontact import Fact, FactKind, fact_id
from roi_metrics.state import keys
from roi_metrics.state.customers import CustomerStore
from roi_metrics.state.store import StateStore, encode_state
from roi_metrics.worker.customers import CustomerAgent, Origin, encode_fact
from roi_metrics.worker.metrics import WorkerMetrics

from bench.common import local_redis

console = Console()
PREFIX = "bench.events."


async def main(customers: int, db: int) -> None:
    client = await local_redis(db)
    agent = CustomerAgent(
        store=StateStore(client, 86_400, 30 * 86_400),
        customers=CustomerStore(client, 8 * 86_400),
        metrics=WorkerMetrics(),
        topic="bench.customers",
        topic_prefix=PREFIX,
        window_seconds=7 * 86_400,
        max_lateness_seconds=7 * 86_400,
    )
    at = int(time.time() - 3600) * 1_000_000
    for channel in ("web", "slack"):
        await client.hset(keys.watermarks(channel), f"{PREFIX}{channel}:0", 10**9)
    pipe = client.pipeline(transaction=False)
    for i in range(customers):
        state = ConversationState(Actor.AI, at, customer=f"k{i}")
        pipe.set(keys.conversation("web", f"r{i}"), encode_state(state))
    await pipe.execute()
    facts = []
    for i in range(customers):
        for kind, channel, name, micros in (
            (FactKind.RESOLVED, "web", f"r{i}", at),
            (FactKind.STARTED, "slack", f"b{i}", at + 60_000_000),
        ):
            fact = Fact(fact_id(channel, "/b", name), kind, f"k{i}", channel, name, micros)
            facts.append(encode_fact(fact, Origin(PREFIX + channel, 0, i)))
    started = time.perf_counter()
    for offset, value in enumerate(facts):
        await agent.take(0, offset, value)
    seconds = time.perf_counter() - started
    revoked = int(await client.hget(keys.bucket("web", CUMULATIVE), Counter.AI_RECONTACTS.value))
    assert revoked == customers, (revoked, customers)
    rate, cost = len(facts) / seconds, seconds / len(facts) * 1e3
    console.print(
        f"{len(facts):,} facts ({customers:,} re-contacts, each counted once) in {seconds:.2f} s: "
        f"[bold]{rate:,.0f} facts/s[/bold], {cost:.2f} ms a fact"
    )
    await client.flushdb()
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--db", type=int, default=9, help="Redis database, emptied")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.customers, arguments.db))

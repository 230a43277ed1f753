"""Cross-channel re-contact (CONTRACT.md §9) through the real Kafka, worker and Redis: a
customer's AI resolution on one channel revoked once by their next conversation on another,
through a kill -9 of the worker while the re-contacts flow."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from tests.cloudevents import encode, event
from tests.integration.harness import Deployment
from tests.integration.pipeline import Offsets, create_channels, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
REDIS_DB = 1  # this module's Redis database (the deployment and state fixtures)
CUSTOMERS = 80
WINDOW = 1200  # seconds: ROI_RECONTACT_WINDOW_SECONDS of this test's worker


def with_customer(body: dict[str, object], customer: str) -> dict[str, object]:
    return {**body, "customer": customer}


def first_visits(now: float) -> list[tuple[str, str, dict[str, object]]]:
    """Customer k{i}: an AI conversation on web resolved by the AI at t_R = now - 3600 + i
    (confirmed when i % 3 == 0); reopened a minute later when i % 10 == 4 (those come back
    within the window: there is no resolution left to revoke)."""
    records = []
    for i in range(CUSTOMERS):
        at = now - 3600 + i
        name = f"first-{i}"
        started = event("conversation.started", f"s-{i}", name, at - 30, "/web", handled_by="ai")
        records.append(("web", name, with_customer(started, f"k{i}")))
        confirmation = "confirmed" if i % 3 == 0 else "assumed"
        resolved = event(
            "conversation.resolved",
            f"r-{i}",
            name,
            at,
            "/web",
            resolved_by="ai",
            confirmation=confirmation,
        )
        records.append(("web", name, resolved))
        if i % 10 == 4:
            records.append(
                ("web", name, event("conversation.reopened", f"o-{i}", name, at + 60, "/web"))
            )
    return records


def returns(now: float) -> list[tuple[str, str, dict[str, object]]]:
    """Customer k{i} starts another conversation, on slack or whatsapp: 600 s after t_R when
    i % 4 == 0 (inside the window), 1200 s after (the window's edge: inside) when i % 4 == 2,
    1500 s after (outside) when i % 4 == 1; never when i % 4 == 3."""
    records = []
    for i in range(CUSTOMERS):
        after = {0: 600, 1: 1500, 2: 1200}.get(i % 4)
        if after is None:
            continue
        channel = "slack" if i % 2 == 0 else "whatsapp"
        name = f"again-{i}"
        started = event(
            "conversation.started",
            f"a-{i}",
            name,
            now - 3600 + i + after,
            f"/{channel}",
            handled_by="ai",
        )
        records.append((channel, name, with_customer(started, f"k{i}")))
    return records


def expected() -> tuple[int, int, int]:
    """(ai_recontacts, ai_reopens, ai_revoked_confirmed) on web, worked out per customer."""
    recontacts = reopens = revoked_confirmed = 0
    for i in range(CUSTOMERS):
        confirmed = i % 3 == 0
        if i % 10 == 4:  # reopened first: the resolution no longer stands to be revoked
            reopens += 1
            revoked_confirmed += confirmed
        elif i % 4 in (0, 2):  # back within the window
            recontacts += 1
            revoked_confirmed += confirmed
    return recontacts, reopens, revoked_confirmed


async def publish(
    deployment: Deployment, records: list[tuple[str, str, dict[str, object]]], pause: float = 0
) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all")
    await producer.start()
    offsets: Offsets = {}
    try:
        for channel, key, body in records:
            meta = await producer.send_and_wait(
                deployment.prefix + channel, encode(body), key=key.encode()
            )
            offsets[(meta.topic, meta.partition)] = meta.offset
            if pause:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()
    return offsets


async def web_totals(state: aioredis.Redis) -> dict[str, int]:
    raw = await state.hgetall("roi:{web}:b:all:0")
    return {k.decode(): int(v) for k, v in raw.items()}


async def test_a_customer_coming_back_on_another_channel_revokes_once_through_kill_9(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    # 40 customers back within the window (every even i), 8 of them reopened first (i % 10
    # == 4); confirmed (i % 3 == 0): of the 32 revoked, the 12 with i % 6 == 0 but 24 and 54;
    # of the 8 reopened, 24 and 54
    recontacts, reopens, revoked_confirmed = expected()
    assert (recontacts, reopens, revoked_confirmed) == (32, 8, 14)
    now = time.time()
    await create_channels(deployment, ["web", "slack", "whatsapp"], partitions=3)
    env = {"ROI_RECONTACT_WINDOW_SECONDS": str(WINDOW)}
    worker = deployment.start_worker(env=env)
    applied = await publish(deployment, first_visits(now))
    await wait_applied(state, deployment, applied, seconds=60)

    async def returns_with_a_kill() -> Offsets:
        nonlocal worker
        later = returns(now)
        half = len(later) // 2
        offsets = await publish(deployment, later[:half], pause=0.01)
        worker.kill()  # kill -9 while the facts of these returns are being joined
        worker = deployment.start_worker(env=env, wait=False)
        offsets.update(await publish(deployment, later[half:], pause=0.01))
        return offsets

    applied = await returns_with_a_kill()
    await wait_applied(state, deployment, applied, seconds=90)
    deadline = time.monotonic() + 60
    while (await web_totals(state)).get("ai_recontacts", 0) < recontacts:
        assert time.monotonic() < deadline, await web_totals(state)
        await asyncio.sleep(0.25)
    await asyncio.sleep(3)  # anything counted twice would show by now
    web = await web_totals(state)
    assert web["ai_recontacts"] == recontacts
    assert web["ai_reopens"] == reopens
    assert web["ai_revoked_confirmed"] == revoked_confirmed
    for channel in ("slack", "whatsapp"):  # counted on the resolved conversation's channel
        other = await state.hgetall(f"roi:{{{channel}}}:b:all:0")
        assert b"ai_recontacts" not in other
    assert int((await state.hget("roi:{slack}:b:all:0", "conversations")) or 0) == 40  # even i
    assert int((await state.hget("roi:{whatsapp}:b:all:0", "conversations")) or 0) == 20
    # the revoked conversations are unresolved now, still their customers'
    assert await state.get("roi:{web}:c:first-0") == b":::k0"
    assert (await state.get("roi:{web}:c:first-1")).startswith(b"ai:")  # back too late

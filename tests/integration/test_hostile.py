"""The hostile corpus (tests/corpus/hostile.py) through Kafka to a real worker, mixed with
valid traffic on the same topics and partitions: the partitions keep moving, the valid
events of the same batches are counted, each bad record or event is dead-lettered once
with its reason, and the figures equal the independent oracle."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from roi_metrics.ingest.contract import DeadLetterHeader as H

from tests.corpus.hostile import GARBAGE_CHANNELS, OVERFLOW_CHANNEL, Corpus, Hostile
from tests.integration.harness import Deployment
from tests.integration.pipeline import (
    Offsets,
    bucket_state,
    create_channels,
    read_topic,
    wait_applied,
)
from tests.integration.traffic import Generator, Labelled, Traffic, recompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REDIS_DB = 10  # this module's Redis database (the deployment and state fixtures)
Origin = tuple[str, int, int]


async def send_mixed(
    deployment: Deployment, traffic: Traffic, corpus: list[Hostile]
) -> tuple[Offsets, dict[Origin, Hostile]]:
    """Valid records with a hostile one after every few; where each hostile record landed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=deployment.bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=3 * 1024 * 1024,
        linger_ms=5,
    )
    await producer.start()
    offsets: Offsets = {}
    landed: dict[Origin, Hostile] = {}
    every = max(1, len(traffic.records) // len(corpus))
    hostile = iter(corpus)
    try:
        for number, (channel, key, value) in enumerate(traffic.records):
            sends = [(deployment.prefix + channel, key, value, [], None)]
            if number % every == 0:
                bad = next(hostile, None)
                if bad is not None:
                    topic = deployment.prefix + bad.channel
                    sends.append((topic, bad.key, bad.value, bad.headers, bad))
            for topic, record_key, record_value, headers, origin in sends:
                metadata = await (
                    await producer.send(topic, record_value, key=record_key, headers=headers)
                )
                tp = (metadata.topic, metadata.partition)
                offsets[tp] = max(offsets.get(tp, -1), metadata.offset)
                if origin is not None:
                    landed[(metadata.topic, metadata.partition, metadata.offset)] = origin
        for bad in hostile:  # whatever the interleaving left
            topic = deployment.prefix + bad.channel
            metadata = await (
                await producer.send(topic, bad.value, key=bad.key, headers=bad.headers)
            )
            offsets[(metadata.topic, metadata.partition)] = metadata.offset
            landed[(metadata.topic, metadata.partition, metadata.offset)] = bad
    finally:
        await producer.stop()
    return offsets, landed


async def test_the_hostile_corpus_never_stops_the_counting(
    deployment: Deployment, state: aioredis.Redis
) -> None:
    now = int(time.time())
    corpus = Corpus(now).build()
    assert len(corpus) >= 40
    assert len({bad.name for bad in corpus}) == len(corpus)  # each case named once
    traffic = Generator(seed=404, now=now, channels=["web", "slack"]).traffic(200)
    await create_channels(deployment, ["web", "slack", OVERFLOW_CHANNEL, *GARBAGE_CHANNELS])
    worker = deployment.start_worker()
    offsets, landed = await send_mixed(deployment, traffic, corpus)
    assert len(landed) == len(corpus)
    await wait_applied(state, deployment, offsets, seconds=240)

    # every hostile record gave exactly its dead letters, once
    expected_letters = sum(len(bad.reasons) for bad in corpus)
    generated_letters = 2 * 9  # Generator.invalid: nine dead letters per channel
    letters = await read_topic(
        deployment.bootstrap, deployment.dead_letter_topic, expected_letters + generated_letters
    )
    found: dict[Origin, Counter[str]] = {}
    for letter in letters:
        headers = dict(letter.headers)
        origin = (
            headers[H.ORIGIN_TOPIC].decode(),
            int(headers[H.ORIGIN_PARTITION]),
            int(headers[H.ORIGIN_OFFSET]),
        )
        found.setdefault(origin, Counter())[headers[H.REASON].decode()] += 1
        assert len(letter.value) + len(letter.key or b"") < 1024 * 1024  # always deliverable
        if origin in landed and landed[origin].name == "1.1 MB key on an invalid record":
            assert (len(letter.key), headers[H.KEY_TRUNCATED]) == (1024, b"1100000")
        if origin in landed and landed[origin].name == "record just over 1 MiB":
            assert int(headers[H.TRUNCATED]) > 1024 * 1024
    for origin, bad in landed.items():
        assert found.get(origin, Counter()) == Counter(bad.reasons), bad.name
    others = [found[origin] for origin in set(found) - set(landed)]
    assert sum(sum(reasons.values()) for reasons in others) == generated_letters

    # the figures: the oracle over the valid traffic and the corpus's counted events
    counted = [
        Labelled(bad.channel, body, True)
        for bad in corpus
        if bad.channel != OVERFLOW_CHANNEL
        for body in bad.counted
    ]
    combined = Traffic(records=traffic.records, events=traffic.events + counted)
    everything = await bucket_state(state)
    overflow = {k: v for k, v in everything.items() if f"{{{OVERFLOW_CHANNEL}}}" in k}
    rest = {k: v for k, v in everything.items() if k not in overflow}
    assert rest == recompute(combined, now)
    cumulative = overflow[f"roi:{{{OVERFLOW_CHANNEL}}}:b:all:0"]
    assert cumulative == {"ai_cost_micros": 9223 * 10**15}  # 2^63 - 1 holds 9223 of them
    assert max(max(v.values()) for v in overflow.values()) < 2**63

    # channels: a topic that only carried garbage is none; the worker stayed up and ready
    channels = {member.decode() for member in await state.smembers("roi:channels")}
    assert channels == {"web", "slack", OVERFLOW_CHANNEL}
    assert worker.process.poll() is None
    assert await asyncio.to_thread(worker.readyz) == 200
    assert worker.metric("support_dead_letters_total") == len(letters)  # each sent once
    unregistered = await asyncio.to_thread(
        worker.labelled, "support_dead_letters_total", channel="_unregistered"
    )
    assert unregistered == len(GARBAGE_CHANNELS)

"""The worker's timers: channel discovery, consumer lag, the watchdog.

Lag is exported for every assigned partition from the moment it is assigned: the records
after the last one applied, whether this process applied it (its own bookkeeping) or an
earlier one did (the partition's watermark in Redis), or from the partition's first offset
when nothing was ever applied. Records past the consumer's fetch position make the
partition "behind"; the watchdog (roi_metrics.worker.liveness) decides when that is a stall.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Final

import faust
from aiokafka.admin import AIOKafkaAdminClient

from roi_metrics.domain.channels import CHANNEL_RULE, channel_of_topic, not_channel_topics
from roi_metrics.state.connect import memory_info_async
from roi_metrics.state.memory import eviction_problem
from roi_metrics.worker.liveness import EXIT_STALLED
from roi_metrics.worker.runtime import Runtime

log = logging.getLogger(__name__)
RESUBSCRIBE_DELAY_SECONDS: Final = 1.0
"""Faust coalesces subscription changes for 45 s by default; a new channel should count
within seconds."""
LAG_INTERVAL_SECONDS: Final = 5.0
"""Each consumer query waits for the consumer thread's current fetch (up to half a second)."""
LAG_TIMEOUT_SECONDS: Final = 15.0
WATCH_INTERVAL_SECONDS: Final = 1.0
EXIT_BAD_STATE_STORE: Final = 2
EXIT_GRACE_SECONDS: Final = 1.0


def channel_topics(names: set[str], prefix: str) -> list[str]:
    """The topics among `names` that are channel topics: the prefix, then a channel name."""
    return sorted(name for name in names if channel_of_topic(name, prefix) is not None)


def _conductor(app: faust.App) -> Any:
    """Faust's topic conductor, for the two private hooks channel discovery needs: its
    resubscribe delay and its change flag. Faust's pattern subscription subscribes to
    nothing (faust-streaming issue #62), so this is how new channels are picked up."""
    return app.topics


def set_resubscribe_delay(app: faust.App) -> None:
    _conductor(app)._resubscribe_sleep_lock_seconds = RESUBSCRIBE_DELAY_SECONDS


async def discover(app: faust.App, runtime: Runtime) -> None:
    """Subscribe to channel topics that appeared since the last look. Never raises (a
    timer that raises crashes the whole Faust app): a failure waits for the next look."""
    try:
        await _discover(app, runtime)
    except Exception as error:
        log.warning("could not discover channel topics: %s", error)


async def _discover(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    try:
        await admin.start()
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    found = channel_topics(names, settings.topic_prefix)
    _tell_ignored(runtime, not_channel_topics(names, settings.topic_prefix))
    runtime.discovered_once = True
    conductor = _conductor(app)
    # The agent iterates a clone of its topic, made when it starts (maybe after this look):
    # every copy the conductor holds gets the list, whenever one lacks it.
    stale = [c for c in _channel_copies(app, settings.topic_prefix) if list(c.topics) != found]
    for candidate in stale:
        candidate.topics = list(found)
    if found != runtime.subscribed:
        log.info("channel topics: %d (%s)", len(found), ", ".join(found[:20]))
        runtime.subscribed = found
        runtime.metrics.channels.set(len(found))
    elif not stale and not _dropped(app, conductor, found):
        return
    conductor._flag_changes()


def _tell_ignored(runtime: Runtime, ignored: list[str]) -> None:
    """One warning per topic under the prefix that is not a channel topic: its records
    would otherwise be lost without a word."""
    runtime.metrics.not_channels.set(len(ignored))
    for topic in ignored:
        if topic not in runtime.ignored:
            log.warning(
                "topic %r is under ROI_TOPIC_PREFIX %r but %r is not a channel name (%s): "
                "its records are not read",
                topic[:300],
                runtime.settings.topic_prefix,
                topic[len(runtime.settings.topic_prefix) :][:100],
                CHANNEL_RULE,
            )
    runtime.ignored = set(ignored)


def _channel_copies(app: faust.App, prefix: str) -> list[Any]:
    """The conductor's topics that are the agent's (not Faust's internal ones): those whose
    every name, if any, is a channel topic."""
    return [
        candidate
        for candidate in list(app.topics)
        if not getattr(candidate, "internal", False)
        and isinstance(getattr(candidate, "topics", None), list | tuple)
        and all(channel_of_topic(name, prefix) is not None for name in candidate.topics)
    ]


def _dropped(app: faust.App, conductor: Any, found: list[str]) -> bool:
    """Whether a subscription change was lost: Faust's conductor clears a change flagged
    while the group rebalances, and nothing flags it again, so a topic that appeared during
    the rebalance another new topic caused would never be consumed. Not while a change is
    pending, being applied (its index is rebuilt under a lock) or the group rebalances."""
    changed = getattr(conductor, "_subscription_changed", None)
    busy = (
        app.rebalancing
        or (changed is not None and changed.is_set())
        or conductor._tp_to_callback_lock.locked()
    )
    if busy or set(found) <= set(conductor._topic_name_index):
        return False
    log.info("channel topics not subscribed yet (a rebalance dropped the change): again")
    return True


async def report_lag(app: faust.App, runtime: Runtime) -> None:
    """Export the lag of every assigned partition; note whether any is behind its fetch.
    Never raises: a timer that raises crashes the whole Faust app, and a partition may be
    revoked between any two awaits here (then it is measured next time, by its owner)."""
    try:
        await asyncio.wait_for(_report_lag(app, runtime), LAG_TIMEOUT_SECONDS)
    except TimeoutError:  # the consumer thread does not answer: the watchdog decides
        log.warning("the consumer did not answer the lag query in %.0f s", LAG_TIMEOUT_SECONDS)
        return
    except Exception as error:
        log.warning("could not measure lag: %s", error)
    runtime.watch.answered(time.monotonic())


async def _report_lag(app: faust.App, runtime: Runtime) -> None:
    processor = runtime.processor
    if processor is None:
        return
    channels = set(runtime.subscribed)  # not Faust's own assignor topic
    assigned = sorted(tp for tp in app.consumer.assignment() if tp.topic in channels)
    gauge, progress = runtime.metrics.lag, runtime.metrics.applied_offset
    for topic, partition in runtime.lag_labels - {(tp.topic, tp.partition) for tp in assigned}:
        gauge.remove(topic, str(partition))
        progress.remove(topic, str(partition))
        processor.applied_offsets.pop((topic, partition), None)  # its new owner moves it
    runtime.lag_labels = {(tp.topic, tp.partition) for tp in assigned}
    if not assigned:
        runtime.fetch_behind = False
        return
    ends = await app.consumer.highwaters(*assigned)
    applied, never = await _applied_offsets(app, runtime, assigned)
    await _check_eviction(runtime)
    in_hand = {(e.message.topic, e.message.partition) for e in runtime.batcher.filling}
    in_hand |= runtime.watch.holding
    lags = {tp: max(0, ends[tp] - applied[tp] - 1) for tp in assigned if ends.get(tp) is not None}
    waiting = [tp for tp, lag in lags.items() if lag and (tp.topic, tp.partition) not in in_hand]
    found = await asyncio.gather(*(_position(app, tp) for tp in waiting))
    positions = dict(zip(waiting, found, strict=True))
    behind = False
    for tp in assigned:
        progress.labels(tp.topic, str(tp.partition)).set(applied[tp])
        if tp not in lags:
            continue
        position = positions.get(tp)
        if position is not None and position >= ends[tp]:
            # fetched to the end, and no record of it in hand: the rest are transaction
            # markers, or records a rebalance dropped after they were fetched
            if tp in never or not check_tail(runtime, tp, applied[tp], ends[tp]):
                lags[tp] = 0
        elif position is not None:
            behind = True
        gauge.labels(tp.topic, str(tp.partition)).set(lags[tp])
    runtime.fetch_behind = behind


def check_tail(runtime: Runtime, tp: Any, applied: int, end: int) -> bool:
    """Whether records after `applied` in a partition fetched to its `end` are being read
    again and applied (the lag shows them meanwhile). They are usually transaction markers
    (lag 0), but may be records a rebalance dropped after the consumer fetched them (or whose
    effect a Redis failover lost), which no later record of the partition would bring back
    (roi_metrics.worker.gaps). Seen so at two looks in a row with nothing on its way to a
    batch, the range is read and applied by a task of its own: the lag report never waits
    for Kafka, and a range found empty is not read again until something moves."""
    processor = runtime.processor
    assert processor is not None
    recovering = runtime.recovering
    if recovering is not None and not recovering[1].done():
        return bool(recovering[0] == tp)
    if runtime.tails.get(tp) == (applied, end) or processor.ranges is None:
        return False
    if runtime.batcher.filling or runtime.watch.holding:
        # records on their way from Faust's buffers to a batch look the same; with the
        # batcher empty and no batch being applied, Faust hands them over at once
        runtime.suspects.pop(tp, None)
        return False
    if runtime.suspects.get(tp) != (applied, end):
        runtime.suspects[tp] = (applied, end)  # the same at the next look: read it
        return False
    task = asyncio.ensure_future(_recover_tail(runtime, tp, applied, end))
    runtime.recovering = (tp, task)
    return False


async def _recover_tail(runtime: Runtime, tp: Any, applied: int, end: int) -> None:
    """Read a partition's records after `applied` up to `end` and apply them (in chunks);
    remember a range that holds none. Never raises: the next look tries again."""
    processor = runtime.processor
    assert processor is not None and processor.ranges is not None
    try:
        found = await processor.recover_range(tp.topic, tp.partition, applied + 1, end, applied)
        if not found:
            runtime.tails[tp] = (applied, end)
            return
        log.warning(
            "%s partition %d: %d records after offset %d were fetched but not applied "
            "(dropped in a rebalance, or lost by Redis in a failover); read again from "
            "Kafka and applied",
            tp.topic,
            tp.partition,
            found,
            applied,
        )
    except Exception as error:
        log.warning(
            "could not read %s:%d after offset %d: %s", tp.topic, tp.partition, applied, error
        )


async def _position(app: faust.App, tp: Any) -> int | None:
    """The consumer's fetch position in `tp`; None if unknown or no longer assigned."""
    try:
        position: int | None = await asyncio.wait_for(app.consumer.position(tp), 2.0)
    except Exception:  # revoked, not known yet (it waits for an offset reset), or slow
        return None
    return position


async def _applied_offsets(
    app: faust.App, runtime: Runtime, assigned: list[Any]
) -> tuple[dict[Any, int], set[Any]]:
    """The last applied offset of each partition (first offset - 1 when none ever was), as
    the watermarks in Redis say: they may have gone back (a failover to a replica that
    lacked the last writes), and then the lag shows it and check_tail reads the records
    again; and the partitions with no watermark at all."""
    processor = runtime.processor
    assert processor is not None
    marks = await processor.store.watermarks(
        [(processor.channel_of(tp.topic), tp.topic, tp.partition) for tp in assigned]
    )
    never = {tp for tp in assigned if marks[(tp.topic, tp.partition)] is None}
    firsts = await app.consumer.earliest_offsets(*never) if never else {}
    applied: dict[Any, int] = {}
    for tp in assigned:
        mark = marks[(tp.topic, tp.partition)]
        applied[tp] = mark if mark is not None else firsts.get(tp, 0) - 1
    return applied, never


async def _check_eviction(runtime: Runtime) -> None:
    """Exit when Redis was switched to a policy that evicts (checked with the lag)."""
    processor = runtime.processor
    assert processor is not None
    problem = eviction_problem(await memory_info_async(processor.store.client))
    if problem is not None:
        log.critical("stopping: %s", problem)
        _exit(EXIT_BAD_STATE_STORE)


async def flush_unreadable(app: faust.App, runtime: Runtime) -> None:
    """Dead-letter the records the consumer skipped because it could not read them.
    Never raises: what could not be sent is tried again next time."""
    processor = runtime.processor
    waiting = getattr(app.consumer, "unreadable", None)
    if processor is None or not waiting:
        return
    records = [waiting.popleft() for _ in range(len(waiting))]
    try:
        await processor.dead_letter_unreadable(records)
    except Exception as error:
        log.warning("could not dead-letter %d unreadable records yet: %s", len(records), error)
        waiting.extendleft(reversed(records))


async def check_health(runtime: Runtime) -> None:
    """The watchdog: once the worker stalls, /readyz fails and the process exits. Any
    error of its own is logged and stops the worker too (a watchdog that cannot watch)."""
    try:
        _check_health(runtime)
    except Exception:
        log.exception("the watchdog failed; stopping")
        _exit(EXIT_STALLED)


def _check_health(runtime: Runtime) -> None:
    processor = runtime.processor
    if processor is None or runtime.watch.stalled is not None:
        return
    stalled = runtime.watch.check(
        time.monotonic(),
        running=runtime.running,
        store_up=processor.ready,
        fetch_behind=runtime.fetch_behind,
    )
    if stalled is None:
        return
    log.critical(
        "stalled: %s; exiting with status %d so that a supervisor restarts the worker",
        stalled,
        EXIT_STALLED,
    )
    for name, task in (("applier", runtime.applier), ("joiner", runtime.joiner)):
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                log.critical("the %s failed", name, exc_info=error)
    asyncio.get_running_loop().call_later(EXIT_GRACE_SECONDS, _exit, EXIT_STALLED)


def _exit(status: int) -> None:
    """Leave now: no commit (what was not applied is read again), logs flushed."""
    logging.shutdown()
    os._exit(status)

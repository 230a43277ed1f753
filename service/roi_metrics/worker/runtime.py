"""What the agent, the timers and the web pages of a worker share."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final

from roi_metrics.settings import Settings
from roi_metrics.worker.batching import Batcher
from roi_metrics.worker.customers import CustomerAgent
from roi_metrics.worker.liveness import Watch
from roi_metrics.worker.metrics import WorkerMetrics
from roi_metrics.worker.processor import BatchProcessor

FACT_QUEUE_SIZE: Final = 10_000
"""Customer facts handed to the joiner at most; beyond, they are read again from Kafka."""


@dataclass
class Runtime:
    """What the agent, timers and pages share; filled in when the worker starts."""

    settings: Settings
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    processor: BatchProcessor | None = None
    customer_agent: CustomerAgent | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    subscribed: list[str] = field(default_factory=list)
    ignored: set[str] = field(default_factory=set)
    """Topics under the prefix that are not channel topics, told once each."""
    discovered_once: bool = False
    watch: Watch = field(init=False)
    batcher: Batcher[Any] = field(init=False)
    agent_running: bool = False
    applier: asyncio.Task[None] | None = None
    fact_queue: asyncio.Queue[tuple[int, int, bytes | None]] = field(
        default_factory=lambda: asyncio.Queue(FACT_QUEUE_SIZE)
    )
    """Customer facts handed over by the agent, waiting for the joiner."""
    joiner: asyncio.Task[None] | None = None
    """Joins the customer facts (roi_metrics.worker.app.join_loop)."""
    fetch_behind: bool = False
    lag_labels: set[tuple[str, int]] = field(default_factory=set)
    tails: dict[Any, tuple[int, int]] = field(default_factory=dict)
    """Partition -> (applied, end) whose records after `applied` were looked for in Kafka
    and were not there (transaction markers): not looked for again until either moves."""
    suspects: dict[Any, tuple[int, int]] = field(default_factory=dict)
    """Partition -> (applied, end) last seen fetched to its end with nothing in hand."""
    recovering: tuple[Any, asyncio.Task[None]] | None = None
    """Applying the records a rebalance dropped at a partition's end (monitor.check_tail)."""

    def __post_init__(self) -> None:
        self.watch = Watch(self.settings.stall_seconds, time.monotonic())
        self.batcher = Batcher(
            self.settings.batch_max_records,
            self.settings.batch_max_bytes,
            self.settings.batch_wait_seconds,
        )

    @property
    def running(self) -> bool:
        """The agent iterates its stream, its applier lives, and so does the joiner of the
        customer facts (once started)."""
        joining = self.joiner is None or not self.joiner.done()
        return (
            self.agent_running and self.applier is not None and not self.applier.done() and joining
        )

    @property
    def ready(self) -> bool:
        return bool(
            self.processor
            and self.processor.ready
            and self.discovered_once
            and self.running
            and self.watch.stalled is None
        )

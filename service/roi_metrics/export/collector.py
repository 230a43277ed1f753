"""The exporter: business figures of CONTRACT.md §7-§8 as Prometheus gauges.

Stateless: every scrape reads Redis in one round trip (roi_metrics.state.reader, which keeps
only a checked cache of closed-bucket sums) and computes every window and figure with the
domain code, so any number of replicas give the same output at the same clock. A ratio
without a sample is absent, never 0. When Redis is unreachable, /metrics still answers,
with support_state_store_up 0 and no business figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from roi_metrics.domain.costcard import CostCard
from roi_metrics.domain.events import Counter
from roi_metrics.domain.figures import DEFINITIONS_VERSION, ChannelFigures, ProgramFigures, Quotient
from roi_metrics.domain.report import Snapshot, build_report
from roi_metrics.domain.timebuckets import Window
from roi_metrics.state.connect import ERRORS
from roi_metrics.state.memory import memory_bytes

log = logging.getLogger(__name__)
COUNT_GAUGES: Final = [
    ("support_conversations", "Conversations started.", Counter.CONVERSATIONS),
    ("support_ai_conversations", "Conversations started by the AI.", Counter.AI_CONVERSATIONS),
    ("support_escalations", "Handoffs from the AI to a person.", Counter.ESCALATIONS),
    ("support_ai_reopens", "AI resolutions reopened within 7 days.", Counter.AI_REOPENS),
    ("support_human_resolutions", "Resolutions by a person.", Counter.HUMAN_RESOLUTIONS),
]
MONEY_GAUGES: Final = [
    ("support_ai_cost", "AI costs (every category but human handling).", "ai_cost"),
    ("support_human_cost", "Human handling costs.", "human_cost"),
    ("support_cost_avoided", "Net AI resolutions x human cost per resolution.", "cost_avoided"),
    ("support_ai_revenue", "Revenue attributed to AI resolutions (72 h).", "ai_revenue"),
]
RATIO_GAUGES: Final = [
    ("support_channel_roi_ratio", "Contribution ROI: (value - AI cost) / AI cost.", "roi"),
    ("support_cost_per_resolution", "AI cost per net AI resolution.", "cost_per_resolution"),
    ("support_resolution_ratio", "AI resolutions / AI conversations.", "resolution_rate"),
    ("support_escalation_ratio", "Escalations / AI conversations.", "escalation_rate"),
    ("support_automation_ratio", "Net AI resolutions / conversations.", "automation_rate"),
]
FIGURE_GAUGES: Final = [
    *((name, f"{text} In currency units.", attribute) for name, text, attribute in MONEY_GAUGES),
    *(
        (name, f"{text} Absent when there is no sample.", attribute)
        for name, text, attribute in RATIO_GAUGES
    ),
]
"""Each figure of a channel, in this order: money in currency units, then the ratios."""
PROGRAM_GAUGES: Final = [
    ("support_program_cost", "AI costs plus fixed costs, in currency units.", "cost"),
    ("support_program_value", "Costs avoided plus AI revenue, in currency units.", "value"),
    ("support_fixed_cost", "Prorated fixed and amortised one-off costs.", "fixed_cost"),
    ("support_program_net_value", "Programme value minus programme cost.", "net_value"),
    (
        "support_program_automation_ratio",
        "Net AI resolutions / conversations, all channels. Absent without conversations.",
        "automation_rate",
    ),
    ("support_program_roi_ratio", "Fully loaded ROI. Absent without cost.", "roi"),
    (
        "support_program_cost_per_resolution",
        "Programme cost per net AI resolution. Absent without resolutions.",
        "cost_per_resolution",
    ),
]
CONFIRMATIONS: Final = [
    ("assumed", Counter.AI_RESOLUTIONS_ASSUMED),
    ("confirmed", Counter.AI_RESOLUTIONS_CONFIRMED),
]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class RoiCollector(Collector):
    """Collects the business figures at scrape time from `snapshot(now_seconds)`."""

    def __init__(
        self,
        card: CostCard,
        snapshot: Callable[[int], Snapshot],
        clock: Callable[[], float] = time.time,
        memory: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.card, self.snapshot, self.clock = card, snapshot, clock
        self.memory = memory
        """Redis's `INFO memory`, read at each scrape for the memory gauges."""
        self.store_up = True

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "support_info",
            "Currency and definitions version.",
            labels=["currency", "definitions_version"],
        )
        info.add_metric([self.card.currency, DEFINITIONS_VERSION], 1)
        yield info
        target = GaugeMetricFamily(
            "support_target_roi_ratio",
            "The cost card's target_roi: the programme ROI (24h) alert threshold.",
        )
        target.add_metric([], self.card.target_roi)
        yield target
        try:
            snapshot = self.snapshot(int(self.clock()))
        except ERRORS as error:
            log.warning("state store unreachable: %s", error)
            self.store_up = False
        else:
            self.store_up = True
            yield from self._figures(snapshot)
            yield from self._memory()
        up = GaugeMetricFamily("support_state_store_up", "1 when Redis answered this scrape.")
        up.add_metric([], 1 if self.store_up else 0)
        yield up

    def _memory(self) -> Iterator[Metric]:
        if self.memory is None:
            return
        try:
            used, limit = memory_bytes(self.memory())
        except ERRORS as error:
            log.warning("could not read Redis memory: %s", error)
            return
        for name, documentation, value in (
            ("support_state_store_memory_used_bytes", "Memory Redis uses.", used),
            (
                "support_state_store_memory_max_bytes",
                "Redis maxmemory: writes fail beyond it (noeviction); 0 when unlimited.",
                limit,
            ),
        ):
            gauge = GaugeMetricFamily(name, documentation)
            gauge.add_metric([], value)
            yield gauge

    def _figures(self, snapshot: Snapshot) -> Iterator[Metric]:
        families = _Families()
        report = build_report(snapshot, self.card)
        for window in Window:
            for channel, by_window in report.channels.items():
                _channel(families, {"channel": channel, "window": window.value}, by_window[window])
            _program(families, {"window": window.value}, report.program[window])
        yield from families.by_name.values()


class _Families:
    """A scrape's gauge families, each made at its first figure, in that order; a figure
    without a sample (None) still makes its family. Samples of one label set share one
    labels dict (the text exposition formats it once)."""

    def __init__(self) -> None:
        self.by_name: dict[str, GaugeMetricFamily] = {}

    def add(
        self, name: str, documentation: str, labels: dict[str, str], value: float | None
    ) -> None:
        family = self.by_name.get(name)
        if family is None:
            family = self.by_name[name] = _gauge(name, documentation, list(labels))
        if value is not None:
            family.samples.append(Sample(name, labels, value))


def _channel(families: _Families, labels: dict[str, str], figures: ChannelFigures) -> None:
    counts = figures.counts
    for name, documentation, counter in COUNT_GAUGES:
        families.add(name, documentation, labels, counts[counter])
    for confirmation, counter in CONFIRMATIONS:
        families.add(
            "support_ai_resolutions",
            "AI resolutions by confirmation.",
            {**labels, "confirmation": confirmation},
            counts[counter],
        )
    for name, documentation, attribute in FIGURE_GAUGES:
        value: Quotient | None = getattr(figures, attribute)
        families.add(name, documentation, labels, None if value is None else float(value))
    csat = "support_csat_mean", "Mean CSAT score by who resolved."
    families.add(*csat, {**labels, "resolved_by": ""}, None)  # the family, even without scores
    for resolved_by, mean in sorted(figures.csat_mean.items()):
        families.add(*csat, {**labels, "resolved_by": resolved_by}, float(mean))


def _program(families: _Families, labels: dict[str, str], program: ProgramFigures) -> None:
    for name, documentation, attribute in PROGRAM_GAUGES:
        value: Quotient | None = getattr(program, attribute)
        families.add(name, documentation, labels, None if value is None else float(value))

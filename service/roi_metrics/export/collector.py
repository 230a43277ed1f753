"""The exporter: business figures of CONTRACT.md §7-§8 as Prometheus gauges.

Stateless: every scrape reads Redis in one round trip (roi_metrics.state.reader, which keeps
only a checked cache of closed-bucket sums) and computes every window and figure with the
domain code, so any number of replicas give the same output at the same clock. A ratio
without a sample is absent, never 0. When Redis is unreachable, /metrics still answers,
with support_state_store_up 0 and no business figures.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, SupportsFloat

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from roi_metrics.domain.costcard import CostCard
from roi_metrics.domain.events import CSAT_COUNTERS, Counter
from roi_metrics.domain.figures import (
    DEFINITIONS_VERSION,
    ChannelFigures,
    Counts,
    Interval,
    ProgramFigures,
    ProgramVendor,
    Quotient,
    VendorFigures,
    channel_figures,
)
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
    (
        "support_ai_recontacts",
        "AI resolutions revoked because the customer started another conversation within the "
        "re-contact window (CONTRACT.md §9).",
        Counter.AI_RECONTACTS,
    ),
    ("support_human_resolutions", "Resolutions by a person.", Counter.HUMAN_RESOLUTIONS),
]
MONEY_GAUGES: Final = [
    ("support_ai_cost", "AI costs (every category but human handling).", "ai_cost"),
    ("support_human_cost", "Human handling costs.", "human_cost"),
    ("support_cost_avoided", "Net AI resolutions x human cost per resolution.", "cost_avoided"),
    ("support_ai_revenue", "Revenue attributed to AI resolutions (72 h).", "ai_revenue"),
    ("support_other_revenue", "Revenue not attributed to the AI.", "other_revenue"),
]
RATIO_GAUGES: Final = [
    ("support_channel_roi_ratio", "Contribution ROI: (value - AI cost) / AI cost.", "roi"),
    ("support_cost_per_resolution", "AI cost per net AI resolution.", "cost_per_resolution"),
    ("support_resolution_ratio", "AI resolutions / AI conversations.", "resolution_rate"),
    ("support_escalation_ratio", "Escalations / AI conversations.", "escalation_rate"),
    ("support_automation_ratio", "Net AI resolutions / conversations.", "automation_rate"),
    (
        "support_revenue_per_conversation",
        "(AI + other revenue) / conversations, in currency units.",
        "revenue_per_conversation",
    ),
    (
        "support_ai_revenue_per_conversation",
        "AI revenue / AI conversations, in currency units.",
        "ai_revenue_per_conversation",
    ),
]
INTERVAL_GAUGES: Final = [
    (f"support_{name}_ratio", name, f"{name}_interval")
    for name in ("resolution", "escalation", "automation")
]
"""Each ratio's 95 % Wilson bounds (CONTRACT.md §12): support_<name>_ratio_lower and _upper."""
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
        "support_program_revenue_per_conversation",
        "(AI + other revenue) / conversations, all channels, in currency units. "
        "Absent without conversations.",
        "revenue_per_conversation",
    ),
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


def _escape(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _go_float(value: float) -> str:
    """prometheus-client's floatToGoString, byte for byte; values below a million (almost
    every figure) are Python's repr, the rest go through it."""
    return repr(value) if -math.inf < value < 1e6 else floatToGoString(value)  # type: ignore[no-untyped-call]


class _Labels:
    """One label set and its text in the exposition (names sorted, values escaped), made
    once and shared by every sample that carries it."""

    __slots__ = ("labels", "text")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        pairs = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
        self.text = f"{{{pairs}}}" if pairs else ""


NO_LABELS: Final = _Labels({})


@dataclass(frozen=True, slots=True)
class _ChannelLabels:
    """The label sets of one channel in one window."""

    plain: _Labels
    confirmation: dict[str, _Labels]
    resolved_by: dict[str, _Labels]

    @classmethod
    def of(cls, channel: str, window: str) -> _ChannelLabels:
        plain = {"channel": channel, "window": window}
        return cls(
            _Labels(plain),
            {kind: _Labels({**plain, "confirmation": kind}) for kind, _ in CONFIRMATIONS},
            {who: _Labels({**plain, "resolved_by": who}) for who in ("", *sorted(CSAT_COUNTERS))},
        )


Point = tuple["_Labels", float, str]
"""A sample: its labels, its value and its line in the text format."""
Row = tuple[str, str, Point | None]
"""A family's name and help, and a sample of it (None: the family only)."""


@dataclass(slots=True)
class _Family:
    name: str
    documentation: str
    samples: list[Point]

    def metric(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(self.name, self.documentation)
        family.samples = [
            Sample(self.name, labels.labels, value) for labels, value, _ in self.samples
        ]
        return family

    def text(self, out: list[str]) -> None:
        """Appends this family in the text format 0.0.4, as generate_latest writes it."""
        name = self.name
        documentation = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {documentation}\n# TYPE {name} gauge\n")
        out.extend(line for _, _, line in self.samples)


class _Families:
    """A scrape's gauge families, each made at its first figure, in that order; a figure
    without a sample (None) still makes its family. While `recording` is a list, every
    figure added is also appended to it, to be replayed at the next scrape."""

    def __init__(self) -> None:
        self.by_name: dict[str, _Family] = {}
        self.recording: list[Row] | None = None

    def add(
        self, name: str, documentation: str, labels: _Labels, value: SupportsFloat | None
    ) -> None:
        sample = None
        if value is not None:
            number = float(value)
            sample = (labels, number, f"{name}{labels.text} {_go_float(number)}\n")
        self._add(name, documentation, sample)
        if self.recording is not None:
            self.recording.append((name, documentation, sample))

    def replay(self, rows: list[Row]) -> None:
        for name, documentation, sample in rows:
            self._add(name, documentation, sample)

    def _add(self, name: str, documentation: str, sample: Point | None) -> None:
        family = self.by_name.get(name)
        if family is None:
            family = self.by_name[name] = _Family(name, documentation, [])
        if sample is not None:
            family.samples.append(sample)


class _FigureMemo:
    """channel_figures, remembered from one scrape to the next by the identity of the
    counts: the reader hands back the very same dicts for a channel none of whose buckets
    was written since (roi_metrics/state/reader.py), so an idle channel's figures are not
    computed again. Each entry keeps its counts, so the identity cannot be reused; scrapes
    running at once at worst compute a figure again."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[Counts, int, ChannelFigures]] = {}
        self._next: dict[int, tuple[Counts, int, ChannelFigures]] = {}

    def __call__(self, counts: Counts, human_cost_per_resolution_micros: int) -> ChannelFigures:
        known = self._last.get(id(counts))
        if (
            known is not None
            and known[0] is counts
            and known[1] == human_cost_per_resolution_micros
        ):
            figures = known[2]
        else:
            figures = channel_figures(counts, human_cost_per_resolution_micros)
        self._next[id(counts)] = (counts, human_cost_per_resolution_micros, figures)
        return figures

    def turn(self) -> None:
        """After a scrape: what it used is what the next one may reuse."""
        self._last, self._next = self._next, {}


class RoiCollector(Collector):
    """Collects the business figures at scrape time from `snapshot(now_seconds)`: as
    metric families (`collect`, the prometheus-client interface) or straight as the text
    format (`exposition`, what /metrics serves: the same families, each label set's text
    written once per channel and window instead of once per sample)."""

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
        self._memo = _FigureMemo()
        self._rows: dict[tuple[str, str], tuple[ChannelFigures, _ChannelLabels, list[Row]]] = {}
        """What the last scrape added for each (channel, window): from which figures, with
        which label sets."""

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Metric]:
        for family in self._scrape().by_name.values():
            yield family.metric()

    def exposition(self) -> bytes:
        """The text format 0.0.4 of `collect()`, byte for byte what prometheus-client's
        generate_latest writes for it (tests/unit/test_exporter.py)."""
        out: list[str] = []
        for family in self._scrape().by_name.values():
            family.text(out)
        return "".join(out).encode()

    def _scrape(self) -> _Families:
        families = _Families()
        families.add(
            "support_info",
            "Currency and definitions version.",
            _Labels({"currency": self.card.currency, "definitions_version": DEFINITIONS_VERSION}),
            1,
        )
        families.add(
            "support_target_roi_ratio",
            "The cost card's target_roi: the programme ROI (24h) alert threshold.",
            NO_LABELS,
            self.card.target_roi,
        )
        try:
            snapshot = self.snapshot(int(self.clock()))
        except ERRORS as error:
            log.warning("state store unreachable: %s", error)
            self.store_up = False
        else:
            self.store_up = True
            self._figures(families, snapshot)
            self._memory(families)
        families.add(
            "support_state_store_up",
            "1 when Redis answered this scrape.",
            NO_LABELS,
            1 if self.store_up else 0,
        )
        return families

    def _memory(self, families: _Families) -> None:
        if self.memory is None:
            return
        try:
            used, limit = memory_bytes(self.memory())
        except ERRORS as error:
            log.warning("could not read Redis memory: %s", error)
            return
        families.add("support_state_store_memory_used_bytes", "Memory Redis uses.", NO_LABELS, used)
        families.add(
            "support_state_store_memory_max_bytes",
            "Redis maxmemory: writes fail beyond it (noeviction); 0 when unlimited.",
            NO_LABELS,
            limit,
        )

    def _figures(self, families: _Families, snapshot: Snapshot) -> None:
        report = build_report(snapshot, self.card, self._memo)
        self._memo.turn()
        known, self._rows = self._rows, {}
        for window in Window:
            for channel, by_window in report.channels.items():
                key, figures = (channel, window.value), by_window[window]
                last = known.get(key)
                if last is not None and last[0] is figures:  # the memo's: the same figures
                    families.replay(last[2])
                    self._rows[key] = last
                    continue
                labels = last[1] if last is not None else _ChannelLabels.of(*key)
                families.recording = []
                _channel(families, labels, figures)
                if report.vendor:  # derived from the same counts: replayed with them
                    _vendor(families, labels.plain, report.vendor[channel][window])
                self._rows[key] = (figures, labels, families.recording)
                families.recording = None
            program = _Labels({"window": window.value})
            _program(families, program, report.program[window])
            if report.program_vendor:
                _program_vendor(families, program, report.program_vendor[window])
        for channel, point in report.ramp.items():
            by_channel = _Labels({"channel": channel})
            families.add(
                "support_expected_resolution_ratio",
                "The AI resolution ratio the channel's ramp expects now (the cost card's [ramp]).",
                by_channel,
                point.expected,
            )
            families.add(
                "support_ramp_progress_ratio",
                "How far the channel is from its start to its target resolution ratio, by "
                "time since its go-live: 1 - exp(-3 d / days_to_95).",
                by_channel,
                point.progress,
            )
        if self.card.ramp is not None:
            families.add(
                "support_ramp_tolerance_ratio",
                "The cost card's [ramp] tolerance: a ramping channel's alert fires when even "
                "the upper bound is below expected x (1 - tolerance).",
                NO_LABELS,
                self.card.ramp.tolerance,
            )
        families.add(
            "support_payback_remaining_seconds",
            "Seconds until the programme's net value since go-live reaches 0 at the last 30 "
            "days' pace; 0 once paid back; absent while that pace is not positive.",
            NO_LABELS,
            report.payback_remaining_seconds,
        )


def _channel(families: _Families, labels: _ChannelLabels, figures: ChannelFigures) -> None:
    counts = figures.counts
    for name, documentation, counter in COUNT_GAUGES:
        families.add(name, documentation, labels.plain, counts[counter])
    for confirmation, counter in CONFIRMATIONS:
        families.add(
            "support_ai_resolutions",
            "AI resolutions by confirmation.",
            labels.confirmation[confirmation],
            counts[counter],
        )
    for name, documentation, attribute in FIGURE_GAUGES:
        value: Quotient | None = getattr(figures, attribute)
        families.add(name, documentation, labels.plain, value)
    for name, ratio, attribute in INTERVAL_GAUGES:
        interval: Interval | None = getattr(figures, attribute)
        for bound in ("lower", "upper"):
            families.add(
                f"{name}_{bound}",
                f"The {bound} bound of the 95 % Wilson interval of the {ratio} ratio. "
                "Absent when the ratio is.",
                labels.plain,
                None if interval is None else getattr(interval, bound),
            )
    csat = "support_csat_mean", "Mean CSAT score by who resolved."
    families.add(*csat, labels.resolved_by[""], None)  # the family, even without scores
    for resolved_by, mean in sorted(figures.csat_mean.items()):
        families.add(*csat, labels.resolved_by[resolved_by], mean)


def _vendor(families: _Families, labels: _Labels, vendor: VendorFigures) -> None:
    families.add(
        "support_vendor_billed_resolutions",
        "AI resolutions the vendor bills (the card's [vendor] bills: assumed and confirmed, "
        "or confirmed only).",
        labels,
        vendor.billed_resolutions,
    )
    families.add(
        "support_vendor_bill",
        "Billed resolutions x the vendor's price per resolution.",
        labels,
        vendor.bill,
    )
    families.add(
        "support_vendor_unearned_resolutions",
        "Billed AI resolutions revoked (reopened within 7 days), counted when revoked.",
        labels,
        vendor.unearned_resolutions,
    )
    families.add(
        "support_vendor_unearned_cost",
        "Unearned resolutions x the vendor's price per resolution.",
        labels,
        vendor.unearned_cost,
    )


def _program_vendor(families: _Families, labels: _Labels, vendor: ProgramVendor) -> None:
    families.add(
        "support_program_vendor_bill",
        "The vendor's bill over every channel.",
        labels,
        vendor.bill,
    )
    families.add(
        "support_program_vendor_unearned_cost",
        "The vendor's unearned cost over every channel.",
        labels,
        vendor.unearned_cost,
    )


def _program(families: _Families, labels: _Labels, program: ProgramFigures) -> None:
    for name, documentation, attribute in PROGRAM_GAUGES:
        value: Quotient | None = getattr(program, attribute)
        families.add(name, documentation, labels, value)

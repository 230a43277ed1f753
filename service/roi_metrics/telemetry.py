"""What every long-running process of roi-metrics tells about itself, beside its own
figures: the process (CPU, memory, open files, start time), the Python runtime (version,
garbage collections) and `roi_metrics_build_info{version}`."""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
)

from roi_metrics import __version__


def runtime_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """`registry` (a new one when None) with the process, platform and GC collectors and
    the build info."""
    registry = registry or CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    build = Gauge(
        "roi_metrics_build_info",
        "The running roi-metrics: its version in the label; always 1.",
        ["version"],
        registry=registry,
    )
    build.labels(__version__).set(1)
    return registry

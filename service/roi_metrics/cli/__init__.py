"""The `roi-metrics` command: one thin module per command group."""

from roi_metrics.cli.main import main

__all__ = ["main"]

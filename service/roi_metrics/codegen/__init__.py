"""Development-time generators: JSON Schemas and AsyncAPI (`schemas`), Prometheus rules
(`rules`), Grafana dashboards (`dashboards`). They write files of the source checkout; the
running service never imports them."""

from pathlib import Path
from typing import Final

PROJECT_ROOT: Final = Path(__file__).resolve().parents[3]
"""The checkout: codegen → roi_metrics → service → the root."""

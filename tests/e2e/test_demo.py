"""`make demo`'s script end to end, on a stack of its own (other ports, other state folder,
so the suite's stack is untouched): everything starts, live figures show, and at the end
everything it started is stopped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_starts_everything_shows_figures_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = {
        name: str(free_port())
        for name in (
            "ROI_KAFKA_PORT",
            "ROI_KAFKA_CONTROLLER_PORT",
            "ROI_REDIS_PORT",
            "ROI_PROMETHEUS_PORT",
            "ROI_EXPORTER_PORT",
            "ROI_WORKER_PORT",
        )
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ROI_", "KAFKA_", "REDIS_"))},
        **ports,
        "ROI_STATE_DIR": str(state),
        "DEMO_SECONDS": "25",
        "RATE": "50",
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [str(ROOT / "deploy/local/demo.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    err, out = result.stderr, result.stdout
    (tmp_path / "out.txt").write_text(out)
    for started in ("kafka: Apache Kafka", "redis: ready", "prometheus: ready", "worker: ready"):
        assert started in err, started
    assert "simulator: running" in err and "The demo runs (normal)" in err
    assert f"http://127.0.0.1:{ports['ROI_PROMETHEUS_PORT']}/classic/alerts" in err
    # live figures: frames of `top` with the simulator's channels in them
    assert out.count("roi-metrics top ·") >= 3
    assert "AI support ROI" in out
    for channel in ("whatsapp", "slack", "discord", "web", "email"):
        assert channel in out
    # and everything stopped afterwards
    assert "demo: stopping everything" in err
    for stopped in ("simulator: stopped", "exporter: stopped", "worker: stopped", "kafka: stopped"):
        assert stopped in err, stopped
    assert not list(state.glob("*/*.pid"))

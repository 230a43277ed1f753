"""`make demo`'s script end to end, on a stack of its own (other ports, other state folder,
so the suite's stack is untouched): everything starts, live figures show, and at the end
everything it started is stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.harness import stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_starts_everything_shows_figures_and_stops_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = stack_env(state, DEMO_SECONDS="12", RATE="50", COLUMNS="200")
    ports = {name: value for name, value in env.items() if name.startswith("ROI_")}
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

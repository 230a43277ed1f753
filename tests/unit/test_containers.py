"""Where no Docker engine can run, the container tests skip and say why."""

from __future__ import annotations

import pytest

from tests import containers


def test_not_root_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers.os, "geteuid", lambda: 1000)
    assert containers.unavailable() == (
        "the Docker engine needs root here (dockerd as root; run the suite as root)"
    )


def test_a_missing_program_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        containers.shutil, "which", lambda name, **_: None if name == "dockerd" else "/bin/x"
    )
    reason = containers.unavailable()
    assert reason is not None and reason.startswith("dockerd is not installed (Debian's docker.io")


def test_a_preparation_that_cannot_run_skips_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(containers, "unavailable", lambda: "no engine here")
    preparation = containers.start_preparing(containers.ROOT / "nonexistent" / "build.log")
    assert (preparation.skip, preparation.process, preparation.started_engine) == (
        "no engine here",
        None,
        False,
    )

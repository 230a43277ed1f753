"""The import rules of docs/architecture.md ("Packages"), read from the source: which package
of roi_metrics may import which, and which outside libraries each may use. A new arrow that
runs back up the flow, or an I/O library in the domain, fails here with file and line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "roi_metrics"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

# package -> (packages of roi_metrics it may import, outside libraries it may import)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "domain": ({"domain"}, {"pydantic", "pydantic_core", "pydantic_extra_types"}),
    "ingest": ({"ingest", "domain", "settings"}, {"pydantic", "pydantic_core", "aiokafka"}),
    "state": ({"state", "domain"}, {"redis"}),
    "worker": (
        {"worker", "ingest", "state", "domain", "settings", "telemetry"},
        {"faust", "mode", "aiokafka", "redis", "prometheus_client"},
    ),
    "export": ({"export", "state", "domain", "telemetry"}, {"prometheus_client", "redis"}),
    "traffic": ({"traffic", "ingest", "domain", "settings"}, {"aiokafka"}),
    "cli": (
        {"cli", "worker", "export", "traffic", "ingest", "state", "domain", "settings", "cardfile"},
        {"typer", "rich", "redis", "faust", "pydantic"},
    ),
    "codegen": (
        {"codegen", "ingest", "domain"},
        {"yaml", "grafana_foundation_sdk", "pydantic"},
    ),
    "settings": ({"settings", "domain"}, {"pydantic", "pydantic_settings"}),
    "cardfile": ({"cardfile", "domain"}, {"pydantic", "pydantic_core"}),
    "telemetry": (set(), {"prometheus_client"}),
    "__init__": (set(), set()),
}


def _package(path: Path) -> str:
    """`domain` for roi_metrics/domain/x.py, `settings` for roi_metrics/settings.py."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names]
    return found


def _problems(path: Path) -> list[str]:
    package = _package(path)
    own, outside = RULES[package]
    problems = []
    for line, name in _imports(path):
        root, _, rest = name.partition(".")
        if root == "roi_metrics":
            target = rest.split(".")[0]
            if target in RULES and target not in own and target != "__init__":
                problems.append(f"{path.relative_to(PACKAGE)}:{line}: {package} imports {name}")
        elif root not in STDLIB and root not in outside:
            problems.append(f"{path.relative_to(PACKAGE)}:{line}: {package} imports {root}")
    return problems


def test_every_module_keeps_to_its_package_rules() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40  # the walk found the package
    unknown = {_package(path) for path in modules} - set(RULES)
    assert not unknown, f"packages without rules: {unknown}"
    problems = [problem for path in modules for problem in _problems(path)]
    assert problems == []


def test_the_rules_catch_an_arrow_back_up(tmp_path: Path) -> None:
    module = PACKAGE / "domain" / "figures.py"
    source = module.read_text() + "\nfrom roi_metrics.state import keys\nimport redis\n"
    scratch = tmp_path / "figures.py"
    scratch.write_text(source)
    lines = len(source.splitlines())
    found = [(line, name) for line, name in _imports(scratch) if line >= lines - 1]
    assert found == [(lines - 1, "roi_metrics.state.keys"), (lines, "redis")]
    own, outside = RULES["domain"]
    assert "state" not in own and "redis" not in outside


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("roi_metrics.domain.report", ("redis", "aiokafka", "faust", "prometheus_client", "rich")),
        ("roi_metrics.ingest.replay", ("redis", "faust", "prometheus_client")),
        ("roi_metrics.export.http", ("rich", "faust", "typer", "aiokafka")),
        ("roi_metrics.cli", ("faust", "grafana_foundation_sdk", "yaml")),
    ],
)
def test_what_a_module_loads_at_import(module: str, absent: tuple[str, ...]) -> None:
    """Transitively: the offline replay loads no Redis client, the exporter no Rich, the
    command line neither Faust (only `worker` imports it, when it runs) nor the generators."""
    probe = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert [name for name in absent if f"'{name}'" in loaded] == []

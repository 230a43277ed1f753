"""Tests and benchmarks share helpers through fixtures and helper modules, never by importing
a test module (test_*.py) or a conftest: pytest imports those itself, and may import a conftest
a second time under another name, so what is taken from one is not what its fixtures use (and
a test function imported into another module is collected twice). Every .py file under tests/
and bench/ is read with `ast`; no file is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench")


def forbidden(module: str) -> bool:
    last = module.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def imported(node: ast.AST) -> list[str]:
    """The modules (and names) an import statement, or an `importlib.import_module` or
    `__import__` call with a literal name, brings in; relative ones keep their dots."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = "." * node.level + (node.module or "")
        # `from package import name`: the name may be a module of the package
        names = [base.rstrip(".") + "." + alias.name for alias in node.names]
        return [base, *names] if node.module else names
    if (
        isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("import_module", "__import__"):
            return [node.args[0].value]
    return []


def offending_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module) of every import in `source` of a test module or of a conftest."""
    return sorted(
        (node.lineno, module)
        for node in ast.walk(ast.parse(source, filename))
        for module in imported(node)
        if forbidden(module)
    )


def scanned_files() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (ROOT / folder).rglob("*.py"))


def test_no_file_imports_a_test_module_or_a_conftest() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in scanned_files()
        for line, module in offending_imports(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not offences, (
        "share helpers through a fixture or a helper module (tests/stack.py, "
        "tests/unit/helpers.py, tests/integration/*.py), not by importing a test module or "
        "a conftest:\n" + "\n".join(offences)
    )


def test_the_scan_reads_the_tests_and_the_benchmarks() -> None:
    """Guards against a vacuous pass: a wrong ROOT would scan nothing."""
    files = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    assert {"tests/conftest.py", "tests/unit/test_test_imports.py", "bench/scrape.py"} <= files


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from tests.unit.test_figures import SLACK, WEB", (2, "tests.unit.test_figures")),
        ("import tests.integration.test_processor as p", (2, "tests.integration.test_processor")),
        ("from tests.conftest import redis_url", (2, "tests.conftest")),
        ("from tests.integration.conftest import read_topic", (2, "tests.integration.conftest")),
        ("import conftest", (2, "conftest")),
        ("from .test_figures import WEB", (2, ".test_figures")),
        ("from . import conftest", (2, ".conftest")),
        ("from tests.unit import test_figures", (2, "tests.unit.test_figures")),
        ("importlib.import_module('tests.unit.test_top')", (2, "tests.unit.test_top")),
        ("def f():\n    from tests.conftest import redis_url", (3, "tests.conftest")),
    ],
)
def test_an_import_of_a_test_module_or_a_conftest_is_found(
    source: str, found: tuple[int, str]
) -> None:
    assert offending_imports("import os\n" + source) == [found]


@pytest.mark.parametrize(
    "source",
    [
        "from tests.unit.helpers import SLACK, WEB",
        "from tests.stack import redis_url",
        "from tests.integration.pipeline import read_topic",
        "import testing, contest",
        "from tests import testdata",
        "from . import helpers",
        "pytest_plugins = []",
        "text = 'from tests.conftest import redis_url'",
    ],
)
def test_helper_modules_and_look_alikes_are_allowed(source: str) -> None:
    assert offending_imports(source) == []

"""The sandbox stays a standalone development double: standard library only, and out of reach
of the code the production image runs (the platform talks to it over HTTP, never by import)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Development-only trees: none of them is in the production image (see .dockerignore).
NOT_SHIPPED = ("stripe_sandbox", "tests", "bench", "devtools")
SKIPPED = (".venv", "data", ".git", "node_modules")


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _shipped_sources() -> Iterator[Path]:
    for path in ROOT.rglob("*.py"):
        top = path.relative_to(ROOT).parts[0]
        if top not in NOT_SHIPPED and top not in SKIPPED:
            yield path


def test_the_sandbox_imports_only_the_standard_library() -> None:
    outside = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "stripe_sandbox").rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] not in sys.stdlib_module_names and module.split(".")[0] != "stripe_sandbox"
    }
    assert not outside


def test_no_shipped_module_imports_the_sandbox() -> None:
    sources = list(_shipped_sources())
    assert any(path.name == "stripe_gateway.py" for path in sources)  # the walk reaches the apps
    importers = {
        str(path.relative_to(ROOT))
        for path in sources
        for module in _imported_modules(path)
        if module.split(".")[0] == "stripe_sandbox"
    }
    assert not importers


def test_the_production_image_leaves_the_development_trees_out() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert set(NOT_SHIPPED) <= ignored

"""facts/ sits below the rule engine: it may read the advisory model, never the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import fleet_guard.facts

PACKAGE = Path(fleet_guard.facts.__file__).parent
# Leaf modules of advisories/ that import nothing above facts.
ALLOWED = {"fleet_guard.advisories.model", "fleet_guard.advisories.versions"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_facts_import_no_rule_engine_loader_report_or_step() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        for name in _imports(path):
            if name.startswith("fleet_guard.advisories"):
                assert name in ALLOWED, f"{path.name} imports {name}"
            for above in ("fleet_guard.report", "fleet_guard.render", "fleet_guard.resource"):
                assert not name.startswith(above), f"{path.name} imports {name}"
            assert name != "fleet_guard.scan", path.name


def test_the_leaf_modules_import_nothing_above_facts() -> None:
    advisories = PACKAGE.parent / "advisories"
    for leaf in ("model.py", "versions.py"):
        inside = {n for n in _imports(advisories / leaf) if n.startswith("fleet_guard.")}
        assert inside <= {"fleet_guard.severity", *ALLOWED}, (leaf, inside)

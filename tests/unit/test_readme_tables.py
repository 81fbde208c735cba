"""The README's reference tables are generated; this fails until `scripts/readme_tables.py
--write` has been run after a schema or an advisory changed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_tables", ROOT / "scripts/readme_tables.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_match_the_schemas_and_advisories():
    script = load_script()
    current = (ROOT / "README.md").read_text()
    assert script.render(current) == current, (
        "README.md tables are stale: run `python scripts/readme_tables.py --write`"
    )


def test_every_table_has_its_markers_in_the_readme():
    script = load_script()
    readme = (ROOT / "README.md").read_text()
    for name in script.TABLES:
        assert f"<!-- BEGIN {name} -->" in readme and f"<!-- END {name} -->" in readme, name


def test_params_tables_have_the_documented_columns():
    script = load_script()
    for name in ("source", "get_params", "put_params"):
        header = script.schema_table(name).splitlines()[0]
        assert header == "| Key | Required | Default | Example | Description |"

"""Every packaged data file, held to its schema here, once, instead of on every check.

A check loads these tables without running jsonschema over them (that was most of a small
check's start-up). This test is what makes that safe: a packaged file that breaks its schema
fails the build, and the image runs this suite too.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from fleet_guard import schema
from fleet_guard.advisories.loader import compile_rule, load_builtin_rules
from fleet_guard.facts.bundles import BundleTable
from fleet_guard.facts.releases import ReleaseTable
from fleet_guard.facts.witnesses import WitnessTable

TABLES = [
    ("releases", ReleaseTable),
    ("bundles", BundleTable),
    ("witnesses", WitnessTable),
]


def packaged(name: str) -> object:
    path = resources.files("fleet_guard.facts").joinpath("data", f"{name}.json")
    return json.loads(path.read_text("utf-8"))


@pytest.mark.parametrize("name, table", TABLES, ids=[n for n, _ in TABLES])
def test_each_packaged_table_meets_its_schema_and_loads_validated(name, table):
    data = packaged(name)
    assert schema.problems(data, name, where=f"{name}.json") == []
    assert table.from_data(data) == table.load(), "validated or not, the same table"


def rule_files() -> list[tuple[str, object]]:
    directory = resources.files("fleet_guard.advisories").joinpath("data", "rules")
    return [
        (entry.name, json.loads(entry.read_text("utf-8")))
        for entry in sorted(directory.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


@pytest.mark.parametrize("name, raw", rule_files(), ids=[n for n, _ in rule_files()])
def test_each_packaged_rule_meets_the_rule_schema(name, raw):
    assert schema.problems(raw, "rule", where=name) == []
    validated = compile_rule(raw, where=name, builtin=True)
    assert validated in load_builtin_rules()


def test_a_table_that_breaks_its_schema_is_still_refused_when_validated():
    data = packaged("witnesses")
    data["witnesses"][0]["runtime"] = 7  # type: ignore[index]
    with pytest.raises(Exception, match="runtime"):
        WitnessTable.from_data(data)

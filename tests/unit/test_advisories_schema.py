"""The schema helper other modules reuse: loading schemas and rendering problems as paths."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from fleet_guard import schema


def _schema_names() -> list[str]:
    directory = resources.files("fleet_guard").joinpath("schemas")
    return sorted(e.name for e in directory.iterdir() if e.name.endswith(".json"))


@pytest.mark.parametrize("name", _schema_names())
def test_every_schema_is_a_valid_2020_12_schema(name: str) -> None:
    document = schema.load_schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


def test_load_schema_accepts_a_name_with_or_without_json_and_returns_a_copy() -> None:
    first = schema.load_schema("rule")
    first["title"] = "changed"
    assert schema.load_schema("rule.json")["title"] == "rule"


def test_paths_read_like_the_pipeline() -> None:
    assert schema.join_path("source", ["rules", 0, "id"]) == "source.rules[0].id"
    assert schema.join_path("source", ["facts", "runtime"]) == "source.facts.runtime"
    assert schema.join_path("", ["a", "b c"]) == 'a["b c"]'


def test_valid_document_has_no_problems() -> None:
    rule = {"id": "x", "summary": "s", "severity": "low", "remediation": {"fix": "f"}}
    assert schema.problems(rule, "rule", where="source.rules[0]") == []


def test_problems_come_in_document_order() -> None:
    rule = {
        "id": "BAD",
        "summary": "",
        "severity": "urgent",
        "remediation": {},
        "references": [{"type": "X", "url": "https://x"}, {"type": "WEB", "url": 3}],
    }
    problems = schema.problems(rule, "rule", where="r")
    paths = [p.split(":", 1)[0] for p in problems]
    assert paths == [
        "r.id",
        "r.references[0].type",
        "r.references[1].url",
        "r.remediation.fix",
        "r.severity",
        "r.summary",
    ]


def test_long_values_are_shortened() -> None:
    problems = schema.problems({"id": "x" * 1000}, "rule", where="r")
    assert all(len(p) < 400 for p in problems)


def test_did_you_mean() -> None:
    assert schema.did_you_mean("runtme", ["runtime", "kernel"]) == " (did you mean 'runtime'?)"
    assert schema.did_you_mean("zzz", ["runtime"]) == ""


def test_schemas_are_json_files_in_the_package() -> None:
    for name in _schema_names():
        text = resources.files("fleet_guard").joinpath("schemas", name).read_text("utf-8")
        json.loads(text)

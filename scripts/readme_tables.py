#!/usr/bin/env python3
"""Keeps the README's reference tables in step with the schemas and the advisory data.

The tables are generated between `<!-- BEGIN name -->` / `<!-- END name -->` markers, so a
key added to a schema or an advisory added as a file cannot be forgotten in the docs: the
unit test `test_readme_tables` fails until this script has been run (`--write`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = ROOT / "lib" / "fleet_guard"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else ""


def schema_table(name: str) -> str:
    """Key | Required | Default | Example | Description, one row per property."""
    schema = json.loads((PACKAGE / "schemas" / f"{name}.json").read_text())
    required = set(schema.get("required", ()))
    rows = ["| Key | Required | Default | Example | Description |", "|---|---|---|---|---|"]
    for key, spec in schema["properties"].items():
        default = _code(spec["default"]) if "default" in spec else ""
        example = _code(spec["examples"][0]) if spec.get("examples") else ""
        allowed = spec.get("enum")
        description = spec.get("description", "")
        if allowed:
            description += " One of " + ", ".join(f"`{v}`" for v in allowed) + "."
        if spec.get("x-actions"):
            description += " Actions: " + ", ".join(f"`{a}`" for a in spec["x-actions"]) + "."
        rows.append(
            f"| `{key}` | {'yes' if key in required else 'no'} | {default} | {example} "
            f"| {_cell(description)} |"
        )
    return "\n".join(rows)


def advisories_table() -> str:
    rows = [
        "| Id | Severity | When | Evidence | Summary | Reports |",
        "|---|---|---|---|---|---|",
    ]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    rules = [
        json.loads(p.read_text())
        for p in sorted((PACKAGE / "advisories/data/rules").glob("*.json"))
    ]
    for rule in sorted(rules, key=lambda r: (order[r["severity"]], r["id"])):
        conditions = "; ".join(
            f"{fact} {_condition(op)}" for fact, op in rule.get("conditions", {}).items()
        )
        rows.append(
            f"| `{rule['id']}` | {rule['severity']} | {_cell(conditions) or 'evidence only'} "
            f"| {_evidence(rule.get('evidence', {}))} | {_cell(rule['summary'])} "
            f"| {_reports(rule.get('references', ()))} |"
        )
    return "\n".join(rows)


def _evidence(evidence: Mapping[str, Any]) -> str:
    """`required`/`optional`, then where it is looked for: which events, or worker states."""
    if not evidence:
        return "—"
    where = []
    for pattern in evidence.get("patterns", ()):
        kind = "creation error" if pattern.get("container_creation") else f"{pattern['event']}"
        if kind not in where:
            where.append(kind)
    if evidence.get("worker_states"):
        where.append("worker state")
    seen = "required" if evidence.get("required") else "optional"
    return f"{seen}: {', '.join(where)}" if where else seen


def _reports(references: Any) -> str:
    """The public reports behind a rule, as `owner/repo#N` links."""
    links = []
    for ref in references:
        found = re.match(r"https://github\.com/([^/]+/[^/]+)/(?:issues|pull)/(\d+)$", ref["url"])
        if ref["type"] == "REPORT" and found:
            owner_repo, number = found.groups()
            short = "" if owner_repo == "concourse/concourse" else owner_repo
            links.append(f"[{short}#{number}]({ref['url']})")
    return ", ".join(links)


def _condition(op: Mapping[str, Any]) -> str:
    if "equals" in op:
        return f"= {op['equals']}"
    if "one_of" in op:
        return "in " + ", ".join(op["one_of"])
    if "differs_from" in op:
        return f"≠ {op['differs_from']}"
    if "below" in op:
        return f"< {op['below']}"
    if "under" in op:
        return f"< {op['under']}"
    if "over" in op:
        return f"> {op['over']}"
    parts = []
    for r in op.get("ranges", ()):
        low = r.get("introduced", "0")
        lower = f"≥ {low}" if low not in ("0", "0.0.0") else ""
        if "fixed" in r:
            upper = f"< {r['fixed']}"
        elif "last_affected" in r:
            upper = f"≤ {r['last_affected']}"
        else:
            upper = ""
        parts.append(" ".join(p for p in (lower, upper) if p) or "any")
    return " or ".join(parts)


TABLES: dict[str, Callable[[], str]] = {
    "source-table": lambda: schema_table("source"),
    "get-params-table": lambda: schema_table("get_params"),
    "put-params-table": lambda: schema_table("put_params"),
    "advisories-table": advisories_table,
}


def render(text: str) -> str:
    for name, make in TABLES.items():
        text = _replace_between(text, name, make())
    return text


def _replace_between(text: str, name: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n)(?:.*?\n)?(<!-- END {name} -->)", re.DOTALL)
    return pattern.sub(lambda m: f"{m.group(1)}{table}\n{m.group(2)}", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if args.write:
        README.write_text(wanted)
        return 0
    if wanted != current:
        print("README.md tables are stale: run `python scripts/readme_tables.py --write`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

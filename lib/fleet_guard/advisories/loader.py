"""Turning rule files and `source.rules` into Advisory objects, or into every problem at once.

Built-in rules and the operator's rules go through the same schema and the same checks, so a
rule that works as a built-in works in a pipeline and the other way round. The checks JSON
Schema cannot express (regexes compile, versions are readable, a rule can match something) run
even when the schema already failed, so an operator sees every problem in one go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from fleet_guard import schema
from fleet_guard.advisories.model import (
    Advisory,
    Condition,
    EvidencePattern,
    Reference,
    Remediation,
    VersionRange,
    WorkerState,
)
from fleet_guard.advisories.versions import VERSION_FACTS, compare, is_valid, kind_for_fact
from fleet_guard.config import SourceConfig, parse_window
from fleet_guard.errors import ConfigError
from fleet_guard.severity import Severity

_RANGE_BOUNDS = ("introduced", "fixed", "last_affected")


class BuiltinRulesError(RuntimeError):
    """A packaged rule is invalid: a bug in Fleet Guard, not something the operator can fix."""


def load_builtin_rules() -> list[Advisory]:
    """Every rule in advisories/data/rules/, by id."""
    return list(_builtin_rules())


@cache
def _builtin_rules() -> tuple[Advisory, ...]:
    directory = resources.files("fleet_guard.advisories").joinpath("data", "rules")
    rules: list[Advisory] = []
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        where = f"rules/{entry.name}"
        raw = json.loads(entry.read_text("utf-8"))
        try:
            # The tests hold every packaged rule to schemas/rule.json; each check need not.
            rule = compile_rule(raw, where=where, builtin=True, check_schema=False)
        except ConfigError as error:
            raise BuiltinRulesError(error.message) from error
        if f"{rule.id}.json" != entry.name:
            raise BuiltinRulesError(
                f"{where}: the file must be named after its id ({rule.id}.json)"
            )
        rules.append(rule)
    return tuple(sorted(rules, key=lambda r: r.id))


def rule_problems(raw: Any, *, where: str, builtin: bool, check_schema: bool = True) -> list[str]:
    """Every problem with one rule, each as `path: message`; empty when the rule is valid."""
    problems = schema.problems(raw, "rule", where=where) if check_schema else []
    if isinstance(raw, Mapping):
        problems += [p for p in _semantic_problems(raw, where, builtin) if p not in problems]
    return problems


def compile_rule(
    raw: Mapping[str, Any], *, where: str, builtin: bool, check_schema: bool = True
) -> Advisory:
    """Validate and compile one rule; `ConfigError` lists every problem with its path."""
    problems = rule_problems(raw, where=where, builtin=builtin, check_schema=check_schema)
    if problems:
        raise ConfigError(where, problems)
    evidence = raw.get("evidence") or {}
    remediation = raw["remediation"]
    return Advisory(
        id=raw["id"],
        summary=raw["summary"],
        details=raw.get("details", ""),
        severity=Severity.parse(raw["severity"]),
        conditions=tuple(
            _condition(fact, test) for fact, test in (raw.get("conditions") or {}).items()
        ),
        patterns=tuple(
            EvidencePattern(
                event=p["event"],
                regex=re.compile(p["regex"]),
                implies=dict(p.get("implies") or {}),
                container_creation=bool(p.get("container_creation", False)),
            )
            for p in evidence.get("patterns") or ()
        ),
        remediation=Remediation(
            fix=remediation["fix"],
            workaround=remediation.get("workaround", ""),
            when_fixed=remediation.get("when_fixed", ""),
            fixed_in=remediation.get("fixed_in", ""),
        ),
        references=tuple(
            Reference(type=r["type"], url=r["url"]) for r in raw.get("references") or ()
        ),
        evidence_required=bool(evidence.get("required", False)),
        explained_by=tuple(evidence.get("explained_by") or ()),
        builtin=builtin,
        aliases=tuple(raw.get("aliases") or ()),
        worker_states=tuple(
            WorkerState(
                summary=w["summary"],
                conditions=tuple(_condition(f, t) for f, t in w["conditions"].items()),
            )
            for w in evidence.get("worker_states") or ()
        ),
    )


def load_advisories(config: SourceConfig) -> list[Advisory]:
    """Built-ins minus `disable_rules`, plus `source.rules`, sorted by id.

    Every problem across `disable_rules` and all rules is collected before raising.
    """
    builtins = load_builtin_rules()
    builtin_ids = [a.id for a in builtins]
    problems: list[str] = []
    for i, rule_id in enumerate(config.disable_rules):
        if rule_id not in builtin_ids:
            problems.append(
                f"source.disable_rules[{i}]: no built-in rule {rule_id!r}"
                f"{schema.did_you_mean(rule_id, builtin_ids)}; built-in rules: "
                + ", ".join(builtin_ids)
            )

    user: list[tuple[str, Advisory]] = []
    used_at: dict[str, str] = {}
    for i, raw in enumerate(config.rules):
        where = f"source.rules[{i}]"
        try:
            rule = compile_rule(raw, where=where, builtin=False)
        except ConfigError as error:
            problems += error.problems
            continue
        if rule.id in builtin_ids:
            problems.append(
                f"{where}.id: {rule.id!r} is the id of a built-in rule; give your rule another id "
                f"(and add {rule.id!r} to source.disable_rules if yours replaces it)"
            )
        elif rule.id in used_at:
            problems.append(f"{where}.id: {rule.id!r} is already the id of {used_at[rule.id]}")
        else:
            used_at[rule.id] = where
            user.append((where, rule))

    every_id = [*builtin_ids, *used_at]
    for where, rule in user:
        problems += _explained_by_problems(rule, where, every_id)
    if problems:
        raise ConfigError("source", problems)

    disabled = set(config.disable_rules)
    active = [a for a in builtins if a.id not in disabled] + [rule for _, rule in user]
    return sorted(active, key=lambda a: a.id)


def _explained_by_problems(rule: Advisory, where: str, known: Sequence[str]) -> list[str]:
    return [
        f"{where}.evidence.explained_by[{j}]: no rule {other!r}{schema.did_you_mean(other, known)}"
        for j, other in enumerate(rule.explained_by)
        if other not in known
    ]


def _condition(fact: str, test: Mapping[str, Any]) -> Condition:
    return Condition(
        fact=fact,
        equals=test.get("equals"),
        one_of=tuple(test.get("one_of") or ()),
        ranges=tuple(
            VersionRange(
                introduced=r.get("introduced", "0"),
                fixed=r.get("fixed"),
                last_affected=r.get("last_affected"),
            )
            for r in test.get("ranges") or ()
        ),
        differs_from=test.get("differs_from"),
        below=test.get("below"),
        under=parse_window(test["under"]) if "under" in test else None,
        over=parse_window(test["over"]) if "over" in test else None,
    )


def _semantic_problems(raw: Mapping[str, Any], where: str, builtin: bool) -> list[str]:
    """What the schema cannot say. Defensive: the schema may already have failed."""
    problems: list[str] = []
    conditions = raw.get("conditions")
    evidence = raw.get("evidence")
    evidence = evidence if isinstance(evidence, Mapping) else {}
    patterns = evidence.get("patterns")
    patterns = patterns if isinstance(patterns, list) else []

    tested = [(f"{where}.conditions", conditions)]
    states = evidence.get("worker_states")
    for i, state in enumerate(states if isinstance(states, list) else ()):
        if isinstance(state, Mapping):
            tested.append(
                (f"{where}.evidence.worker_states[{i}].conditions", state.get("conditions"))
            )
    for path, tests in tested:
        if not isinstance(tests, Mapping):
            continue
        for fact, test in tests.items():
            if isinstance(test, Mapping) and fact in VERSION_FACTS:
                problems += _version_problems(fact, test, f"{path}.{fact}")
    if not conditions and evidence.get("required") is not True:
        problems.append(
            f"{where}.conditions: a rule without conditions must set evidence.required: true, "
            "or it would match every worker"
        )
    if evidence.get("required") is True and not patterns and not evidence.get("worker_states"):
        problems.append(
            f"{where}.evidence.patterns: evidence.required needs at least one pattern (or "
            "worker_states entry) to look for"
        )
    for i, pattern in enumerate(patterns):
        creation = isinstance(pattern, Mapping) and pattern.get("container_creation") is True
        if creation and pattern.get("event") == "log":
            problems.append(
                f"{where}.evidence.patterns[{i}].container_creation: only an `error` event "
                "can be a container-creation failure; use event: error or drop the key"
            )
        regex = pattern.get("regex") if isinstance(pattern, Mapping) else None
        if isinstance(regex, str):
            try:
                re.compile(regex)
            except re.error as error:
                problems.append(f"{where}.evidence.patterns[{i}].regex: does not compile: {error}")
    explained_by = evidence.get("explained_by")
    if isinstance(explained_by, list) and raw.get("id") in explained_by:
        problems.append(f"{where}.evidence.explained_by: a rule cannot be explained by itself")
    if builtin and not raw.get("references"):
        problems.append(f"{where}.references: a built-in rule needs at least one reference")
    return problems


def _version_problems(fact: str, test: Mapping[str, Any], path: str) -> list[str]:
    kind = kind_for_fact(fact)
    problems: list[str] = []

    def check(value: Any, at: str) -> bool:
        if isinstance(value, str) and not is_valid(value, kind):
            problems.append(f"{at}: cannot read {value!r} as a {fact} version")
            return False
        return isinstance(value, str)

    check(test.get("equals"), f"{path}.equals")
    one_of = test.get("one_of")
    for i, value in enumerate(one_of if isinstance(one_of, list) else ()):
        check(value, f"{path}.one_of[{i}]")
    ranges = test.get("ranges")
    for i, affected in enumerate(ranges if isinstance(ranges, list) else ()):
        if not isinstance(affected, Mapping):
            continue
        at = f"{path}.ranges[{i}]"
        bounds: dict[str, str] = {}
        for bound in _RANGE_BOUNDS:
            value = affected.get(bound)
            if check(value, f"{at}.{bound}"):
                bounds[bound] = str(value)
        introduced = bounds.get("introduced", "0")
        if introduced == "0":
            continue
        if "fixed" in bounds and compare(introduced, bounds["fixed"], kind) >= 0:
            problems.append(
                f"{at}: fixed ({bounds['fixed']}) must be above introduced ({introduced})"
            )
        if "last_affected" in bounds and compare(introduced, bounds["last_affected"], kind) > 0:
            problems.append(
                f"{at}: last_affected ({bounds['last_affected']}) must not be below "
                f"introduced ({introduced})"
            )
    return problems

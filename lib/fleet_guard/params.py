"""Validated, frozen `params` of `get` and `put`.

Defaults live in the schemas (schemas/get_params.json, put_params.json), where the README
tables are generated from, so code and docs cannot disagree about them. Every problem is
reported at once, with its path, like `source`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from fleet_guard import schema
from fleet_guard.errors import ConfigError
from fleet_guard.severity import Severity


class Action(StrEnum):
    GATE = "gate"
    RERUN = "rerun"
    LAND = "land"
    RETIRE = "retire"
    PRUNE = "prune"

    @property
    def on_workers(self) -> bool:
        return self in (Action.LAND, Action.RETIRE, Action.PRUNE)


@dataclass(frozen=True)
class KeepRunning:
    """A floor under the running workers: a count, or a percentage of those running now."""

    count: int = 0
    percent: int | None = None

    @classmethod
    def parse(cls, raw: int | str) -> KeepRunning:
        if isinstance(raw, str):
            return cls(percent=int(raw.rstrip("%")))
        return cls(count=raw)

    def floor(self, running: int) -> int:
        """Rounded up: "50%" of 5 running keeps 3, never 2."""
        if self.percent is None:
            return self.count
        return math.ceil(running * self.percent / 100)

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class GetParams:
    scan: bool


@dataclass(frozen=True)
class PutParams:
    action: Action
    # None: use source.severity (resolved by the put, which has the source).
    fail_on: Severity | None
    advisories: tuple[str, ...]
    max_builds: int
    max_workers: int
    keep_running: KeepRunning
    workers: tuple[str, ...]
    from_dir: str | None
    dry_run: bool
    allow_incomplete: bool = False
    # Globs restricting rerun; empty: every pipeline or job.
    pipelines: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()


def load_get_params(raw: Any) -> GetParams:
    """Concourse leaves `params` out when a get has none, so None means all defaults."""
    params = _validated(raw, "get_params")
    return GetParams(scan=bool(params.get("scan", _default("get_params", "scan"))))


def load_put_params(raw: Any) -> PutParams:
    params = _validated(raw, "put_params")

    def value(key: str) -> Any:
        return params.get(key, _default("put_params", key))

    fail_on = params.get("fail_on")
    return PutParams(
        action=Action(params["action"]),
        fail_on=Severity.parse(fail_on) if fail_on else None,
        advisories=tuple(value("advisories")),
        max_builds=int(value("max_builds")),
        max_workers=int(value("max_workers")),
        keep_running=KeepRunning.parse(value("keep_running")),
        workers=tuple(value("workers")),
        from_dir=params.get("from"),
        dry_run=bool(value("dry_run")),
        allow_incomplete=bool(value("allow_incomplete")),
        pipelines=tuple(value("pipelines")),
        jobs=tuple(value("jobs")),
    )


def _validated(raw: Any, schema_name: str) -> Mapping[str, Any]:
    instance = {} if raw is None else raw
    problems = schema.problems(instance, schema_name, where="params")
    if isinstance(instance, dict):
        problems += _misplaced_keys(instance, schema_name)
    if problems:
        raise ConfigError("params", problems)
    result: Mapping[str, Any] = instance
    return result


def _misplaced_keys(params: Mapping[str, Any], schema_name: str) -> list[str]:
    """A key the chosen action ignores is almost always a mistake (`max_workers` on a rerun):
    say so instead of silently doing something other than what the pipeline reads as."""
    action = params.get("action")
    if action not in [a.value for a in Action]:
        return []
    problems = []
    for key, spec in _properties(schema_name).items():
        actions = spec.get("x-actions")
        if key in params and actions and action not in actions:
            used_by = ", ".join(f"`{a}`" for a in actions)
            problems.append(f"params.{key}: not used by action `{action}`; only by {used_by}")
    return problems


@cache
def _properties(schema_name: str) -> dict[str, Any]:
    properties: dict[str, Any] = schema.load_schema(schema_name)["properties"]
    return properties


def _default(schema_name: str, key: str) -> Any:
    return _properties(schema_name)[key]["default"]

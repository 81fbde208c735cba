"""Validated, frozen configuration: `source` for every step, `params` per step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleet_guard.severity import Severity


@dataclass(frozen=True)
class WorkerFactsOverride:
    """Facts for the workers whose name matches `match` (a glob) and that carry every tag."""

    match: str
    tags: tuple[str, ...]
    facts: Mapping[str, str]
    index: int = 0


@dataclass(frozen=True)
class SourceConfig:
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    teams: tuple[str, ...] = ()
    ca_certs: tuple[str, ...] = ()
    insecure: bool = False
    facts: Mapping[str, str] = field(default_factory=dict)
    worker_facts: tuple[WorkerFactsOverride, ...] = ()
    window: str = "24h"
    window_seconds: int = 24 * 3600
    max_builds: int = 1000
    scan_statuses: tuple[str, ...] = ("errored",)
    severity: Severity = Severity.HIGH
    emit: str = "affected"
    rules: tuple[Mapping[str, Any], ...] = ()
    disable_rules: tuple[str, ...] = ()
    debug: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed or written anywhere."""
        return tuple(s for s in (self.password, self.token) if s)

"""The advisory model: what a rule says, after its data file has been validated and compiled.

Rules are data (advisories/data/rules/*.json, or `source.rules`); these classes are their
compiled, immutable form, shared by the evidence matcher and the rule engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fleet_guard.severity import Severity


class Outcome(StrEnum):
    """Per worker and advisory. Only MATCHED and EVIDENCE_ONLY make a fleet `affected`."""

    MATCHED = "matched"
    POSSIBLE = "possible"
    EVIDENCE_ONLY = "evidence-only"
    CLEAR = "clear"
    # Evidence was seen, all of it from before the worker's current start, and the conditions
    # are now false or unknown there: history, reported but never affecting status or gate.
    RESOLVED = "resolved"

    @property
    def affects(self) -> bool:
        return self in (Outcome.MATCHED, Outcome.EVIDENCE_ONLY)


@dataclass(frozen=True)
class VersionRange:
    """OSV-style range: affected from `introduced` up to `fixed` (exclusive) or `last_affected`."""

    introduced: str = "0"
    fixed: str | None = None
    last_affected: str | None = None


@dataclass(frozen=True)
class Condition:
    """A test on one fact. Exactly one of the operator fields is set.

    - `equals` / `one_of`: string equality (runtime, cgroup, platform, state).
    - `ranges`: the fact is inside any range (semver for releases, numeric for `kernel`).
    - `differs_from`: the fact differs from a web-level fact such as `web.worker_version`.
    - `below`: the fact is a lower version than a web-level fact.
    - `under` / `over`: a duration fact (`uptime`) is shorter / longer than so many seconds.
    """

    fact: str
    equals: str | None = None
    one_of: tuple[str, ...] = ()
    ranges: tuple[VersionRange, ...] = ()
    differs_from: str | None = None
    below: str | None = None
    under: int | None = None
    over: int | None = None


@dataclass(frozen=True)
class WorkerState:
    """What a failure leaves on the worker itself, when its error never reaches a build.

    gdn that cannot start on a cgroup v2 host logs `bulk starter: ...` only to the worker's own
    log; what the ATC shows is the worker stalling right after it registered. A worker whose
    facts pass every condition counts for the advisory as if its evidence had been seen, but
    only where the advisory's own conditions are not false: a stalled worker is no signature of
    one failure, so a containerd worker that stalls says nothing about a guardian problem.
    """

    summary: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class EvidencePattern:
    """A regex over one event type; `implies` names facts a match proves about its worker.

    `container_creation`: only an `error` event that is the failure to create the step's
    container counts (evidence.is_container_creation). The worker's own CNI, runtime and volume
    failures happen there; the same words in a step's output or in a resource script's error
    come from the step's program and say nothing about the worker.
    """

    event: str
    regex: re.Pattern[str]
    implies: Mapping[str, str] = field(default_factory=dict)
    container_creation: bool = False


@dataclass(frozen=True)
class Reference:
    type: str
    url: str


@dataclass(frozen=True)
class Remediation:
    fix: str
    workaround: str = ""
    # What to check when the evidence keeps coming on a worker whose facts say it is fixed:
    # said instead of `fix`, which that worker already has.
    when_fixed: str = ""
    # The Concourse release that ships the fix: a worker already on it (or later) is told
    # `when_fixed` instead of `fix`, even where its other facts are unknown.
    fixed_in: str = ""


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    details: str
    severity: Severity
    conditions: tuple[Condition, ...]
    patterns: tuple[EvidencePattern, ...]
    remediation: Remediation
    references: tuple[Reference, ...]
    # The advisory is only `matched` where its evidence was seen (rules about symptoms).
    evidence_required: bool = False
    # An event that one of these advisories already explains is not evidence for this one.
    explained_by: tuple[str, ...] = ()
    builtin: bool = True
    # Other names for the same problem (CVE and GHSA ids), so reports can be cross-referenced.
    aliases: tuple[str, ...] = ()
    # Worker states that count as evidence (see WorkerState).
    worker_states: tuple[WorkerState, ...] = ()

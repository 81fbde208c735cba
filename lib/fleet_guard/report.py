"""The report: one scan's answer, its fingerprint, and renderings for machines and people.

Everything here is a pure function of the scan's results, so a report can be rebuilt and
tested from plain data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.model import Outcome
from fleet_guard.concourse.models import Build, Info, Worker
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact
from fleet_guard.facts.restarts import started_at
from fleet_guard.severity import Severity
from fleet_guard.signatures.detect import Signature
from fleet_guard.version import AFFECTED, HEALTHY, INCOMPLETE, Version

# Why a listed build's log was not read whole, in the order reports show them, with the fix.
UNREAD_REASONS: Mapping[str, str] = {
    "forbidden": "their events were refused (401/403): grant these credentials the viewer role "
    "on the team{teams}, or limit source.teams to teams they can read",
    "gone": "they were deleted or reaped meanwhile (404); nothing to fix, but they were not seen",
    "server_error": "the web node failed or did not answer, even after retries; see its logs, "
    "and shorten source.window if it is overloaded",
    "cut": "their event streams ended before the `end` event, even after resuming; check "
    "proxies in front of the web node for stream time-outs",
    "over_cap": "their logs are larger than source.max_log_bytes ({max_log_bytes} bytes); raise "
    "max_log_bytes",
}


@dataclass(frozen=True)
class UnreadBuild:
    """A listed build whose log was not read whole, and why (a key of UNREAD_REASONS)."""

    build_id: int
    team: str
    pipeline: str | None
    job: str | None
    reason: str


@dataclass(frozen=True)
class Coverage:
    """What the scan could not see. A verdict that ignores this is blind: `healthy` must mean
    "looked everywhere in scope and found nothing", so anything here makes it `incomplete`."""

    unread: Sequence[UnreadBuild] = ()
    # Teams in source.teams whose builds could not be listed at all.
    teams_not_visible: Sequence[str] = ()
    # Listing stopped at source.max_builds before the window ended.
    listing_capped: bool = False
    window: str = ""
    max_builds: int = 0
    max_log_bytes: int = 0

    @property
    def complete(self) -> bool:
        return not (self.unread or self.teams_not_visible or self.listing_capped)

    def counts(self) -> dict[str, int]:
        """Builds not read whole, per reason; every reason present, zero or not."""
        counts = dict.fromkeys(UNREAD_REASONS, 0)
        for item in self.unread:
            counts[item.reason] = counts.get(item.reason, 0) + 1
        return counts

    def summary(self) -> str:
        """One short line for build metadata: `complete`, or the size of each gap."""
        parts = [f"{n} {reason}" for reason, n in self.counts().items() if n]
        if self.teams_not_visible:
            parts.append(f"{len(self.teams_not_visible)} team(s) not visible")
        if self.listing_capped:
            parts.append("listing capped")
        return ", ".join(parts) if parts else "complete"

    def problems(self) -> list[str]:
        """One sentence per gap, each saying what was missed and how to fix it."""
        lines = []
        for reason, count in self.counts().items():
            if not count:
                continue
            builds = [u for u in self.unread if u.reason == reason]
            teams = sorted({u.team for u in builds if u.team})
            shown = ", ".join(str(u.build_id) for u in builds[:5]) + (
                " …" if len(builds) > 5 else ""
            )
            fix = UNREAD_REASONS[reason].format(
                teams=f" {', '.join(teams)}" if teams else "", max_log_bytes=self.max_log_bytes
            )
            lines.append(f"{count} build(s) not read whole ({shown}): {fix}")
        if self.teams_not_visible:
            lines.append(
                f"team(s) {', '.join(self.teams_not_visible)} in source.teams could not be "
                "listed (no such team, or no access): check the names, or grant these "
                "credentials a role there"
            )
        if self.listing_capped:
            lines.append(
                f"listing stopped at source.max_builds ({self.max_builds}) before the "
                f"{self.window} window ended: raise max_builds or shorten window"
            )
        return lines


@dataclass(frozen=True)
class Scanned:
    """What the scan cost and covered; the numbers behind the README's Costs section."""

    window: str
    builds_listed: int
    builds_read: int
    api_calls: int
    capped: bool = False
    seconds: float = 0.0
    # Builds whose evidence an earlier check had already found (see evidence_cache).
    builds_cached: int = 0
    # Other builds read (or taken from the cache) only for the base rate of signatures/.
    builds_sampled: int = 0
    # Build list requests, and the builds they returned when the listing was incremental
    # (None: listed cold, every page of the window).
    list_pages: int = 0
    builds_fetched: int | None = None


@dataclass(frozen=True)
class Report:
    url: str
    info: Info
    workers: Sequence[Worker]
    facts: Mapping[str, Mapping[str, Fact]]
    findings: Sequence[Finding]
    threshold: Severity
    scanned: Scanned
    generated_at: str
    # Every build listed, so remediation can rerun evidence builds without listing them again.
    builds: Sequence[Build] = ()
    coverage: Coverage = Coverage()
    # Emerging signatures (signatures/), and the severity they count as; None: report only.
    emerging: Sequence[Signature] = ()
    emerging_severity: Severity | None = None
    # (error templates seen, templates tested) when the signature search ran.
    templates: tuple[int, int] | None = None
    # Evidence from before its worker's current start (facts/restarts.py): history, no outcome.
    history: Sequence[Evidence] = ()

    @property
    def emerging_affecting(self) -> list[Signature]:
        """Signatures that decide the status, when the operator made them count."""
        severity = self.emerging_severity
        return list(self.emerging) if severity is not None and severity >= self.threshold else []

    @property
    def affecting(self) -> list[Finding]:
        """Findings that decide the status: affecting outcome at or above the threshold."""
        return [
            f for f in self.findings if f.outcome.affects and f.advisory.severity >= self.threshold
        ]

    @property
    def status(self) -> str:
        """Affecting findings win; otherwise a scan that missed something is never healthy."""
        if self.affecting or self.emerging_affecting:
            return AFFECTED
        return HEALTHY if self.coverage.complete else INCOMPLETE

    @property
    def fingerprint(self) -> str:
        """Stable over (advisory, outcome, workers): new evidence on a known worker keeps it.

        An incomplete scan with nothing affecting gets its own fingerprint, so that with
        `emit: all` the step from healthy to incomplete (and back) is a new version.
        """
        key: list[Any] = sorted(
            [f.advisory.id, f.outcome.value, sorted(f.workers)] for f in self.affecting
        )
        key += sorted([s.id, "emerging", s.worker_names] for s in self.emerging_affecting)
        if self.status == INCOMPLETE:
            key.append(INCOMPLETE)
        digest = hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()
        return digest[:16]

    @property
    def advisory_ids(self) -> tuple[str, ...]:
        ids = {f.advisory.id for f in self.affecting} | {s.id for s in self.emerging_affecting}
        return tuple(sorted(ids))

    @property
    def affected_workers(self) -> list[str]:
        """Worst first: most evidence, then name; the order remediation acts in."""
        counts: dict[str, int] = {}
        for finding in self.affecting:
            for worker in finding.workers:
                counts.setdefault(worker, 0)
            for item in finding.evidence:
                if item.worker in counts:
                    counts[item.worker] += 1
        for signature in self.emerging_affecting:
            for count in signature.workers:
                counts[count.worker] = counts.get(count.worker, 0) + count.observed
        return sorted(counts, key=lambda w: (-counts[w], w))

    def version(self) -> Version:
        return Version(self.fingerprint, 0, self.status, self.advisory_ids)


def report_json(report: Report) -> dict[str, Any]:
    """The `report.json` document (validated by schemas/report.json)."""
    registered = {w.name: w for w in report.workers}
    return {
        "status": report.status,
        "fingerprint": report.fingerprint,
        "severity_threshold": str(report.threshold),
        "advisories": list(report.advisory_ids),
        "concourse": {
            "url": report.url,
            "version": report.info.version,
            "worker_version": report.info.worker_version,
        },
        "workers": [
            _worker_json(name, registered.get(name), report.facts[name])
            for name in sorted(report.facts)
        ],
        "findings": [_finding_json(f, report.threshold, registered) for f in report.findings],
        "scanned": {
            "window": report.scanned.window,
            "builds_listed": report.scanned.builds_listed,
            "builds_read": report.scanned.builds_read,
            "api_calls": report.scanned.api_calls,
            "capped": report.scanned.capped,
            "seconds": round(report.scanned.seconds, 3),
            "builds_sampled": report.scanned.builds_sampled,
            **(
                {"templates": report.templates[0], "templates_tested": report.templates[1]}
                if report.templates
                else {}
            ),
        },
        "coverage": coverage_json(report.coverage),
        "emerging": [_emerging_json(s, report) for s in report.emerging],
        "generated_at": report.generated_at,
    }


def coverage_json(coverage: Coverage) -> dict[str, Any]:
    return {
        "complete": coverage.complete,
        "builds_not_read": coverage.counts(),
        "unread": [
            {
                "build_id": u.build_id,
                "team": u.team,
                "pipeline": u.pipeline,
                "job": u.job,
                "reason": u.reason,
            }
            for u in coverage.unread
        ],
        "teams_not_visible": list(coverage.teams_not_visible),
        "listing_capped": coverage.listing_capped,
        "max_log_bytes": coverage.max_log_bytes,
        "problems": coverage.problems(),
    }


def _worker_json(name: str, worker: Worker | None, facts: Mapping[str, Fact]) -> dict[str, Any]:
    return {
        "name": name,
        "registered": worker is not None,
        "state": worker.state if worker else "unknown",
        "platform": worker.platform if worker else "",
        "team": worker.team if worker else "",
        "tags": list(worker.tags) if worker else [],
        "facts": {fact: _fact_json(f) for fact, f in sorted(facts.items())},
    }


def _fact_json(fact: Fact) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "value": fact.value,
        "source": fact.source.value,
        "detail": fact.detail,
    }
    if fact.members:
        shown["members"] = list(fact.members)
    return shown


def _finding_json(
    finding: Finding, threshold: Severity, registered: Mapping[str, Worker]
) -> dict[str, Any]:
    advisory = finding.advisory
    extra: dict[str, Any] = {}
    if finding.note:
        extra["note"] = finding.note
    if finding.states:
        extra["worker_states"] = [{"worker": w, "state": state} for w, state in finding.states]
    if finding.outcome is Outcome.RESOLVED:
        extra["restarts"] = [
            {
                "worker": name,
                "start_time": registered[name].start_time,
                "started_at": started_at(registered[name].start_time),
            }
            for name in finding.workers
            if name in registered and registered[name].start_time > 0
        ]
    return extra | {
        "advisory": advisory.id,
        "severity": str(advisory.severity),
        "summary": advisory.summary,
        "outcome": finding.outcome.value,
        "affects_status": finding.outcome.affects and advisory.severity >= threshold,
        "workers": list(finding.workers),
        "evidence": [_evidence_json(e) for e in finding.evidence],
        "remediation": {
            "fix": finding.remediation.fix,
            "workaround": finding.remediation.workaround,
        },
        "references": [{"type": r.type, "url": r.url} for r in advisory.references],
    }


# Evidence builds listed per signature in report.json, newest first; `builds` counts them all.
MAX_EMERGING_EVIDENCE = 50


def _emerging_json(signature: Signature, report: Report) -> dict[str, Any]:
    stats = signature.stats
    affects = signature.id in {s.id for s in report.emerging_affecting}
    return {
        "kind": "emerging",
        "id": signature.id,
        "template": stats.template,
        "example": stats.example,
        "event": "error",
        "severity": str(report.emerging_severity) if report.emerging_severity else None,
        "affects_status": affects,
        "occurrences": stats.occurrences,
        "builds": len(stats.build_ids),
        "workers": [
            {"name": w.worker, "observed": w.observed, "expected": w.expected}
            for w in signature.workers
        ],
        "workers_seen": len(stats.per_worker),
        "unattributed": stats.unattributed,
        "releases": sorted(stats.releases),
        "release": signature.release,
        "p_value": signature.p_value,
        "q_value": signature.q_value,
        "first_seen": stats.first_seen,
        "last_seen": stats.last_seen,
        "evidence": [_evidence_json(e) for e in stats.evidence[:MAX_EMERGING_EVIDENCE]],
    }


def _evidence_json(item: Evidence) -> dict[str, Any]:
    return {
        "build_id": item.build_id,
        "team": item.team,
        "pipeline": item.pipeline,
        "job": item.job,
        "build": item.build,
        "worker": item.worker,
        "message": item.message,
        "url": item.url,
        "time": item.time,
    }


def unknown_facts(finding: Finding, facts: Mapping[str, Mapping[str, Fact]]) -> list[str]:
    """Facts that keep a `possible` finding undecided, so the reader knows what to declare."""
    names = {
        c.fact
        for c in finding.advisory.conditions
        for w in finding.workers
        if c.fact not in facts.get(w, {})
    }
    return sorted(names)

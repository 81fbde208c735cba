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
from fleet_guard.concourse.models import Build, Info, Worker
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact
from fleet_guard.severity import Severity
from fleet_guard.version import AFFECTED, HEALTHY, Version


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

    @property
    def affecting(self) -> list[Finding]:
        """Findings that decide the status: affecting outcome at or above the threshold."""
        return [
            f for f in self.findings if f.outcome.affects and f.advisory.severity >= self.threshold
        ]

    @property
    def status(self) -> str:
        return AFFECTED if self.affecting else HEALTHY

    @property
    def fingerprint(self) -> str:
        """Stable over (advisory, outcome, workers): new evidence on a known worker keeps it."""
        key = sorted([f.advisory.id, f.outcome.value, sorted(f.workers)] for f in self.affecting)
        digest = hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()
        return digest[:16]

    @property
    def advisory_ids(self) -> tuple[str, ...]:
        return tuple(sorted({f.advisory.id for f in self.affecting}))

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
        "findings": [_finding_json(f, report.threshold) for f in report.findings],
        "scanned": {
            "window": report.scanned.window,
            "builds_listed": report.scanned.builds_listed,
            "builds_read": report.scanned.builds_read,
            "api_calls": report.scanned.api_calls,
            "capped": report.scanned.capped,
            "seconds": round(report.scanned.seconds, 3),
        },
        "generated_at": report.generated_at,
    }


def _worker_json(name: str, worker: Worker | None, facts: Mapping[str, Fact]) -> dict[str, Any]:
    return {
        "name": name,
        "registered": worker is not None,
        "state": worker.state if worker else "unknown",
        "platform": worker.platform if worker else "",
        "team": worker.team if worker else "",
        "tags": list(worker.tags) if worker else [],
        "facts": {
            fact: {"value": f.value, "source": f.source.value, "detail": f.detail}
            for fact, f in sorted(facts.items())
        },
    }


def _finding_json(finding: Finding, threshold: Severity) -> dict[str, Any]:
    advisory = finding.advisory
    return {
        "advisory": advisory.id,
        "severity": str(advisory.severity),
        "summary": advisory.summary,
        "outcome": finding.outcome.value,
        "affects_status": finding.outcome.affects and advisory.severity >= threshold,
        "workers": list(finding.workers),
        "evidence": [_evidence_json(e) for e in finding.evidence],
        "remediation": {
            "fix": advisory.remediation.fix,
            "workaround": advisory.remediation.workaround,
        },
        "references": [{"type": r.type, "url": r.url} for r in advisory.references],
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

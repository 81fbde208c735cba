"""The pieces every rendering shares: findings per advisory, outcome words, times, workers.

summary.md, the build-log text, the chat message and the metrics all say the same things in
different media; deciding *what* to say (which outcome comes first, how long ago an error was,
which workers a line names) happens here once, so the four never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.model import Advisory, Outcome, Remediation
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact
from fleet_guard.report import Report

# The order a reader wants: what is broken, then what may be, then what is history.
# Outcome values are strings so that outcomes added to the engine render before they get words.
OUTCOME_ORDER: tuple[str, ...] = ("matched", "evidence-only", "possible", "resolved", "clear")

OUTCOME_TITLES: dict[str, str] = {
    "matched": "Matched",
    "evidence-only": "Evidence only",
    "possible": "Possible",
    "resolved": "Resolved",
    "clear": "Clear",
}

# One paragraph per outcome, shown under the findings for the outcomes that appear.
OUTCOME_MEANING: dict[str, str] = {
    "matched": (
        "The worker's facts fall inside the advisory's affected ranges (and, where the advisory "
        "needs it, its error was seen on that worker). These workers are affected now: apply "
        "the fix or the workaround."
    ),
    "evidence-only": (
        "The advisory's error was seen on the worker, but its facts do not (or cannot yet) say "
        "it is affected. Either a fact is wrong or unknown, or the error has another cause; "
        "`fleet-guard explain ADVISORY --worker NAME` shows each condition. It counts as "
        "affected."
    ),
    "possible": (
        "Nothing rules the worker out, but a fact the advisory needs is unknown and no error "
        "was seen. Declare the fact in `source.facts` or `source.worker_facts` to decide. It "
        "does not make the fleet affected."
    ),
    "resolved": (
        "The advisory's error was seen on the worker in the past, but the worker has since "
        "restarted or changed so that the advisory no longer applies. The old builds are "
        "history; nothing to do unless the error comes back."
    ),
    "clear": "The advisory does not apply to the worker.",
}

# How many names or lines a person is shown before "and N more" (report.json has them all).
MAX_LISTED = 10


@dataclass(frozen=True)
class AdvisoryView:
    """One advisory's findings, one per outcome, in reading order."""

    advisory: Advisory
    findings: tuple[Finding, ...]
    affects_status: bool

    @property
    def evidence(self) -> list[Evidence]:
        """Every current matching error of the advisory, newest first (time, then build id)."""
        items = [e for f in self.findings if f.outcome is not Outcome.RESOLVED for e in f.evidence]
        return sorted(items, key=lambda e: (-(e.time or 0), -e.build_id))

    @property
    def history(self) -> list[Evidence]:
        """Errors from before their workers' current start (`resolved`), newest first."""
        items = [e for f in self.findings if f.outcome is Outcome.RESOLVED for e in f.evidence]
        return sorted(items, key=lambda e: (-(e.time or 0), -e.build_id))

    @property
    def remediation(self) -> Remediation:
        """The advisory's fix, unless every affecting worker's facts say it has that fix already:
        then what to check instead (Finding.remediation)."""
        affecting = [f for f in self.findings if f.outcome.affects]
        if affecting and all(f.facts_say_fixed for f in affecting):
            return affecting[0].remediation
        return self.advisory.remediation


def outcome_rank(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def outcome_title(outcome: str) -> str:
    return OUTCOME_TITLES.get(outcome, outcome.replace("-", " ").capitalize())


def by_advisory(report: Report) -> list[AdvisoryView]:
    """Findings grouped per advisory: those that decide the status first, then by severity."""
    deciding = {id(f) for f in report.affecting}
    grouped: dict[str, list[Finding]] = {}
    for finding in report.findings:
        grouped.setdefault(finding.advisory.id, []).append(finding)
    views = [
        AdvisoryView(
            advisory=found[0].advisory,
            findings=tuple(sorted(found, key=lambda f: outcome_rank(f.outcome.value))),
            affects_status=any(id(f) in deciding for f in found),
        )
        for found in grouped.values()
    ]
    return sorted(views, key=lambda v: (not v.affects_status, -v.advisory.severity, v.advisory.id))


def outcomes_present(report: Report) -> list[str]:
    seen = {f.outcome.value for f in report.findings}
    return sorted(seen, key=outcome_rank)


def scan_time(report: Report) -> datetime:
    """The scan's own clock, so a report renders the same whenever it is rendered."""
    try:
        return datetime.strptime(report.generated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


def duration(seconds: float) -> str:
    """A span as people say it: 45s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when(timestamp: int | None, now: datetime) -> str:
    """`2026-12-01 09:40 UTC (17 min ago)`; "time unknown" when the API gave none."""
    if not timestamp:
        return "time unknown"
    moment = datetime.fromtimestamp(timestamp, UTC)
    ago = (now - moment).total_seconds()
    relative = f"{duration(ago)} ago" if ago >= 0 else "in the future"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({relative})"


def short_time(timestamp: int | None, now: datetime) -> str:
    """`09:40 UTC, 17 min ago` for narrow places (tables, log lines)."""
    if not timestamp:
        return "-"
    moment = datetime.fromtimestamp(timestamp, UTC)
    day = "" if moment.date() == now.date() else f"{moment:%m-%d} "
    return f"{day}{moment:%H:%M} UTC, {duration((now - moment).total_seconds())} ago"


def capped(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c and 7 more` — a long list must not bury the line it is in."""
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def fact_text(fact: Fact | None) -> str:
    return f"{fact.value} ({fact.source.value})" if fact else "unknown"


@dataclass(frozen=True)
class WorkerRow:
    """What a person wants to know about one worker at a glance."""

    name: str
    state: str
    release: str
    runtime: str
    uptime: str
    evidence: int
    last_evidence: str


def worker_rows(report: Report, names: Sequence[str]) -> list[WorkerRow]:
    now = scan_time(report)
    registered = {w.name: w for w in report.workers}
    evidence = [e for f in report.findings if f.outcome is not Outcome.RESOLVED for e in f.evidence]
    rows = []
    for name in names:
        worker = registered.get(name)
        facts = report.facts.get(name, {})
        own = [e for e in evidence if e.worker == name]
        newest = max((e.time or 0 for e in own), default=0)
        started = worker.start_time if worker else 0
        rows.append(
            WorkerRow(
                name=name,
                state=worker.state if worker else "not registered",
                release=fact_text(facts.get("concourse")),
                runtime=fact_text(facts.get("runtime")),
                uptime=duration(now.timestamp() - started) if started else "-",
                evidence=len(own),
                last_evidence=short_time(newest or None, now) if own else "-",
            )
        )
    return rows


def verdict_line(report: Report) -> str:
    """One sentence: the status, what caused it and on how many of the workers."""
    total = len(report.workers)
    affected = report.affected_workers
    if not (report.affecting or report.emerging_affecting):
        return (
            f"{report.status}: no advisory at {report.threshold} or above affects any of "
            f"{total} workers"
        )
    return (
        f"{report.status}: {', '.join(report.advisory_ids)} on {len(affected)} of {total} "
        f"workers ({capped(affected, 5)})"
    )

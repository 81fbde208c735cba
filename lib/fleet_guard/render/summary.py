"""summary.md: the report for a person, Markdown that reads well both rendered and in a terminal.

Status first, then one section per finding: who is affected, the builds that prove it, and
what to do. Used for `summary.md`, `fleet-guard scan` and the demo.
"""

from __future__ import annotations

from collections.abc import Mapping

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.model import Outcome
from fleet_guard.facts import Fact
from fleet_guard.report import Report, unknown_facts

MAX_EVIDENCE_LINES = 10


def render_markdown(report: Report) -> str:
    lines = [f"# Fleet Guard: {report.status.upper()}", ""]
    lines += coverage_lines(report)
    lines += _overview(report)
    shown = list(report.findings)
    if not shown:
        lines += ["No advisory applies to any worker.", ""]
    for finding in shown:
        lines += _finding(finding, report)
    s = report.scanned
    capped = " (capped by max_builds)" if s.capped else ""
    lines += [
        "---",
        f"Scanned the last {s.window}: {s.builds_listed} builds listed{capped}, "
        f"{s.builds_read} build logs read, {s.api_calls} API calls, {s.seconds:.1f} s. "
        f"Generated {report.generated_at}.",
        "",
    ]
    return "\n".join(lines)


def coverage_lines(report: Report) -> list[str]:
    """What the scan could not see, at the top: a verdict is only as good as its coverage."""
    gaps = report.coverage.problems()
    if not gaps:
        return []
    return ["**The scan could not see everything:**", *(f"- {gap}" for gap in gaps), ""]


def _overview(report: Report) -> list[str]:
    info = report.info
    affected = report.affected_workers
    lines = [
        f"- Concourse: {info.version or 'unknown'} at {report.url}",
        f"- Workers: {len(report.workers)} registered"
        + (f"; affected: {', '.join(affected)}" if affected else ""),
        f"- Threshold: {report.threshold} and above"
        + (f"; advisories: {', '.join(report.advisory_ids)}" if report.advisory_ids else ""),
        "",
    ]
    return lines


def _finding(finding: Finding, report: Report) -> list[str]:
    advisory = finding.advisory
    below = "" if advisory.severity >= report.threshold else " (below threshold)"
    lines = [
        f"## {advisory.id}: {finding.outcome.value} [{advisory.severity}]{below}",
        "",
        advisory.summary,
        "",
    ]
    if finding.workers:
        lines.append(f"Workers ({len(finding.workers)}):")
        lines += [
            f"- {w}: {_facts_line(report.facts.get(w, {}), finding)}" for w in finding.workers
        ]
        lines.append("")
    if finding.outcome is Outcome.POSSIBLE:
        missing = unknown_facts(finding, report.facts)
        if missing:
            keys = ", ".join(f"`{m}`" for m in missing)
            lines += [
                f"Unknown: {keys}. Declare {'it' if len(missing) == 1 else 'them'} in "
                "`source.facts` or `source.worker_facts` to decide "
                "(`fleet-guard explain` shows every condition).",
                "",
            ]
    if finding.evidence:
        lines += _evidence(finding)
    if finding.outcome.affects:
        lines.append(f"**Fix:** {advisory.remediation.fix}")
        if advisory.remediation.workaround:
            lines.append(f"**Workaround:** {advisory.remediation.workaround}")
        lines.append("")
    return lines


def _facts_line(facts: Mapping[str, Fact], finding: Finding) -> str:
    """The facts the advisory's conditions look at, each with where it came from."""
    wanted = [c.fact for c in finding.advisory.conditions]
    parts = []
    for name in dict.fromkeys(wanted):
        fact = facts.get(name)
        parts.append(f"{name} {fact.value} ({fact.source.value})" if fact else f"{name} unknown")
    return ", ".join(parts) if parts else "evidence only"


def _evidence(finding: Finding) -> list[str]:
    items = finding.evidence
    lines = [f"Evidence ({len(items)} builds):"]
    for item in items[:MAX_EVIDENCE_LINES]:
        where = "/".join(p for p in (item.team, item.pipeline, item.job) if p) or item.team
        lines.append(
            f"- [build {item.build_id}]({item.url}) {where} #{item.build}"
            f" on {item.worker or 'unknown worker'}: `{item.message}`"
        )
    if len(items) > MAX_EVIDENCE_LINES:
        lines.append(f"- … and {len(items) - MAX_EVIDENCE_LINES} more in report.json")
    lines.append("")
    return lines

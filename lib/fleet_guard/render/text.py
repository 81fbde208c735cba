"""Plain text for a build log: a few lines naming the verdict, the workers and what to do.

A Concourse build log shows text as it is, so nothing here is Markdown: no `**`, no
`[text](url)`; links are bare URLs a terminal or the web UI makes clickable. get and put print
these lines; summary.md is where the whole story is.
"""

from __future__ import annotations

from fleet_guard.render.view import (
    by_advisory,
    capped,
    outcome_title,
    scan_time,
    short_time,
    verdict_line,
)
from fleet_guard.report import Report

MAX_EVIDENCE_LINES = 3


def render_text(report: Report, *, files: str = "") -> str:
    """The lines for a build log. `files` names where the full report is, when there is one."""
    now = scan_time(report)
    lines = [f"fleet-guard: {verdict_line(report)}"]
    lines += [f"  not seen: {gap}" for gap in report.coverage.problems()]
    for view in by_advisory(report):
        advisory = view.advisory
        if not view.affects_status:
            parts = ", ".join(
                f"{outcome_title(f.outcome.value).lower()} {len(f.workers)}" for f in view.findings
            )
            lines.append(f"  {advisory.id} [{advisory.severity}]: {parts} (not affecting)")
            continue
        lines.append(f"  {advisory.id} [{advisory.severity}]: {advisory.summary}")
        for finding in view.findings:
            names = list(finding.workers) or ["(no worker named)"]
            lines.append(f"    {outcome_title(finding.outcome.value).lower()}: {capped(names)}")
        for item in view.evidence[:MAX_EVIDENCE_LINES]:
            lines.append(
                f"    error {short_time(item.time, now)} on {item.worker or 'unknown worker'}: "
                f"{item.url}"
            )
        if len(view.evidence) > MAX_EVIDENCE_LINES:
            lines.append(f"    ... {len(view.evidence) - MAX_EVIDENCE_LINES} more errors")
        lines.append(f"    fix: {view.remediation.fix}")
        if view.remediation.workaround:
            lines.append(f"    workaround: {view.remediation.workaround}")
    for signature in report.emerging:
        on = ", ".join(f"{w.worker} ({w.observed})" for w in signature.workers)
        lines.append(
            f"  {signature.id} (emerging, no advisory yet) on {on}: {signature.stats.template}"
        )
    if files:
        lines.append(f"  full report: {files}")
    return "\n".join(lines)

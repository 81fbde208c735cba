"""The emerging-signature section of summary.md: new failure modes no advisory names yet."""

from __future__ import annotations

from fleet_guard.render.view import scan_time, when
from fleet_guard.report import Report
from fleet_guard.signatures.detect import Signature

MAX_EVIDENCE_LINES = 5


def emerging_lines(report: Report) -> list[str]:
    """One subsection per signature: the template, where it concentrates, how sure, since when,
    and how to turn it into an advisory."""
    if not report.emerging:
        return []
    affecting = {s.id for s in report.emerging_affecting}
    lines = [
        "## Emerging signatures",
        "",
        "Errors that no advisory explains, concentrated on a few workers (or one release) far "
        "beyond their share of the work. Read the builds, then draft an advisory with "
        "`fleet-guard rules draft --report report.json --signature ID`.",
        "",
    ]
    for signature in report.emerging:
        lines += _signature(signature, report, signature.id in affecting)
    return lines


def _signature(signature: Signature, report: Report, affects: bool) -> list[str]:
    stats = signature.stats
    now = scan_time(report)
    verdict = (
        f" [{report.emerging_severity}]" + ("" if affects else " (below threshold)")
        if report.emerging_severity
        else " (reported only)"
    )
    workers = ", ".join(
        f"{w.worker} ({w.observed} builds, {w.expected:g} expected)" for w in signature.workers
    )
    lines = [
        f"### {signature.id}{verdict}",
        "",
        f"`{stats.template}`",
        "",
        f"- {stats.occurrences} errors in {len(stats.build_ids)} builds on "
        f"{len(stats.per_worker)} workers; concentrated on {workers}",
    ]
    if signature.release:
        lines.append(f"- Release class: {signature.release} carries it")
    lines += [
        f"- p = {signature.p_value:.2g} (Fisher's exact test, corrected), "
        f"q = {signature.q_value:.2g} over the templates tested",
        f"- First seen {when(stats.first_seen, now)}, last seen {when(stats.last_seen, now)}",
        f"- Example: `{stats.example}`",
        "",
    ]
    for item in stats.evidence[:MAX_EVIDENCE_LINES]:
        where = "/".join(p for p in (item.team, item.pipeline, item.job) if p) or item.team
        lines.append(
            f"- [build {item.build_id}]({item.url}) {where} #{item.build} "
            f"on {item.worker or 'unknown worker'} at {when(item.time, now)}"
        )
    if len(stats.evidence) > MAX_EVIDENCE_LINES:
        lines.append(f"- … and {len(stats.evidence) - MAX_EVIDENCE_LINES} more in report.json")
    lines.append("")
    return lines

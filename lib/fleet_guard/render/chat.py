"""`headline` and `message.md`: what a notification step posts, with no templating of its own.

The headline is one line for a notification's title. The message uses the Markdown dialect chat
tools share (Slack's mrkdwn): `*bold*`, `<url|text>` links, bullet lines, no tables and no
headings, since those render as raw text in chat.
"""

from __future__ import annotations

from fleet_guard.render.view import (
    by_advisory,
    capped,
    outcome_title,
    scan_time,
    short_time,
)
from fleet_guard.report import Report

MAX_EVIDENCE_LINKS = 3


def render_headline(report: Report) -> str:
    """`Fleet Guard: AFFECTED by cni-netlink-eintr on 2 of 5 workers (w-1, w-3)`."""
    where = report.info.cluster_name or report.url
    total = len(report.workers)
    if report.affecting or report.emerging_affecting:
        affected = report.affected_workers
        return (
            f"Fleet Guard: {report.status.upper()} by {', '.join(report.advisory_ids)} on "
            f"{len(affected)} of {total} workers ({capped(affected, 3)}) at {where}\n"
        )
    return f"Fleet Guard: {report.status.upper()}, {total} workers at {where}\n"


def render_message(report: Report) -> str:
    now = scan_time(report)
    lines = [f"*{render_headline(report).strip()}*"]
    for view in by_advisory(report):
        advisory = view.advisory
        if not view.affects_status:
            continue
        lines += ["", f"*{advisory.id}* [{advisory.severity}]: {_escape(advisory.summary)}"]
        for finding in view.findings:
            names = list(finding.workers) or ["no worker named"]
            lines.append(f"• {outcome_title(finding.outcome.value)}: {capped(names)}")
        links = [
            f"<{e.url}|build {e.build_id}> on {e.worker or 'unknown worker'} "
            f"({short_time(e.time, now)})"
            for e in view.evidence[:MAX_EVIDENCE_LINKS]
        ]
        if links:
            more = len(view.evidence) - len(links)
            lines.append("• Errors: " + "; ".join(links) + (f"; {more} more" if more > 0 else ""))
        lines.append(f"• Fix: {_escape(view.remediation.fix)}")
        if advisory.references:
            refs = ", ".join(f"<{r.url}|{r.type.lower()}>" for r in advisory.references)
            lines.append(f"• References: {refs}")
    others = [v for v in by_advisory(report) if not v.affects_status]
    if others:
        ids = ", ".join(v.advisory.id for v in others)
        lines += ["", f"Not affecting the status: {ids} (see summary.md)."]
    for signature in report.emerging:
        on = ", ".join(f"{w.worker} ({w.observed} builds)" for w in signature.workers)
        template = _escape(signature.stats.template)
        lines += ["", f"*{signature.id}* (emerging, no advisory yet) on {on}: `{template}`"]
    s = report.scanned
    lines += [
        "",
        f"Last {s.window}: {s.builds_listed} builds listed, {s.builds_read} read; "
        f"generated {report.generated_at}.",
    ]
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    """Slack reads `<`, `>` and `&` as markup; everything else in advisory prose is safe."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

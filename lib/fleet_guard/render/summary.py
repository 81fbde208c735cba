"""summary.md: the report for a person on call, Markdown that reads well rendered and raw.

The verdict and what the scan covered come first, then the affected workers in one table, then
one section per advisory with its workers grouped by outcome. Long lists are capped (report.json
has everything): forty "runtime unknown" workers must not bury the seven affected ones. Used
for `summary.md`, `fleet-guard scan --format markdown` and the demo.
"""

from __future__ import annotations

from collections.abc import Mapping

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.model import Outcome
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact
from fleet_guard.render.emerging import emerging_lines
from fleet_guard.render.view import (
    MAX_LISTED,
    OUTCOME_MEANING,
    AdvisoryView,
    by_advisory,
    outcome_title,
    outcomes_present,
    scan_time,
    verdict_line,
    when,
    worker_rows,
)
from fleet_guard.report import Report, unknown_facts

MAX_EVIDENCE_LINES = 10
MAX_TABLE_ROWS = 20


def render_markdown(report: Report) -> str:
    lines = [f"# Fleet Guard: {report.status.upper()}", ""]
    lines += _overview(report)
    lines += _affected_table(report)
    views = by_advisory(report)
    if not views:
        lines += ["No advisory applies to any worker.", ""]
    for view in views:
        lines += _advisory(view, report)
    lines += emerging_lines(report)
    lines += _meanings(report)
    s = report.scanned
    lines += [
        "---",
        f"Scanned {report.url} ({report.info.version or 'release unknown'}) in {s.seconds:.1f} s "
        f"with {s.api_calls} API calls. Generated {report.generated_at}.",
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
    s = report.scanned
    cut = " (cut short at source.max_builds: older builds were not seen)" if s.capped else ""
    cached = f", {s.builds_cached} more from earlier checks" if s.builds_cached else ""
    return [
        f"**Verdict:** {verdict_line(report)}.",
        "",
        f"**Coverage:** the last {s.window}: {s.builds_listed} builds listed{cut}, "
        f"{s.builds_read} build logs read{cached}; {len(report.workers)} workers registered.",
        "",
        *coverage_lines(report),
        f"Advisories at {report.threshold} and above decide the status.",
        "",
    ]


def _affected_table(report: Report) -> list[str]:
    affected = report.affected_workers
    if not affected:
        return []
    rows = worker_rows(report, affected[:MAX_TABLE_ROWS])
    lines = [
        f"## Affected workers ({len(affected)})",
        "",
        "| Worker | State | Release | Runtime | Uptime | Errors | Last error |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.name} | {r.state} | {r.release} | {r.runtime} | {r.uptime} | {r.evidence} "
        f"| {r.last_evidence} |"
        for r in rows
    ]
    if len(affected) > MAX_TABLE_ROWS:
        lines.append(f"\n… and {len(affected) - MAX_TABLE_ROWS} more in report.json")
    lines.append("")
    return lines


def _advisory(view: AdvisoryView, report: Report) -> list[str]:
    advisory = view.advisory
    counts = ", ".join(f"{outcome_title(f.outcome.value)} {len(f.workers)}" for f in view.findings)
    if view.affects_status:
        standing = "affects the status"
    elif advisory.severity < report.threshold:
        standing = "below the threshold"
    else:
        standing = "does not affect the status"
    lines = [
        f"## {advisory.id} [{advisory.severity}]: {standing}",
        "",
        advisory.summary,
        "",
        f"Workers by outcome: {counts}.",
        "",
    ]
    for finding in view.findings:
        lines += _outcome(finding, report)
    if view.evidence:
        lines += _evidence(view.evidence, "Evidence", report)
    if view.history:
        lines += _evidence(view.history, "History: errors before the restarts", report)
    # When every affected worker's facts say fixed, "What to check" (above) replaces the fix.
    if view.affects_status and view.remediation is advisory.remediation:
        lines.append(f"**Fix:** {advisory.remediation.fix}")
        if advisory.remediation.workaround:
            lines.append(f"**Workaround:** {advisory.remediation.workaround}")
        lines.append("")
    if advisory.references:
        links = " · ".join(f"[{_ref_label(r.type, r.url)}]({r.url})" for r in advisory.references)
        lines += [f"References: {links}", ""]
    return lines


def _outcome(finding: Finding, report: Report) -> list[str]:
    title = outcome_title(finding.outcome.value)
    workers = list(finding.workers)
    lines = [f"### {title} ({len(workers)} worker{'s' * (len(workers) != 1)})", ""]
    if not workers:
        lines += ["Errors that no worker could be named for.", ""]
        return lines
    for name in workers[:MAX_LISTED]:
        lines.append(f"- {name}: {_facts_line(report.facts.get(name, {}), finding)}")
    if len(workers) > MAX_LISTED:
        lines.append(f"- … and {len(workers) - MAX_LISTED} more in report.json")
    lines.append("")
    if finding.outcome is Outcome.RESOLVED:
        lines += _restarts(finding, report)
    if finding.facts_say_fixed:
        lines += [finding.note, "", f"**What to check:** {finding.remediation.fix}", ""]
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
    return lines


def _restarts(finding: Finding, report: Report) -> list[str]:
    """When each worker of a resolved finding started: after every error it had."""
    started = {w.name: w.start_time for w in report.workers if w.start_time > 0}
    now = scan_time(report)
    named = [n for n in finding.workers if n in started]
    lines = [f"- {n} restarted {when(started[n], now)}" for n in named[:MAX_LISTED]]
    if not lines:
        return []
    return ["Restarted since their errors (history, not counted):", *lines, ""]


def _facts_line(facts: Mapping[str, Fact], finding: Finding) -> str:
    """The facts the advisory's conditions look at, each with where it came from."""
    wanted = [c.fact for c in finding.advisory.conditions]
    parts = []
    for name in dict.fromkeys(wanted):
        fact = facts.get(name)
        parts.append(f"{name} {fact.value} ({fact.source.value})" if fact else f"{name} unknown")
    return ", ".join(parts) if parts else "its errors alone decide (the advisory tests no facts)"


def _evidence(items: list[Evidence], title: str, report: Report) -> list[str]:
    now = scan_time(report)
    lines = [f"### {title} ({len(items)} build{'s' * (len(items) != 1)}, newest first)", ""]
    for item in items[:MAX_EVIDENCE_LINES]:
        where = "/".join(p for p in (item.team, item.pipeline, item.job) if p) or item.team
        lines.append(
            f"- {when(item.time, now)}: [build {item.build_id}]({item.url}) {where} #{item.build}"
            f" on {item.worker or 'unknown worker'}: `{item.message}`"
        )
    if len(items) > MAX_EVIDENCE_LINES:
        lines.append(f"- … and {len(items) - MAX_EVIDENCE_LINES} more in report.json")
    lines.append("")
    return lines


def _meanings(report: Report) -> list[str]:
    present = outcomes_present(report)
    if not present:
        return []
    lines = ["## What the outcomes mean", ""]
    for outcome in present:
        meaning = OUTCOME_MEANING.get(outcome)
        if meaning:
            lines += [f"**{outcome_title(outcome)}:** {meaning}", ""]
    return lines


def _ref_label(kind: str, url: str) -> str:
    """`report: concourse/concourse#9027`, `fix: owner/repo@abc1234`; else the kind and host."""
    parts = url.split("/")
    label = parts[2] if len(parts) > 2 else url
    if len(parts) >= 7 and parts[2] == "github.com":
        repo, what, rest = f"{parts[3]}/{parts[4]}", parts[5], parts[6:]
        if what in ("issues", "pull"):
            label = f"{repo}#{rest[0]}"
        elif what == "commit":
            label = f"{repo}@{rest[0][:8]}"
        elif what == "releases" and len(rest) >= 2:
            label = f"{repo} {rest[-1]}"
        else:
            label = repo
    return f"{kind.lower()}: {label}"

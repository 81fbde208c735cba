"""`fleet-guard explain`: why each worker got its outcome, condition by condition."""

from __future__ import annotations

from collections.abc import Sequence

from fleet_guard.advisories.engine import judge
from fleet_guard.advisories.model import Advisory, Outcome
from fleet_guard.facts import web_facts
from fleet_guard.report import Report


def render_explanation(report: Report, advisory: Advisory, workers: Sequence[str]) -> str:
    """Why each worker got its outcome: every condition with the fact and its source."""
    # A resolved finding's evidence is history: judged as history again, not as current.
    evidence = [e for f in report.findings if f.outcome is not Outcome.RESOLVED for e in f.evidence]
    web = web_facts(report.info)
    lines = [f"{advisory.id} [{advisory.severity}]: {advisory.summary}", ""]
    for name in workers:
        own = [e for e in evidence if e.worker == name]
        past = [e for e in report.history if e.worker == name]
        verdict = judge(advisory, name, report.facts.get(name, {}), own, web, past)
        lines.append(f"{name}: {verdict.outcome.value}")
        for result in verdict.conditions:
            state = {True: "true", False: "false", None: "unknown"}[result.result]
            fact = result.value
            seen = f"{fact.value} ({fact.source.value}: {fact.detail})" if fact else "not known"
            lines.append(f"  {result.fact:<12} {result.test:<24} {state:<8} {seen}")
        count = len(verdict.evidence)
        needed = "required" if advisory.evidence_required else "optional"
        newest = f", newest build {verdict.evidence[0].build_id}" if count else ""
        if verdict.outcome is Outcome.RESOLVED:
            lines.append(
                f"  {'evidence':<12} {needed:<24} {count} matching error(s), all before the "
                f"worker's current start: history{newest}"
            )
        else:
            lines.append(f"  {'evidence':<12} {needed:<24} {count} matching error(s){newest}")
        lines.append("")
    return "\n".join(lines)

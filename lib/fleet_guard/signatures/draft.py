"""From an emerging signature to a draft advisory, for the operator to complete.

Works on report.json (plain data), so a draft can be made from any get's report, long after
the scan. The draft is a valid rule as it stands (its evidence pattern is the template made
back into an anchored regex, so it matches every occurrence the signature counted); what it
cannot know (the mechanism, the fix, the facts that decide it, references) is marked TODO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fleet_guard.errors import UserError
from fleet_guard.signatures.templates import template_regex

TODO = "TODO"
MAX_SUMMARY = 200


def pick_signature(report: Mapping[str, Any], wanted: str | None) -> Mapping[str, Any]:
    """The signature asked for, or the only one; a UserError naming the choices otherwise."""
    signatures = [s for s in report.get("emerging") or [] if isinstance(s, Mapping)]
    ids = [str(s.get("id")) for s in signatures]
    if wanted is None:
        if len(signatures) == 1:
            return signatures[0]
        if not signatures:
            raise UserError("the report has no emerging signature to draft a rule from")
        raise UserError(
            f"the report has {len(ids)} emerging signatures: "
            f"give --signature, one of {', '.join(ids)}"
        )
    for signature in signatures:
        if signature.get("id") == wanted:
            return signature
    known = f"; it has {', '.join(ids)}" if ids else "; it has none"
    raise UserError(f"no emerging signature {wanted!r} in the report{known}")


def draft_rule(
    signature: Mapping[str, Any],
    workers: Sequence[Mapping[str, Any]],
    *,
    rule_id: str | None = None,
) -> dict[str, Any]:
    """A rule document in the advisory format (schemas/rule.json)."""
    template = str(signature["template"])
    named = [w for w in signature.get("workers") or [] if isinstance(w, Mapping)]
    facts = {str(w.get("name")): w.get("facts") or {} for w in workers if isinstance(w, Mapping)}
    summary = f"{TODO}: {template}"
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    return {
        "id": rule_id or f"draft-{signature['id']}",
        "summary": summary,
        "details": _details(signature, named, facts),
        "severity": "medium",
        "conditions": {},
        "evidence": {
            "required": True,
            "patterns": [{"event": "error", "regex": template_regex(template)}],
        },
        "remediation": {
            "fix": f"{TODO}: the durable fix, once the cause is known.",
            "workaround": "Land the affected workers (put action: land) and rerun their builds.",
        },
        "references": [],
    }


def _details(
    signature: Mapping[str, Any],
    named: Sequence[Mapping[str, Any]],
    facts: Mapping[str, Mapping[str, Any]],
) -> str:
    lines = [
        f"Drafted from emerging signature {signature['id']}: {signature.get('builds')} builds "
        f"on {signature.get('workers_seen')} workers, "
        f"first seen {_when(signature.get('first_seen'))}, "
        f"last seen {_when(signature.get('last_seen'))}, p = {signature.get('p_value', 1.0):.2g}.",
        f"Example: {signature.get('example', '')}",
    ]
    if signature.get("release"):
        lines.append(f"Carried by the release class {signature['release']}.")
    lines.append("Concentrated on (builds seen vs expected from their share of placed work):")
    for worker in named:
        name = str(worker.get("name"))
        known = facts.get(name) or {}
        described = ", ".join(
            f"{fact} {value.get('value')} ({value.get('source')})"
            for fact, value in sorted(known.items())
            if isinstance(value, Mapping)
        )
        lines.append(
            f"- {name}: {worker.get('observed')} vs {worker.get('expected')}; "
            f"{described or 'no facts known'}"
        )
    lines.append(
        f"{TODO}: what goes wrong and why; add `conditions` on the facts these workers share "
        "and the others do not; add references; then set the severity."
    )
    return "\n".join(lines)


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return "unknown"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")

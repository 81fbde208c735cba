"""Applying advisories to workers: per worker an outcome, per advisory and outcome a finding.

Every condition is three-valued: true, false, or unknown when the fact it tests is unknown (or
unreadable). Per worker and advisory:

| conditions                    | the worker has evidence | no evidence                        |
|-------------------------------|-------------------------|------------------------------------|
| all true                      | matched                 | matched (possible if evidence is   |
|                               |                         | required)                          |
| some unknown, none false      | evidence-only           | possible                           |
| some false                    | evidence-only           | clear                              |

`evidence-only` means the signature was seen although the facts do not (or cannot yet) say the
worker is affected: the facts may be wrong, and the evidence is worth a look either way.

A rule without conditions (a symptom rule such as netlink-dump-interrupted) has nothing about a
worker's software to suspect, so with no evidence it is `clear`, not `possible` on every worker.

Evidence counts for an advisory only when `Evidence.advisory` is its id. `explained_by` is
applied earlier, by the evidence matcher: an event that a more specific advisory explains is
never recorded as evidence for the generic one. Facts implied by evidence are already in the
facts (see facts/gather.py), which is how a worker with a CNI error and no declared runtime becomes
`matched`. Evidence that no worker could be named for becomes an `evidence-only` finding
without workers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleet_guard.advisories.model import Advisory, Condition, Outcome, Remediation
from fleet_guard.advisories.versions import (
    VERSION_FACTS,
    VersionError,
    compare,
    describe_ranges,
    in_ranges,
    kind_for_fact,
)
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact, WorkerFacts

# Order of findings within one severity: the most actionable first.
_OUTCOME_ORDER = {
    Outcome.MATCHED: 0,
    Outcome.EVIDENCE_ONLY: 1,
    Outcome.POSSIBLE: 2,
    Outcome.RESOLVED: 3,
}

# Said instead of the fix when a rule has no `remediation.when_fixed` of its own.
_WHEN_FIXED = (
    "Check the facts marked inferred (`fleet-guard explain` shows each one and where it came "
    "from): a component may have been replaced on the worker without changing its release. "
    "Declare the real value in source.worker_facts, or write a rule for what it runs."
)


@dataclass(frozen=True)
class Finding:
    advisory: Advisory
    outcome: Outcome
    workers: tuple[str, ...]
    # For `resolved`: the evidence from before the workers' restarts (their history).
    evidence: tuple[Evidence, ...]
    # `evidence-only` on workers whose facts say they are not affected (a condition is false):
    # odd, and its own finding, so the report can say what to check instead of the fix.
    facts_say_fixed: bool = False
    # (worker, summary) of each advisory worker state seen; they count like evidence.
    states: tuple[tuple[str, str], ...] = ()

    @property
    def remediation(self) -> Remediation:
        """What to do: never the fix a worker already has, nothing for resolved history."""
        advice = self.advisory.remediation
        if self.outcome is Outcome.RESOLVED:
            return Remediation("", "")
        if self.facts_say_fixed:
            return Remediation(advice.when_fixed or _WHEN_FIXED, advice.workaround)
        return advice

    @property
    def note(self) -> str:
        """Why this finding reads as it does, when that is not obvious from its outcome."""
        if self.outcome is Outcome.RESOLVED:
            return (
                "Every error was produced before the worker's current start (a restart or an "
                "upgrade), and its facts no longer say it is affected: history, not a finding. "
                "It does not affect the status or the gate."
            )
        if self.facts_say_fixed:
            return (
                "These errors came after the worker's current start, yet its facts say it is "
                "not affected (or its release already ships the fix): a fact is probably wrong "
                "for this worker."
            )
        return ""


@dataclass(frozen=True)
class ConditionResult:
    """One test on one worker, with enough to explain it to a person."""

    fact: str
    # What was tested, as people write it: "equals containerd", ">=1.6.0 <1.7.0".
    test: str
    result: bool | None
    # The worker's fact (None when unknown); for `evidence` pseudo-results always None.
    value: Fact | None
    reason: str
    condition: Condition | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one advisory on one worker (None: evidence no worker could be named for)."""

    advisory: Advisory
    worker: str | None
    outcome: Outcome
    conditions: tuple[ConditionResult, ...]
    # The current evidence; for `resolved`, the history that was resolved.
    evidence: tuple[Evidence, ...]
    # The advisory's worker states this worker is in; they count like evidence.
    states: tuple[str, ...] = ()
    # The worker's release already ships the advisory's fix (`remediation.fixed_in`).
    runs_fix: bool = False

    @property
    def facts_say_fixed(self) -> bool:
        """Evidence on a worker that a condition rules out, or whose release has the fix."""
        return self.outcome is Outcome.EVIDENCE_ONLY and (
            self.runs_fix or any(r.result is False for r in self.conditions)
        )


def evaluate(
    advisories: Sequence[Advisory],
    facts: Mapping[str, WorkerFacts],
    evidence: Sequence[Evidence],
    web: Mapping[str, str],
    history: Sequence[Evidence] = (),
) -> list[Finding]:
    """Findings for every outcome but `clear`, most severe and most certain first.

    `history` is evidence from before its worker's current start (facts/restarts.py): it never
    makes an outcome, but a worker with only history for an advisory is `resolved`.
    """
    findings: list[Finding] = []
    for advisory in advisories:
        groups: dict[tuple[Outcome, bool], list[Verdict]] = defaultdict(list)
        for verdict in judge_fleet(advisory, facts, evidence, web, history):
            if verdict.outcome is not Outcome.CLEAR:
                groups[verdict.outcome, verdict.facts_say_fixed].append(verdict)
        for (outcome, fixed), verdicts in groups.items():
            findings.append(
                Finding(
                    advisory=advisory,
                    outcome=outcome,
                    workers=tuple(sorted(v.worker for v in verdicts if v.worker is not None)),
                    evidence=_newest_first(e for v in verdicts for e in v.evidence),
                    facts_say_fixed=fixed,
                    states=tuple(
                        (v.worker, state) for v in verdicts if v.worker for state in v.states
                    ),
                )
            )
    findings.sort(
        key=lambda f: (
            -f.advisory.severity,
            _OUTCOME_ORDER[f.outcome],
            f.facts_say_fixed,
            f.advisory.id,
        )
    )
    return findings


def verdicts(
    advisories: Sequence[Advisory],
    facts: Mapping[str, WorkerFacts],
    evidence: Sequence[Evidence],
    web: Mapping[str, str],
    history: Sequence[Evidence] = (),
) -> list[Verdict]:
    """Every (advisory, worker) outcome, `clear` included, for reports and `explain`."""
    return [v for a in advisories for v in judge_fleet(a, facts, evidence, web, history)]


def judge_fleet(
    advisory: Advisory,
    facts: Mapping[str, WorkerFacts],
    evidence: Sequence[Evidence],
    web: Mapping[str, str],
    history: Sequence[Evidence] = (),
) -> list[Verdict]:
    """One verdict per known worker, plus one for evidence not attributed to any worker."""
    own = [e for e in evidence if e.advisory == advisory.id]
    by_worker: dict[str | None, list[Evidence]] = defaultdict(list)
    for item in own:
        by_worker[item.worker].append(item)
    past: dict[str, list[Evidence]] = defaultdict(list)
    for item in history:
        if item.advisory == advisory.id and item.worker is not None:
            past[item.worker].append(item)
    names = sorted(set(facts) | {w for w in by_worker if w is not None} | set(past))
    result = [
        judge(
            advisory,
            name,
            facts.get(name, {}),
            by_worker.get(name, ()),
            web,
            past.get(name, ()),
        )
        for name in names
    ]
    if by_worker.get(None):
        result.append(
            Verdict(advisory, None, Outcome.EVIDENCE_ONLY, (), _newest_first(by_worker[None]))
        )
    return result


def judge(
    advisory: Advisory,
    worker: str | None,
    facts: WorkerFacts,
    evidence: Sequence[Evidence],
    web: Mapping[str, str],
    history: Sequence[Evidence] = (),
) -> Verdict:
    """The outcome of one advisory on one worker, given that worker's facts and evidence.

    History (evidence from before the worker's current start) only turns a verdict that would
    be `clear` or `possible` without evidence, with a condition now false or unknown (or none at
    all), into `resolved`: the process that produced it no longer runs, and nothing current
    says the new one is affected.
    """
    own = _newest_first(e for e in evidence if e.advisory == advisory.id)
    results = tuple(check(c, facts, web) for c in advisory.conditions)
    # A worker state is no signature of one failure: it counts only where the facts allow it.
    ruled_out = any(r.result is False for r in results)
    states = () if ruled_out else worker_states(advisory, facts, web)
    outcome = _outcome(advisory, [r.result for r in results], bool(own) or bool(states))
    past = _newest_first(e for e in history if e.advisory == advisory.id)
    # Conditions that all still hold keep the worker suspect, history or not.
    still = bool(results) and all(r.result is True for r in results)
    resolvable = outcome in (Outcome.CLEAR, Outcome.POSSIBLE) and not still
    if past and not own and not states and resolvable:
        return Verdict(advisory, worker, Outcome.RESOLVED, results, past)
    return Verdict(advisory, worker, outcome, results, own, states, _runs_fix(advisory, facts))


def _runs_fix(advisory: Advisory, facts: WorkerFacts) -> bool:
    """Whether every release the worker may run is the advisory's `fixed_in` or later."""
    fixed_in = advisory.remediation.fixed_in
    release = facts.get("concourse")
    if not fixed_in or release is None:
        return False
    try:
        return all(compare(r, fixed_in, "release") >= 0 for r in release.candidates)
    except VersionError:
        return False


def explain(
    advisory: Advisory,
    facts: WorkerFacts,
    evidence: Sequence[Evidence],
    web: Mapping[str, str],
) -> list[ConditionResult]:
    """Why one worker got its outcome: each condition, then whether evidence was seen."""
    own = [e for e in evidence if e.advisory == advisory.id]
    results = [check(c, facts, web) for c in advisory.conditions]
    ruled_out = any(r.result is False for r in results)
    states = () if ruled_out else worker_states(advisory, facts, web)
    if own:
        newest = _newest_first(own)[0]
        reason = f"{len(own)} matching event(s), newest in build {newest.build_id}"
    else:
        reason = "no matching event in the builds scanned"
    if states:
        reason += "; the worker is " + "; ".join(states)
    test = "required" if advisory.evidence_required else "optional"
    results.append(ConditionResult("evidence", test, bool(own) or bool(states), None, reason))
    return results


def check(condition: Condition, facts: WorkerFacts, web: Mapping[str, str]) -> ConditionResult:
    """True, False, or None when the fact (or the web fact it is compared with) is unknown."""
    fact = facts.get(condition.fact)
    test = _describe_test(condition)

    def result(value: bool | None, reason: str) -> ConditionResult:
        return ConditionResult(condition.fact, test, value, fact, reason, condition)

    if fact is None:
        return result(None, f"{condition.fact} is unknown; declare it in source.facts to decide")
    if fact.members:
        return _check_class(condition, fact, facts, web, result)
    said = f"{condition.fact} is {fact.value} ({fact.source}: {fact.detail})"
    try:
        if condition.ranges:
            kind = kind_for_fact(condition.fact)
            inside = in_ranges(fact.value, condition.ranges, kind)
            where = describe_ranges(condition.ranges)
            return result(inside, f"{said}, {'inside' if inside else 'outside'} {where}")
        if condition.equals is not None:
            same = _same(condition.fact, fact.value, condition.equals)
            return result(same, f"{said}{'' if same else f', not {condition.equals}'}")
        if condition.one_of:
            among = any(_same(condition.fact, fact.value, v) for v in condition.one_of)
            listed = ", ".join(condition.one_of)
            return result(among, f"{said}, {'one' if among else 'none'} of {listed}")
        if condition.differs_from is not None:
            other = web.get(condition.differs_from) or ""
            if not other:
                return result(None, f"{condition.differs_from} is unknown")
            differs = not _same(condition.fact, fact.value, other)
            verb = "differs from" if differs else "same as"
            return result(differs, f"{said}, {verb} {condition.differs_from} ({other})")
        if condition.below is not None:
            other = web.get(condition.below) or ""
            if not other:
                return result(None, f"{condition.below} is unknown")
            lower = compare(fact.value, other, kind_for_fact(condition.fact)) < 0
            verb = "below" if lower else "not below"
            return result(lower, f"{said}, {verb} {condition.below} ({other})")
        if condition.under is not None or condition.over is not None:
            return _check_duration(condition, fact, said, result)
    except VersionError:
        return result(None, f"{said}, which cannot be read as a version")
    return result(None, "the condition has no test")


def _check_class(
    condition: Condition,
    fact: Fact,
    facts: WorkerFacts,
    web: Mapping[str, str],
    result: Callable[[bool | None, str], ConditionResult],
) -> ConditionResult:
    """A fact naming a class of releases (`7.11.0..7.11.2`): the condition is decided only where
    every member gives the same answer, else unknown. `differs_from` asks whether the class
    contains the other value: a class holding the web node's release is not skewed from it."""
    answers = [
        check(condition, {**facts, condition.fact: Fact(m, fact.source, fact.detail)}, web).result
        for m in fact.members
    ]
    said = f"{condition.fact} is one of {', '.join(fact.members)} ({fact.source}: {fact.detail})"
    if condition.differs_from is not None and False in answers:
        return result(False, f"{said}, which includes {condition.differs_from}")
    if all(a is True for a in answers):
        return result(True, f"{said}: true for every one")
    if all(a is False for a in answers):
        return result(False, f"{said}: false for every one")
    return result(None, f"{said}: true for some, not all; declare the release to decide")


def _check_duration(
    condition: Condition,
    fact: Fact,
    said: str,
    result: Callable[[bool | None, str], ConditionResult],
) -> ConditionResult:
    """`uptime` against `under` / `over`, all in seconds."""
    try:
        seconds = int(fact.value)
    except ValueError:
        return result(None, f"{said}, which is not a number of seconds")
    said = f"{condition.fact} is {_duration(seconds)} ({fact.source}: {fact.detail})"
    if condition.under is not None:
        shorter = seconds < condition.under
        return result(
            shorter, f"{said}, {'under' if shorter else 'not under'} {_duration(condition.under)}"
        )
    longer = seconds > (condition.over or 0)
    return result(
        longer, f"{said}, {'over' if longer else 'not over'} {_duration(condition.over or 0)}"
    )


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def worker_states(
    advisory: Advisory, facts: WorkerFacts, web: Mapping[str, str]
) -> tuple[str, ...]:
    """The summaries of the advisory's worker states this worker is in (every test true)."""
    return tuple(
        state.summary
        for state in advisory.worker_states
        if all(check(c, facts, web).result is True for c in state.conditions)
    )


def _outcome(advisory: Advisory, results: Sequence[bool | None], has_evidence: bool) -> Outcome:
    if any(r is False for r in results):
        return Outcome.EVIDENCE_ONLY if has_evidence else Outcome.CLEAR
    if any(r is None for r in results):
        return Outcome.EVIDENCE_ONLY if has_evidence else Outcome.POSSIBLE
    if has_evidence or not advisory.evidence_required:
        return Outcome.MATCHED
    # Every condition holds but the symptom the rule requires was not seen. With no conditions
    # at all nothing about the worker is suspect, so that is simply clear.
    return Outcome.POSSIBLE if results else Outcome.CLEAR


def _same(fact: str, value: str, expected: str) -> bool:
    """Versions compare as versions (`v1.6.0` is `1.6.0`); other facts ignore case."""
    if fact in VERSION_FACTS:
        try:
            return compare(value, expected, kind_for_fact(fact)) == 0
        except VersionError:
            pass
    return value.strip().casefold() == expected.strip().casefold()


def _describe_test(condition: Condition) -> str:
    if condition.ranges:
        return f"in {describe_ranges(condition.ranges)}"
    if condition.equals is not None:
        return f"equals {condition.equals}"
    if condition.one_of:
        return f"one of {', '.join(condition.one_of)}"
    if condition.differs_from is not None:
        return f"differs from {condition.differs_from}"
    if condition.below is not None:
        return f"below {condition.below}"
    if condition.under is not None:
        return f"under {_duration(condition.under)}"
    if condition.over is not None:
        return f"over {_duration(condition.over)}"
    return "no test"


def _newest_first(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    return tuple(sorted(evidence, key=lambda e: (e.time or 0, e.build_id), reverse=True))

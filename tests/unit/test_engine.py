"""Rule outcomes per worker and the findings they add up to, on the incident's fleets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet_guard.advisories.engine import (
    Finding,
    check,
    evaluate,
    explain,
    judge,
    verdicts,
)
from fleet_guard.advisories.loader import compile_rule, load_builtin_rules
from fleet_guard.advisories.model import Condition, Outcome
from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact, FactSource, build_facts
from fleet_guard.facts.releases import ReleaseTable

RULES = load_builtin_rules()
BY_ID = {r.id: r for r in RULES}
TABLE = ReleaseTable.load()
WORKERS = [f"w{i}" for i in range(1, 6)]
EINTR = (
    "find or create container on worker {w}: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


def _worker(name: str, **kwargs: Any) -> Worker:
    values: dict[str, Any] = {"state": "running", "platform": "linux", "version": "2.5"}
    values.update(kwargs)
    return Worker(name=name, **values)


def _evidence(
    worker: str | None,
    advisory: str = "cni-netlink-eintr",
    *,
    build_id: int = 100,
    time: int | None = 1000,
) -> Evidence:
    return Evidence(
        advisory=advisory,
        build_id=build_id,
        team="main",
        pipeline="app",
        job="unit",
        build=str(build_id),
        worker=worker,
        message=EINTR.format(w=worker),
        url=f"https://ci.example.com/builds/{build_id}",
        time=time,
        implies={"runtime": "containerd"} if worker else {},
    )


def _scan(
    release: str,
    evidence: Sequence[Evidence] = (),
    facts: Mapping[str, str] | None = None,
    workers: Sequence[Worker] | None = None,
) -> list[Finding]:
    info = Info(version=release, worker_version="2.5")
    config = SourceConfig(url="https://ci.example.com", facts=dict(facts or {}))
    fleet = list(workers) if workers is not None else [_worker(w) for w in WORKERS]
    worker_facts = build_facts(fleet, info, config, evidence, TABLE)
    web = {"web.worker_version": info.worker_version, "web.concourse": info.version}
    return evaluate(RULES, worker_facts, evidence, web)


def _outcomes(findings: Sequence[Finding], advisory: str) -> dict[Outcome, tuple[str, ...]]:
    return {f.outcome: f.workers for f in findings if f.advisory.id == advisory}


def _affecting(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.outcome.affects]


# --- the acceptance cases ---------------------------------------------------------------------


def test_7_12_0_with_evidence_on_two_workers_and_no_declared_facts() -> None:
    evidence = [_evidence("w1", build_id=1), _evidence("w2", build_id=2)]
    findings = _scan("7.12.0", evidence)
    assert _outcomes(findings, "cni-netlink-eintr") == {
        Outcome.MATCHED: ("w1", "w2"),
        Outcome.POSSIBLE: ("w3", "w4", "w5"),
    }
    matched = next(f for f in findings if f.outcome is Outcome.MATCHED)
    assert matched.advisory.id == "cni-netlink-eintr"
    assert [e.build_id for e in matched.evidence] == [2, 1]


def test_7_12_0_with_declared_containerd_matches_every_worker() -> None:
    findings = _scan("7.12.0", [_evidence("w1")], facts={"runtime": "containerd"})
    assert _outcomes(findings, "cni-netlink-eintr") == {Outcome.MATCHED: tuple(WORKERS)}


def test_7_13_2_without_evidence_affects_nothing() -> None:
    findings = _scan("7.13.2")
    assert _affecting(findings) == []
    assert _outcomes(findings, "cni-netlink-eintr") == {}  # CNI 1.7.1 → clear


def test_7_13_2_with_declared_old_plugins_matches_every_worker() -> None:
    findings = _scan("7.13.2", facts={"runtime": "containerd", "cni_plugins": "1.6.2"})
    assert _outcomes(findings, "cni-netlink-eintr") == {Outcome.MATCHED: tuple(WORKERS)}


def test_evidence_on_a_fixed_release_is_evidence_only() -> None:
    findings = _scan("7.13.2", [_evidence("w3")])
    assert _outcomes(findings, "cni-netlink-eintr") == {Outcome.EVIDENCE_ONLY: ("w3",)}
    (finding,) = [f for f in findings if f.advisory.id == "cni-netlink-eintr"]
    assert finding.outcome.affects
    assert [e.worker for e in finding.evidence] == ["w3"]


def test_evidence_with_an_unknown_fact_is_evidence_only() -> None:
    # cni_plugins is unknown (a release the table lacks); the runtime is observed.
    findings = _scan("8.2.0", [_evidence("w1")])
    outcomes = _outcomes(findings, "cni-netlink-eintr")
    assert outcomes[Outcome.EVIDENCE_ONLY] == ("w1",)
    assert outcomes[Outcome.POSSIBLE] == ("w2", "w3", "w4", "w5")


def test_7_13_0_and_7_13_1_are_affected_again() -> None:
    for release in ("7.13.0", "7.13.1"):
        findings = _scan(release, facts={"runtime": "containerd"})
        assert _outcomes(findings, "cni-netlink-eintr") == {Outcome.MATCHED: tuple(WORKERS)}


def test_7_12_1_went_back_to_safe_plugins() -> None:
    findings = _scan("7.12.1", facts={"runtime": "containerd"})
    assert _outcomes(findings, "cni-netlink-eintr") == {}


def test_worker_version_skew_and_stalled_worker() -> None:
    fleet = [_worker("w1"), _worker("old", version="2.4"), _worker("down", state="stalled")]
    findings = _scan("7.13.2", workers=fleet)
    assert _outcomes(findings, "worker-version-skew") == {Outcome.MATCHED: ("old",)}
    assert _outcomes(findings, "stalled-worker") == {Outcome.MATCHED: ("down",)}


def test_runc_cve_before_and_after_the_fix() -> None:
    before = _scan("7.11.1", facts={"runtime": "containerd"})
    assert _outcomes(before, "runc-cve-2024-21626") == {Outcome.MATCHED: tuple(WORKERS)}
    assert before[0].advisory.id == "runc-cve-2024-21626"  # critical comes first
    after = _scan("7.11.2", facts={"runtime": "containerd"})
    assert _outcomes(after, "runc-cve-2024-21626") == {}


def test_guardian_on_cgroup_v2_before_7_13() -> None:
    facts = {"runtime": "guardian", "cgroup": "v2"}
    assert _outcomes(_scan("7.12.1", facts=facts), "guardian-cgroup-v2") == {
        Outcome.MATCHED: tuple(WORKERS)
    }
    assert _outcomes(_scan("7.13.0", facts=facts), "guardian-cgroup-v2") == {}


def test_a_ghost_worker_named_only_by_evidence_is_judged() -> None:
    findings = _scan("7.12.0", [_evidence("gone")])
    assert "gone" in _outcomes(findings, "cni-netlink-eintr")[Outcome.MATCHED]


def test_unattributed_evidence_is_evidence_only_without_workers() -> None:
    findings = _scan("7.13.2", [_evidence(None)])
    assert _outcomes(findings, "cni-netlink-eintr") == {Outcome.EVIDENCE_ONLY: ()}
    (finding,) = [f for f in findings if f.advisory.id == "cni-netlink-eintr"]
    assert len(finding.evidence) == 1


def test_unattributed_evidence_joins_the_evidence_only_finding() -> None:
    # The release is unknown: w2's CNI plugins are unknown, as the unattributed worker's.
    findings = _scan("", [_evidence(None, build_id=1), _evidence("w2", build_id=2)])
    (finding,) = [
        f
        for f in findings
        if f.advisory.id == "cni-netlink-eintr" and f.outcome is Outcome.EVIDENCE_ONLY
    ]
    assert (finding.outcome, finding.workers) == (Outcome.EVIDENCE_ONLY, ("w2",))
    assert [e.build_id for e in finding.evidence] == [2, 1]
    assert not finding.facts_say_fixed


def test_evidence_on_a_worker_whose_facts_say_fixed_is_its_own_finding() -> None:
    findings = _scan("7.13.2", [_evidence(None, build_id=1), _evidence("w2", build_id=2)])
    unattributed, fixed = [f for f in findings if f.advisory.id == "cni-netlink-eintr"]
    assert (fixed.outcome, fixed.workers, fixed.facts_say_fixed) == (
        Outcome.EVIDENCE_ONLY,
        ("w2",),
        True,
    )
    assert "--containerd-cni-plugins-dir" in fixed.remediation.fix
    assert "7.13.2" not in fixed.remediation.fix, "never the upgrade the worker already has"
    assert "facts say it is not affected" in fixed.note
    assert (unattributed.workers, [e.build_id for e in unattributed.evidence]) == ((), [1])
    assert unattributed.remediation.fix.startswith("Upgrade")


def test_symptom_rule_only_where_seen() -> None:
    findings = _scan("7.13.2", [_evidence("w4", "netlink-dump-interrupted")])
    assert _outcomes(findings, "netlink-dump-interrupted") == {Outcome.MATCHED: ("w4",)}


def test_evidence_counts_only_for_its_own_advisory() -> None:
    findings = _scan("7.13.2", [_evidence("w4", "netlink-dump-interrupted")])
    # The observed runtime is containerd, but CNI 1.7.1 is fixed and this is not its evidence.
    assert _outcomes(findings, "cni-netlink-eintr") == {}


# --- ordering ---------------------------------------------------------------------------------


def test_findings_sort_by_severity_then_outcome_then_id() -> None:
    fleet = [_worker(w) for w in WORKERS] + [_worker("old", version="2.4")]
    findings = _scan("7.11.1", [_evidence("w1")], workers=fleet)
    keys = [(f.advisory.id, f.outcome) for f in findings]
    assert keys == [
        ("runc-cve-2024-21626", Outcome.MATCHED),
        ("runc-cve-2024-21626", Outcome.POSSIBLE),
        ("cni-netlink-eintr", Outcome.EVIDENCE_ONLY),
        ("guardian-cgroup-v2", Outcome.POSSIBLE),
        ("worker-api-behind", Outcome.MATCHED),  # the worker on 2.4
        ("worker-version-skew", Outcome.MATCHED),
        # conditions hold on the containerd workers, its symptom was not seen
        ("containerd-task-not-found", Outcome.POSSIBLE),
    ]


def test_evidence_is_newest_first_by_time_then_build() -> None:
    evidence = [
        _evidence("w1", build_id=5, time=100),
        _evidence("w1", build_id=7, time=300),
        _evidence("w2", build_id=9, time=300),
        _evidence("w2", build_id=1, time=None),
    ]
    (finding,) = [f for f in _scan("7.12.0", evidence) if f.outcome is Outcome.MATCHED]
    assert [e.build_id for e in finding.evidence] == [9, 7, 5, 1]


# --- conditions and explanations --------------------------------------------------------------


def _facts(**values: str) -> dict[str, Fact]:
    return {k: Fact(v, FactSource.OPERATOR, "source.facts") for k, v in values.items()}


WEB = {"web.worker_version": "2.5", "web.concourse": "7.12.0"}


def test_conditions_are_three_valued() -> None:
    rule = BY_ID["cni-netlink-eintr"]
    runtime, cni = rule.conditions
    assert check(runtime, _facts(runtime="containerd"), WEB).result is True
    assert check(runtime, _facts(runtime="guardian"), WEB).result is False
    assert check(runtime, {}, WEB).result is None
    assert check(cni, _facts(cni_plugins="v1.6.1"), WEB).result is True
    assert check(cni, _facts(cni_plugins="version unknown"), WEB).result is None


def test_equality_on_versions_reads_them_as_versions() -> None:
    condition = Condition(fact="runc", equals="1.1.12")
    assert check(condition, _facts(runc="v1.1.12"), WEB).result is True
    assert (
        check(
            Condition(fact="runtime", one_of=("guardian", "containerd")),
            _facts(runtime="Containerd"),
            WEB,
        ).result
        is True
    )


def test_differs_from_needs_both_sides() -> None:
    condition = Condition(fact="worker_api", differs_from="web.worker_version")
    assert check(condition, _facts(worker_api="2.4"), WEB).result is True
    assert check(condition, _facts(worker_api="2.5"), WEB).result is False
    assert check(condition, _facts(worker_api="2.4"), {}).result is None
    assert check(condition, {}, WEB).result is None


def test_required_evidence_missing_is_possible_when_conditions_hold() -> None:
    raw = {
        "id": "kernel-symptom",
        "summary": "s",
        "severity": "low",
        "conditions": {"kernel": {"ranges": [{"introduced": "5.4", "fixed": "5.11"}]}},
        "evidence": {"required": True, "patterns": [{"event": "error", "regex": "oops"}]},
        "remediation": {"fix": "f"},
    }
    rule = compile_rule(raw, where="test", builtin=False)
    assert judge(rule, "w1", _facts(kernel="5.10.0-21-amd64"), [], WEB).outcome is Outcome.POSSIBLE
    seen = [_evidence("w1", "kernel-symptom")]
    assert judge(rule, "w1", _facts(kernel="5.10.0-21-amd64"), seen, WEB).outcome is Outcome.MATCHED
    assert judge(rule, "w1", _facts(kernel="6.1.0"), [], WEB).outcome is Outcome.CLEAR


def test_a_symptom_rule_without_conditions_is_clear_where_not_seen() -> None:
    rule = BY_ID["netlink-dump-interrupted"]
    assert judge(rule, "w1", {}, [], WEB).outcome is Outcome.CLEAR


def test_verdicts_include_clear() -> None:
    facts = {"w1": _facts(state="running"), "w2": _facts(state="stalled")}
    found = verdicts([BY_ID["stalled-worker"]], facts, [], WEB)
    assert [(v.worker, v.outcome) for v in found] == [
        ("w1", Outcome.CLEAR),
        ("w2", Outcome.MATCHED),
    ]


def test_explain_says_which_fact_decided_and_where_it_came_from() -> None:
    rule = BY_ID["cni-netlink-eintr"]
    facts = {
        "runtime": Fact("containerd", FactSource.OBSERVED, "build 1 matched cni-netlink-eintr"),
        "cni_plugins": Fact(
            "1.7.1",
            FactSource.INFERRED,
            "release table: Concourse 7.13.2 bundles CNI plugins 1.7.1",
        ),
    }
    runtime, cni, evidence = explain(rule, facts, [_evidence("w1")], WEB)
    assert (runtime.fact, runtime.test, runtime.result) == ("runtime", "equals containerd", True)
    assert "observed: build 1 matched cni-netlink-eintr" in runtime.reason
    assert (cni.test, cni.result) == ("in >=1.6.0 <1.7.0", False)
    assert cni.value is not None and cni.value.source is FactSource.INFERRED
    assert "outside >=1.6.0 <1.7.0" in cni.reason
    assert (evidence.fact, evidence.test, evidence.result) == ("evidence", "optional", True)


def test_explain_names_unknown_facts() -> None:
    (runtime, _cni, evidence) = explain(BY_ID["cni-netlink-eintr"], {}, [], WEB)
    assert runtime.result is None and runtime.value is None
    assert "runtime is unknown" in runtime.reason
    assert evidence.result is False


def test_findings_are_one_per_advisory_and_outcome() -> None:
    findings = _scan("7.12.0", [_evidence("w1")])
    pairs = [(f.advisory.id, f.outcome) for f in findings]
    assert len(pairs) == len(set(pairs))
    assert all(f.outcome is not Outcome.CLEAR for f in findings)
    assert all(list(f.workers) == sorted(f.workers) for f in findings)

"""Restarts end old evidence: history, `resolved`, and evidence that contradicts fixed facts."""

from __future__ import annotations

from dataclasses import replace

from fleet_guard.advisories.engine import evaluate
from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.advisories.model import Outcome
from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig
from fleet_guard.evidence import Evidence
from fleet_guard.facts import build_facts, web_facts
from fleet_guard.facts.releases import ReleaseTable
from fleet_guard.facts.restarts import split_by_restart
from fleet_guard.render import render_markdown, render_message, render_text
from fleet_guard.report import Report, Scanned, report_json
from fleet_guard.schema import problems
from fleet_guard.severity import Severity
from fleet_guard.simulator.loader import bundled_types_by_release

RULES = load_builtin_rules()
RESTART = 1_700_000_000


def _evidence(worker: str | None, time: int | None, build_id: int = 1) -> Evidence:
    return Evidence(
        advisory="cni-netlink-eintr",
        build_id=build_id,
        team="main",
        pipeline="p",
        job="j",
        build=str(build_id),
        worker=worker,
        message="cni net setup: interrupted system call",
        url=f"https://ci/builds/{build_id}",
        time=time,
        implies={"runtime": "containerd"} if worker else {},
    )


def _worker(name: str, release: str, start: int = RESTART) -> Worker:
    types = dict(bundled_types_by_release()[release])
    return Worker(name, "running", "linux", start_time=start, resource_types=types)


def _report(workers: list[Worker], evidence: list[Evidence], web: str = "7.13.2") -> Report:
    info = Info(version=web, worker_version="2.5")
    split = split_by_restart(evidence, workers)
    config = SourceConfig(url="https://ci")
    facts = build_facts(workers, info, config, split.current, ReleaseTable.load())
    findings = evaluate(RULES, facts, split.current, web_facts(info), split.history)
    return Report(
        url="https://ci",
        info=info,
        workers=workers,
        facts=facts,
        findings=findings,
        threshold=Severity.MEDIUM,
        scanned=Scanned(window="24h", builds_listed=1, builds_read=1, api_calls=4),
        generated_at="2026-12-01T10:00:00Z",
        history=split.history,
    )


def _outcomes(
    report: Report, advisory: str = "cni-netlink-eintr"
) -> dict[Outcome, tuple[str, ...]]:
    return {f.outcome: f.workers for f in report.findings if f.advisory.id == advisory}


def test_evidence_before_the_start_is_history_and_unknown_stays_current() -> None:
    workers = [_worker("w-1", "7.13.2"), Worker("w-0", "running", "linux", start_time=0)]
    items = [
        _evidence("w-1", RESTART - 1, 1),
        _evidence("w-1", RESTART + 1, 2),
        _evidence("w-1", None, 3),
        _evidence("w-0", 5, 4),
        _evidence("gone", 5, 5),
        _evidence(None, 5, 6),
    ]
    split = split_by_restart(items, workers)
    assert [e.build_id for e in split.history] == [1]
    assert [e.build_id for e in split.current] == [2, 3, 4, 5, 6]


def test_after_the_fix_old_evidence_is_resolved_and_the_fleet_healthy() -> None:
    workers = [_worker("w-1", "7.13.2"), _worker("w-2", "7.13.2")]
    report = _report(workers, [_evidence("w-1", RESTART - 60)])
    assert _outcomes(report) == {Outcome.RESOLVED: ("w-1",)}
    assert report.status == "healthy"
    assert report.fingerprint == _report(workers, []).fingerprint
    assert "runtime" not in report.facts["w-1"], "old evidence implies nothing"
    document = report_json(report)
    assert problems(document, "report", where="report.json") == []
    (finding,) = [f for f in document["findings"] if f["advisory"] == "cni-netlink-eintr"]
    assert finding["affects_status"] is False
    assert finding["restarts"] == [
        {"worker": "w-1", "start_time": RESTART, "started_at": "2023-11-14T22:13:20Z"}
    ]
    assert finding["remediation"]["fix"] == ""
    assert [e["build_id"] for e in finding["evidence"]] == [1]
    summary = render_markdown(report)
    assert "### Resolved (1 worker)" in summary
    assert "- w-1 restarted 2023-11-14 22:13 UTC" in summary
    assert "**Fix:**" not in summary


def test_a_worker_restarted_on_the_old_release_keeps_only_what_its_facts_say() -> None:
    # Restarted, still 7.12.0 (CNI 1.6.0): runtime unknown again, so possible, not matched;
    # its history is resolved, for it proves nothing about the new process.
    report = _report([_worker("w-1", "7.12.0")], [_evidence("w-1", RESTART - 60)], web="7.12.0")
    assert _outcomes(report) == {Outcome.RESOLVED: ("w-1",)}
    declared = SourceConfig(url="https://ci", facts={"runtime": "containerd"})
    info = Info(version="7.12.0", worker_version="2.5")
    workers = [_worker("w-1", "7.12.0")]
    facts = build_facts(workers, info, declared, [], ReleaseTable.load())
    history = [_evidence("w-1", RESTART - 60)]
    findings = evaluate(RULES, facts, [], web_facts(info), history)
    cni = {f.outcome for f in findings if f.advisory.id == "cni-netlink-eintr"}
    assert cni == {Outcome.MATCHED}, "conditions still true: matched, history or not"


def test_evidence_after_the_restart_on_a_fixed_worker_stays_affecting_and_says_why() -> None:
    report = _report([_worker("w-1", "7.13.2")], [_evidence("w-1", RESTART + 60)])
    assert _outcomes(report) == {Outcome.EVIDENCE_ONLY: ("w-1",)}
    assert report.status == "affected"
    (finding,) = [f for f in report_json(report)["findings"] if f["outcome"] == "evidence-only"]
    assert "--containerd-cni-plugins-dir" in finding["remediation"]["fix"]
    assert "Upgrade" not in finding["remediation"]["fix"]
    assert "facts say it is not affected" in finding["note"]


def test_an_upgrade_in_progress_judges_each_worker_by_its_own_release() -> None:
    workers = [_worker("new", "7.13.2"), _worker("old", "7.12.0")]
    evidence = [_evidence("new", RESTART - 60, 1), _evidence("old", RESTART + 60, 2)]
    report = _report(workers, evidence)
    assert _outcomes(report) == {Outcome.MATCHED: ("old",), Outcome.RESOLVED: ("new",)}
    assert _outcomes(report, "worker-release-skew") == {Outcome.MATCHED: ("old",)}
    matched = next(f for f in report_json(report)["findings"] if f["outcome"] == "matched")
    assert "7.13.2" in matched["remediation"]["fix"], "the old worker does not run it yet"
    assert report.status == "affected"
    resolved_only = replace(report, findings=[f for f in report.findings if f.workers == ("new",)])
    assert resolved_only.status == "healthy"


def test_no_rendering_recommends_the_fix_a_fixed_worker_already_has() -> None:
    report = _report([_worker("w-1", "7.13.2")], [_evidence("w-1", RESTART + 60)])
    for text in (render_markdown(report), render_message(report), render_text(report)):
        assert "Upgrade Concourse" not in text
        assert "--containerd-cni-plugins-dir" in text


def test_history_is_not_listed_as_current_errors() -> None:
    workers = [_worker("new", "7.13.2"), _worker("old", "7.12.0")]
    evidence = [_evidence("new", RESTART - 60, 1), _evidence("old", RESTART + 60, 2)]
    report = _report(workers, evidence)
    message = render_message(report)
    assert "build 2" in message and "build 1>" not in message and "build 1 " not in message
    summary = render_markdown(report)
    assert "### History: errors before the restarts (1 build, newest first)" in summary
    assert "### Evidence (1 build, newest first)" in summary


def test_history_of_a_symptom_rule_whose_conditions_still_hold_stays_possible() -> None:
    eintr = next(a for a in RULES if a.id == "cni-netlink-eintr")
    required = replace(eintr, evidence_required=True)
    declared = SourceConfig(url="https://ci", facts={"runtime": "containerd"})
    info = Info(version="7.12.0", worker_version="2.5")
    facts = build_facts([_worker("w-1", "7.12.0")], info, declared, [], ReleaseTable.load())
    history = [_evidence("w-1", RESTART - 60)]
    (finding,) = evaluate([required], facts, [], web_facts(info), history)
    assert (finding.outcome, finding.workers) == (Outcome.POSSIBLE, ("w-1",))
    symptom = replace(required, conditions=())
    (finding,) = evaluate([symptom], facts, [], web_facts(info), history)
    assert finding.outcome is Outcome.RESOLVED


def test_a_worker_on_the_fixed_release_is_never_told_to_upgrade_to_it() -> None:
    # 7.14.1..7.14.3 disagree on CNI plugins (1.7.1, 1.8.0): unknown, yet all ship the fix.
    report = _report([_worker("w-1", "7.14.2")], [_evidence("w-1", RESTART + 60)], web="7.14.2")
    (finding,) = [f for f in report.findings if f.advisory.id == "cni-netlink-eintr"]
    assert (finding.outcome, finding.facts_say_fixed) == (Outcome.EVIDENCE_ONLY, True)
    assert "Upgrade" not in finding.remediation.fix
    assert "cni_plugins" not in report.facts["w-1"]

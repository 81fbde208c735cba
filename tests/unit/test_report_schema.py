"""schemas/report.json describes exactly what report_json writes: no more, no less."""

from __future__ import annotations

import copy
from dataclasses import replace

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.advisories.model import Outcome
from fleet_guard.concourse.models import Info, Worker
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact, FactSource
from fleet_guard.report import Coverage, Report, Scanned, UnreadBuild, report_json
from fleet_guard.schema import problems
from fleet_guard.severity import Severity
from fleet_guard.signatures.detect import Signature, TemplateStats, WorkerCount

RULES = {rule.id: rule for rule in load_builtin_rules()}


def evidence(build_id: int, worker: str | None, job: str | None = "unit") -> Evidence:
    return Evidence(
        advisory="cni-netlink-eintr",
        build_id=build_id,
        team="platform",
        pipeline="backend" if job else None,
        job=job,
        build="12",
        worker=worker,
        message='cni net setup: plugin type="loopback" failed (add): interrupted system call',
        url=f"https://ci.example.com/builds/{build_id}",
        time=1_700_000_000 if worker else None,
    )


def sample_report() -> Report:
    workers = [
        Worker("w-1", "running", "linux", tags=("large",)),
        Worker("w-3", "landing", "linux", team="platform"),
    ]
    facts = {
        "w-1": {
            "runtime": Fact("containerd", FactSource.OBSERVED, "build 1201 matched"),
            "cni_plugins": Fact("1.6.0", FactSource.INFERRED, "release table"),
        },
        "w-3": {"runtime": Fact("containerd", FactSource.OPERATOR, "source.facts")},
        "w-9": {},
    }
    findings = [
        Finding(
            RULES["cni-netlink-eintr"],
            Outcome.MATCHED,
            ("w-1", "w-3"),
            (evidence(1201, "w-1"), evidence(1211, None, job=None)),
        ),
        Finding(RULES["guardian-cgroup-v2"], Outcome.POSSIBLE, ("w-9",), ()),
    ]
    return Report(
        url="https://ci.example.com",
        info=Info("7.12.0", "2.5"),
        workers=workers,
        facts=facts,
        findings=findings,
        threshold=Severity.HIGH,
        scanned=Scanned("24h", 171, 12, 17, capped=True, seconds=0.25),
        generated_at="2026-01-02T03:04:05Z",
    )


def test_report_json_validates():
    document = report_json(sample_report())
    assert problems(document, "report", where="report") == []
    assert document["workers"][2] == {
        "name": "w-9",
        "registered": False,
        "state": "unknown",
        "platform": "",
        "team": "",
        "tags": [],
        "facts": {},
    }


def test_the_get_additions_validate():
    document = report_json(sample_report()) | {
        "version": {"fingerprint": "0123456789abcdef", "seq": "3"},
        "current": False,
    }
    assert problems(document, "report", where="report") == []
    document["version"]["seq"] = 3
    assert problems(document, "report", where="report") == [
        "report.version.seq: 3 is not of type 'string'"
    ]


def test_the_names_the_issue_fixes_are_required():
    required = {
        "status",
        "fingerprint",
        "concourse",
        "workers",
        "findings",
        "scanned",
        "generated_at",
    }
    document = report_json(sample_report())
    for key in required:
        broken = {k: v for k, v in document.items() if k != key}
        assert problems(broken, "report", where="report") == [
            f"report.{key}: required key is missing"
        ]


def test_a_field_the_schema_does_not_know_fails_so_drift_is_caught():
    document = report_json(sample_report())
    for path in (
        [],
        ["concourse"],
        ["workers", 0],
        ["workers", 0, "facts", "runtime"],
        ["findings", 0],
        ["findings", 0, "evidence", 0],
        ["findings", 0, "remediation"],
        ["scanned"],
    ):
        broken = copy.deepcopy(document)
        target = broken
        for part in path:
            target = target[part]
        target["surprise"] = 1
        assert any("surprise: unknown key" in p for p in problems(broken, "report", "report"))


def test_coverage_validates_and_makes_an_unaffected_scan_incomplete():
    gaps = Coverage(
        unread=(
            UnreadBuild(7, "platform", "backend", "unit", "forbidden"),
            UnreadBuild(8, "oss", None, None, "over_cap"),
        ),
        teams_not_visible=("secret",),
        max_log_bytes=65536,
    )
    calm = replace(sample_report(), findings=[], coverage=gaps)
    document = report_json(calm)
    assert problems(document, "report", where="report") == []
    assert document["status"] == "incomplete"
    assert document["coverage"]["builds_not_read"] == {
        "forbidden": 1,
        "gone": 0,
        "server_error": 0,
        "cut": 0,
        "over_cap": 1,
    }
    said = " ".join(document["coverage"]["problems"])
    assert "viewer role on the team platform" in said
    assert "raise max_log_bytes" in said and "65536" in said
    assert "secret" in said
    healthy = replace(calm, coverage=Coverage())
    assert healthy.status == "healthy"
    assert healthy.fingerprint != calm.fingerprint, "emit: all sees the step to incomplete"
    assert calm.version().status == "incomplete"


def test_affecting_findings_beat_coverage_gaps():
    gaps = Coverage(listing_capped=True, max_builds=10, window="24h")
    report = replace(sample_report(), coverage=gaps)
    assert report.status == "affected"
    assert report.fingerprint == sample_report().fingerprint
    assert any("max_builds (10)" in p for p in report_json(report)["coverage"]["problems"])


def _signature() -> Signature:
    stats = TemplateStats("failed to mount <path>", "failed to mount /x on w-4")
    stats.occurrences = 9
    stats.per_worker.update({"w-4": 8, "w-1": 1})
    stats.build_ids.update(range(9))
    stats.first_seen, stats.last_seen = 1_700_000_000, 1_700_003_000
    stats.evidence.append(replace(evidence(1301, "w-4"), advisory=stats.id))
    return Signature(stats, (WorkerCount("w-4", 8, 0.4),), None, 1e-9, 1e-8)


def test_emerging_signatures_validate_and_count_only_when_the_operator_says_so():
    signature = _signature()
    reported = replace(sample_report(), findings=[], emerging=(signature,))
    document = report_json(reported)
    assert problems(document, "report", where="report.json") == []
    [entry] = document["emerging"]
    assert entry["kind"] == "emerging" and entry["workers"] == [
        {"name": "w-4", "observed": 8, "expected": 0.4}
    ]
    assert entry["affects_status"] is False and entry["severity"] is None
    assert reported.status == "healthy" and reported.advisory_ids == ()

    affecting = replace(reported, emerging_severity=Severity.HIGH)
    assert affecting.status == "affected"
    assert affecting.advisory_ids == (signature.id,)
    assert affecting.affected_workers == ["w-4"]
    assert affecting.fingerprint != reported.fingerprint
    assert report_json(affecting)["emerging"][0]["affects_status"] is True

    below = replace(reported, emerging_severity=Severity.MEDIUM)
    assert below.status == "healthy" and below.fingerprint == reported.fingerprint

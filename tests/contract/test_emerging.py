"""Emerging signatures end to end: `assets/in` and `assets/check` against seeded fleets
(simulator/fleets.py) served over real HTTP."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from fleet_guard.concourse.models import Build
from fleet_guard.schema import problems
from fleet_guard.signatures.collect import sample_builds
from fleet_guard.simulator import Simulator, load_scenario
from fleet_guard.simulator.fleets import (
    EXTERNAL_RELEASE,
    EXTERNAL_WORKERS,
    PLANTED_STARTED_AGO,
    PLANTED_WORKERS,
    emerging_fleet,
)
from tests.contract.helpers import Result, run_asset, source_for

NO_SPACE = "no space left on device"


def _serve(tmp_path_factory: pytest.TempPathFactory, kind: str, seed: int) -> Simulator:
    path = tmp_path_factory.mktemp(f"{kind}-{seed}") / "fleet.json"
    path.write_text(json.dumps(emerging_fleet(kind, seed)))
    return Simulator(load_scenario(path))


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Iterator[Simulator]:
    with _serve(tmp_path_factory, "planted", 1) as sim:
        yield sim


def get(sim: Simulator, dest: Path, **source: Any) -> tuple[Result, dict[str, Any]]:
    """`assets/in DEST` with this source; its result and the report.json it wrote (valid)."""
    payload = {
        "source": source_for(sim, **source),
        "version": {"fingerprint": "0" * 16, "seq": "1", "status": "affected", "advisories": ""},
    }
    # Generous: a stalled stream read (a simulator/concurrency flake seen on shared cores)
    # costs a 30 s read timeout and a retry; the verdict is what this test is about.
    result = run_asset("in", payload, str(dest), timeout=150)
    assert result.code == 0, result.stderr
    report = json.loads((dest / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    return result, report


def report_of(sim: Simulator, dest: Path, **source: Any) -> dict[str, Any]:
    return get(sim, dest, **source)[1]


def test_a_failure_planted_on_two_of_twenty_workers_is_one_emerging_signature(planted, tmp_path):
    report = report_of(planted, tmp_path)
    [signature] = report["emerging"]
    assert signature["kind"] == "emerging" and NO_SPACE in signature["template"]
    assert "<worker>" in signature["template"] and "<id>" in signature["template"]
    assert sorted(w["name"] for w in signature["workers"]) == sorted(PLANTED_WORKERS)
    assert all(w["observed"] == 8 and w["expected"] < 3 for w in signature["workers"])
    assert signature["release"] is None and signature["p_value"] < 1e-6
    assert signature["builds"] == 16 and len(signature["evidence"]) == 16
    times = [e["time"] for e in signature["evidence"]]
    assert signature["first_seen"] == min(times) and signature["last_seen"] == max(times)
    assert report["scanned"]["builds_sampled"] == 30, "the default base-rate sample"
    # Reported only (the default): the verdict comes from the advisories alone.
    assert signature["severity"] is None and signature["affects_status"] is False
    assert signature["id"] not in report["advisories"]
    summary = (tmp_path / "summary.md").read_text()
    assert "## Emerging signatures" in summary and signature["id"] in summary
    metrics = (tmp_path / "metrics.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    assert families["fleet_guard_emerging_signatures"].samples[0].value == 1
    on = {s.labels["worker"]: s.value for s in families["fleet_guard_emerging_builds"].samples}
    assert on == {w: 8 for w in PLANTED_WORKERS}
    assert families["fleet_guard_builds_sampled"].samples[0].value == 30


def test_the_known_eintr_is_never_emerging_however_concentrated(planted, tmp_path):
    report = report_of(planted, tmp_path, emerging_min_builds=3)
    eintr = next(f for f in report["findings"] if f["advisory"] == "cni-netlink-eintr")
    assert sorted(eintr["workers"]) == ["w-2", "w-5"]
    assert report["scanned"]["templates_tested"] >= 6
    for signature in report["emerging"]:
        assert "interrupted system call" not in signature["template"]
        assert not any("interrupted system call" in e["message"] for e in signature["evidence"])


def test_first_seen_is_remembered_by_the_check_container(planted, tmp_path):
    first = run_asset("check", {"source": source_for(planted)}, cache_dir=tmp_path)
    assert first.code == 0, first.stderr
    [path] = list(tmp_path.iterdir())
    document = json.loads(path.read_text())
    memory = document["signatures"]["memory"]
    assert len(memory) == 6 and all(k.startswith("emerging-") for k in memory)
    assert len(document["signatures"]["builds"]) == 52 + 30, "read builds and the sample"
    # Pretend an earlier check saw them two days ago: the next check keeps that first seen.
    earlier = {k: [first_seen - 2 * 86400, last] for k, (first_seen, last) in memory.items()}
    document["signatures"]["memory"] = earlier
    path.write_text(json.dumps(document))
    again = run_asset("check", {"source": source_for(planted)}, cache_dir=tmp_path)
    assert again.code == 0, again.stderr
    assert json.loads(path.read_text())["signatures"]["memory"] == earlier
    assert "API calls" in again.stderr


def test_as_a_severity_it_affects_the_verdict_and_the_version(planted, tmp_path):
    result = run_asset(
        "check",
        {"source": source_for(planted, emerging="high", disable_rules=["cni-netlink-eintr"])},
    )
    assert result.code == 0, result.stderr
    [version] = result.json
    assert version["status"] == "affected" and version["advisories"].startswith("emerging-")
    below = run_asset(
        "check",
        {"source": source_for(planted, emerging="low", disable_rules=["cni-netlink-eintr"])},
    )
    assert below.code == 0 and below.json == [], "low is below the default threshold (high)"


def streamed(sim: Simulator) -> set[str]:
    """The builds whose event streams were asked for since the last clear (retries once)."""
    return {r.path for r in sim.requests if r.path.endswith("/events")}


def test_off_reads_no_sample_and_reports_nothing(planted, tmp_path):
    planted.clear_requests()
    on = report_of(planted, tmp_path / "on")
    with_sample = streamed(planted)
    planted.clear_requests()
    off = report_of(planted, tmp_path / "off", emerging="off")
    assert off["emerging"] == [] and off["scanned"]["builds_sampled"] == 0
    assert on["scanned"]["builds_sampled"] == 30
    assert len(with_sample - streamed(planted)) == 30, "one stream per sampled build"


@pytest.mark.parametrize("declared", [False, True], ids=["observed", "declared"])
def test_a_release_class_carrying_the_failure_is_named(tmp_path_factory, tmp_path, declared):
    facts = [{"match": "ext-*", "concourse": EXTERNAL_RELEASE}] if declared else []
    with _serve(tmp_path_factory, "release", 1) as sim:
        report = report_of(sim, tmp_path, worker_facts=facts)
    [signature] = report["emerging"]
    assert sorted(w["name"] for w in signature["workers"]) == sorted(EXTERNAL_WORKERS)
    release = {w["name"]: w["facts"]["concourse"] for w in report["workers"]}
    assert release["ext-1"]["source"] == ("operator" if declared else "observed")
    assert signature["release"] == release["ext-1"]["value"] == release["ext-2"]["value"]
    assert EXTERNAL_RELEASE in signature["release"]
    assert signature["release"] != release["w-0"]["value"]


@pytest.mark.parametrize("seed", range(10))
def test_the_same_volume_spread_uniformly_is_never_emerging(tmp_path_factory, tmp_path, seed):
    with _serve(tmp_path_factory, "uniform", seed) as sim:
        report = report_of(sim, tmp_path)
    assert report["emerging"] == []
    assert report["scanned"]["templates_tested"] >= 6, "the failure was there, and tested"


def test_the_planted_failure_starts_when_the_scenario_says(planted, tmp_path):
    report = report_of(planted, tmp_path)
    [signature] = report["emerging"]
    generated = datetime.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ")
    now = calendar.timegm(generated.timetuple())
    # The first planted build started PLANTED_STARTED_AGO before load; its error comes early.
    assert 0 <= signature["first_seen"] - (now - PLANTED_STARTED_AGO) < 400


def fleet_guard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_guard.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_draft_writes_a_valid_rule_that_matches_the_planted_failure(planted, tmp_path):
    report = report_of(planted, tmp_path / "get")
    [signature] = report["emerging"]
    drafted = fleet_guard("rules", "draft", "--report", str(tmp_path / "get" / "report.json"))
    assert drafted.returncode == 0, drafted.stderr
    rule = json.loads(drafted.stdout)
    assert problems(rule, "rule", where="rule") == []
    assert rule["id"] == f"draft-{signature['id']}"
    assert rule["evidence"]["patterns"][0]["event"] == "error"
    assert rule["evidence"]["patterns"][0]["regex"].startswith("^")
    assert all(w in rule["details"] for w in PLANTED_WORKERS)
    assert "concourse 7.13.2 (observed)" in rule["details"]

    # Added to source.rules, it matches the planted failure: all of it, and nothing else.
    again = report_of(planted, tmp_path / "again", rules=[rule])
    [finding] = [f for f in again["findings"] if f["advisory"] == rule["id"]]
    assert sorted(finding["workers"]) == sorted(PLANTED_WORKERS)
    assert finding["outcome"] == "matched" and len(finding["evidence"]) == 16
    assert {e["build_id"] for e in finding["evidence"]} == {
        e["build_id"] for e in signature["evidence"]
    }
    assert again["emerging"] == [], "explained now, so no longer emerging"


def test_rules_draft_says_what_is_wrong_without_a_traceback(planted, tmp_path):
    report_of(planted, tmp_path)
    path = str(tmp_path / "report.json")
    wrong = fleet_guard("rules", "draft", "--report", path, "--signature", "emerging-0000000000")
    assert wrong.returncode == 1 and "no emerging signature" in wrong.stderr
    assert "Traceback" not in wrong.stderr and wrong.stdout == ""
    missing = fleet_guard("rules", "draft", "--report", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read --report" in missing.stderr
    written = fleet_guard(
        "rules",
        "draft",
        "--report",
        path,
        "--id",
        "our-volumes",
        "--output",
        str(tmp_path / "rule.json"),
    )
    assert written.returncode == 0 and written.stdout == ""
    assert json.loads((tmp_path / "rule.json").read_text())["id"] == "our-volumes"


def test_when_it_affects_every_rendering_names_it(planted, tmp_path):
    result, report = get(planted, tmp_path, emerging="high", disable_rules=["cni-netlink-eintr"])
    [signature] = report["emerging"]
    assert report["status"] == "affected" and report["advisories"] == [signature["id"]]
    assert signature["affects_status"] is True and signature["severity"] == "high"
    affected = (tmp_path / "affected_workers").read_text().split()
    assert sorted(affected) == sorted(PLANTED_WORKERS)
    headline = (tmp_path / "headline").read_text()
    assert signature["id"] in headline and "no advisory" not in headline
    assert signature["id"] in (tmp_path / "message.md").read_text()
    assert f"{signature['id']} (emerging, no advisory yet)" in result.stderr
    assert "1 emerging signature(s)" in result.stderr


def test_a_sample_build_that_cannot_be_read_is_left_out_not_a_gap(tmp_path_factory, tmp_path):
    fleet = emerging_fleet("planted", 1)
    succeeded = [
        Build(b["id"], "main", str(b["id"]), "succeeded", end_time=1)
        for b in fleet["builds"]
        if not any("error" in step for step in b["steps"])
    ]
    refused = [b.id for b in sample_builds(succeeded, (), 30)[:3]]
    with _serve(tmp_path_factory, "planted", 1) as sim:
        for build_id in refused:
            sim.add_fault({"path": f"/api/v1/builds/{build_id}/events", "status": 500, "times": -1})
        report = report_of(sim, tmp_path)
    assert report["coverage"]["complete"] is True, "the sample is no part of the coverage"
    assert report["scanned"]["builds_sampled"] == 27
    [signature] = report["emerging"]
    assert sorted(w["name"] for w in signature["workers"]) == sorted(PLANTED_WORKERS)

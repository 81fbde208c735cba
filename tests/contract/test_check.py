"""`assets/check` against the simulator: the core acceptance cases, and the protocol."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import PASSWORD, Result, run_asset, source_for

EINTR = "cni-netlink-eintr"


def scan_json(sim: Simulator, source: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The full report for the same source, through the operator CLI (also a subprocess)."""
    path = tmp_path / "source.json"
    path.write_text(json.dumps(source))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet_guard.cli",
            "scan",
            "--source",
            str(path),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    # The CLI's exit status is the verdict's: 0 healthy, 2 affected, 3 incomplete.
    report = json.loads(done.stdout) if done.stdout else {}
    expected = {"healthy": 0, "affected": 2, "incomplete": 3}.get(report.get("status"), 0)
    assert done.returncode == expected, done.stderr
    return json.loads(done.stdout)


def outcomes(report: dict[str, Any], advisory: str) -> dict[str, str]:
    return {
        worker: f["outcome"]
        for f in report["findings"]
        if f["advisory"] == advisory
        for worker in f["workers"]
    }


def only_version(result: Result) -> dict[str, str]:
    assert result.code == 0, result.stderr
    versions = result.json
    assert isinstance(versions, list) and len(versions) == 1, versions
    version = versions[0]
    assert set(version) == {"fingerprint", "seq", "status", "advisories"}
    assert all(isinstance(v, str) for v in version.values()), "Concourse needs string values"
    return version


def test_incident_without_facts_is_affected_on_the_two_eintr_workers(incident, tmp_path):
    source = source_for(incident)
    version = only_version(run_asset("check", {"source": source}))
    assert version["status"] == "affected"
    assert EINTR in version["advisories"].split(",")
    assert version["seq"] == "1"

    report = scan_json(incident, source, tmp_path)
    assert report["fingerprint"] == version["fingerprint"]
    assert outcomes(report, EINTR) == {
        "w-0": "possible",
        "w-1": "matched",
        "w-2": "possible",
        "w-3": "matched",
        "w-4": "possible",
    }
    matched = next(
        f for f in report["findings"] if f["advisory"] == EINTR and f["outcome"] == "matched"
    )
    assert {e["worker"] for e in matched["evidence"]} == {"w-1", "w-3"}
    assert all("interrupted system call" in e["message"] for e in matched["evidence"])
    facts = {w["name"]: w["facts"] for w in report["workers"]}
    assert facts["w-1"]["runtime"]["source"] == "observed"
    assert facts["w-1"]["cni_plugins"] == {
        "value": "1.6.0",
        "source": "inferred",
        "detail": facts["w-1"]["cni_plugins"]["detail"],
    }
    assert "runtime" not in facts["w-0"], "runtime on 7.x stays unknown without evidence"


def test_incident_with_declared_containerd_matches_all_five(incident, tmp_path):
    source = source_for(incident, facts={"runtime": "containerd"})
    version = only_version(run_asset("check", {"source": source}))
    assert version["status"] == "affected"
    report = scan_json(incident, source, tmp_path)
    assert outcomes(report, EINTR) == {f"w-{i}": "matched" for i in range(5)}
    assert report["workers"][0]["facts"]["runtime"]["source"] == "operator"


def test_healthy_fleet_emits_nothing(healthy):
    result = run_asset("check", {"source": source_for(healthy)})
    assert result.code == 0, result.stderr
    assert result.json == []
    assert "fleet-guard: healthy" in result.stderr


def test_healthy_fleet_with_declared_bad_cni_is_affected_everywhere(healthy, tmp_path):
    source = source_for(healthy, facts={"runtime": "containerd", "cni_plugins": "1.6.2"})
    version = only_version(run_asset("check", {"source": source}))
    assert version["status"] == "affected"
    report = scan_json(healthy, source, tmp_path)
    assert set(outcomes(report, EINTR).values()) == {"matched"}
    assert len(outcomes(report, EINTR)) == 5


def test_emit_all_reports_the_healthy_state(healthy):
    version = only_version(run_asset("check", {"source": source_for(healthy, emit="all")}))
    assert version["status"] == "healthy"
    assert version["advisories"] == ""


def test_unchanged_state_echoes_the_given_version(incident):
    source = source_for(incident)
    first = only_version(run_asset("check", {"source": source}))
    given = {**first, "seq": "7"}
    again = run_asset("check", {"source": source, "version": given})
    assert again.code == 0, again.stderr
    assert again.json == [given]


def test_changed_state_appends_a_new_version_with_the_next_seq(incident):
    source = source_for(incident, facts={"runtime": "containerd"})
    given = {"fingerprint": "0123456789abcdef", "seq": "4", "status": "affected", "advisories": "x"}
    result = run_asset("check", {"source": source, "version": given})
    assert result.code == 0, result.stderr
    old, new = result.json
    assert old == given
    assert new["seq"] == "5" and new["fingerprint"] != given["fingerprint"]


def test_recovery_under_emit_affected_keeps_the_last_version(healthy):
    given = {
        "fingerprint": "0123456789abcdef",
        "seq": "2",
        "status": "affected",
        "advisories": EINTR,
    }
    result = run_asset("check", {"source": source_for(healthy), "version": given})
    assert result.code == 0, result.stderr
    assert result.json == [given]


def test_user_logs_and_aborted_builds_are_not_evidence(false_alarms, tmp_path):
    source = source_for(false_alarms, scan_statuses=["errored", "failed", "aborted"])
    result = run_asset("check", {"source": source})
    assert result.code == 0, result.stderr
    assert result.json == []
    report = scan_json(false_alarms, source, tmp_path)
    assert report["scanned"]["builds_read"] > 0, "the noisy builds must actually be read"
    assert [f for f in report["findings"] if f["evidence"]] == []


def test_invalid_source_lists_every_problem_without_echoing_secrets(incident):
    source = {
        "url": incident.url,
        "username": "admin",
        "password": PASSWORD,
        "severty": "high",
        "facts": {"runtime": "containrd", "cni_plugins": 1.6},
        "window": "yesterday",
    }
    result = run_asset("check", {"source": source})
    assert result.code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr
    for expected in (
        "severty",
        "did you mean 'severity'",
        "source.facts.runtime",
        "containrd",
        "source.facts.cni_plugins",
        "string",
        "source.window",
    ):
        assert expected in result.stderr, expected
    assert incident.mutations == []


def test_wrong_password_is_a_clear_message(incident):
    result = run_asset("check", {"source": {**source_for(incident), "password": "not-it-xyz"}})
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "not-it-xyz" not in result.stderr
    assert "source.username" in result.stderr or "source.password" in result.stderr


def test_null_source_is_a_clear_message():
    result = run_asset("check", {"source": None})
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "url" in result.stderr


def test_stdin_that_is_not_json_is_a_clear_message():
    result = run_asset("check", "{source: nope", raw=True)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "not JSON" in result.stderr


def test_debug_logging_never_shows_credentials(incident):
    result = run_asset("check", {"source": source_for(incident, debug=True)})
    assert result.code == 0, result.stderr
    assert "debug:" in result.stderr
    assert PASSWORD not in result.stderr
    assert "Bearer" not in result.stderr and "authorization" not in result.stderr.lower()


def test_a_static_token_works(incident):
    source = {"url": incident.url, "token": "static-token-for-tests"}
    version = only_version(run_asset("check", {"source": source}))
    assert version["status"] == "affected"
    result = run_asset("check", {"source": {**source, "debug": True}})
    assert "static-token-for-tests" not in result.stderr


def test_a_declared_fact_that_evidence_contradicts_is_kept_and_warned_about(incident):
    source = source_for(incident, facts={"runtime": "guardian"})
    result = run_asset("check", {"source": source})
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("worker w-1: runtime is 'guardian'" in w and "containerd" in w for w in warnings)
    # The declared runtime makes the rule's condition false, but its evidence was seen on
    # w-1 and w-3: evidence-only, which still makes the fleet affected.
    assert result.json[0]["status"] == "affected"
    assert EINTR in result.json[0]["advisories"].split(",")


def test_a_reused_check_container_does_not_read_finished_builds_again(incident, tmp_path):
    source = source_for(incident)
    first = run_asset("check", {"source": source}, cache_dir=tmp_path)
    incident.clear_requests()
    second = run_asset("check", {"source": source}, cache_dir=tmp_path)
    assert first.code == second.code == 0, second.stderr
    assert second.json == first.json, "the cache must never change the answer"
    streams = [r for r in incident.requests if r.path.endswith("/events")]
    assert streams == [], "every errored build had finished, so none is read again"
    assert "12 more from cache" in second.stderr
    assert list(tmp_path.iterdir()), "the cache lives where FLEET_GUARD_CACHE_DIR says"


def test_builds_whose_events_are_forbidden_are_skipped_and_read_again_next_time(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        # A public pipeline's private job: the build is listed, its events are 403.
        sim.add_fault({"path": "/api/v1/builds/*/events", "status": 403, "times": 12})
        # One stream at a time, so the 12 refusals fall on the 12 errored builds, read first.
        source = source_for(sim, concurrency=1)
        first = run_asset("check", {"source": source}, cache_dir=tmp_path)
        assert first.code == 0, first.stderr
        assert first.json == [], "emit: affected stays quiet on an incomplete scan"
        assert "12 build(s) not read whole" in first.stderr
        assert "fleet-guard: incomplete" in first.stderr
        second = run_asset("check", {"source": source}, cache_dir=tmp_path)
    assert second.code == 0, second.stderr
    assert "from cache" not in second.stderr
    assert second.json[0]["status"] == "affected"


def test_a_worker_facts_entry_that_matches_no_worker_is_warned_about(healthy):
    entries = [{"match": "gpu-*", "runtime": "guardian"}, {"match": "*", "cgroup": "v2"}]
    result = run_asset("check", {"source": source_for(healthy, worker_facts=entries)})
    assert result.code == 0, result.stderr
    assert "source.worker_facts[0] (match 'gpu-*') matches no registered worker" in result.stderr
    assert "worker_facts[1]" not in result.stderr

"""The incident's life cycle against the simulator, as Concourse runs the assets: each worker's
release observed from its bundled resource types, runtimes from its own errors, and restarts
that turn old evidence into `resolved` history. No facts are declared in any of these tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_guard.schema import problems
from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import run_asset, source_for

EINTR = "cni-netlink-eintr"
SKEW = "worker-release-skew"


def _simulator(name: str) -> Iterator[Simulator]:
    with Simulator(load_scenario(name)) as sim:
        yield sim


@pytest.fixture(scope="module")
def upgrade() -> Iterator[Simulator]:
    yield from _simulator("upgrade-in-progress")


@pytest.fixture(scope="module")
def fixed() -> Iterator[Simulator]:
    yield from _simulator("after-the-fix")


@pytest.fixture(scope="module")
def relapse() -> Iterator[Simulator]:
    yield from _simulator("eintr-after-fix")


@pytest.fixture(scope="module")
def external() -> Iterator[Simulator]:
    yield from _simulator("external-workers")


@pytest.fixture(scope="module")
def custom() -> Iterator[Simulator]:
    yield from _simulator("custom-bundles")


def check(sim: Simulator) -> dict[str, str]:
    """check with `emit: all`, so a healthy fleet emits its version too."""
    result = run_asset("check", {"source": source_for(sim, emit="all")})
    assert result.code == 0, result.stderr
    [version] = result.json
    return version


def fetch(sim: Simulator, dest: Path) -> tuple[dict[str, str], dict[str, Any], str]:
    """check, then in: the version, report.json and summary.md."""
    version = check(sim)
    result = run_asset("in", {"source": source_for(sim), "version": version}, str(dest))
    assert result.code == 0, result.stderr
    report = json.loads((dest / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    return version, report, (dest / "summary.md").read_text()


def workers(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w["facts"] for w in report["workers"]}


def outcomes(report: dict[str, Any], advisory: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report["findings"]:
        if f["advisory"] == advisory:
            found.setdefault(f["outcome"], []).extend(f["workers"])
    return found


def test_the_incident_release_is_observed_on_every_worker(incident, tmp_path):
    version, report, _ = fetch(incident, tmp_path)
    assert version["status"] == "affected"
    facts = workers(report)
    assert set(facts) == {f"w-{i}" for i in range(5)}
    for name, worker in facts.items():
        assert (worker["concourse"]["value"], worker["concourse"]["source"]) == (
            "7.12.0",
            "observed",
        ), name
        assert "bundled resource types" in worker["concourse"]["detail"]
    assert outcomes(report, EINTR) == {"matched": ["w-1", "w-3"], "possible": ["w-0", "w-2", "w-4"]}
    for name in ("w-1", "w-3"):
        assert facts[name]["runtime"]["source"] == "observed"
    for name in ("w-0", "w-2", "w-4"):
        assert "runtime" not in facts[name]


def test_an_upgrade_in_progress_is_judged_worker_by_worker(upgrade, tmp_path):
    version, report, summary = fetch(upgrade, tmp_path)
    assert version["status"] == "affected"
    assert outcomes(report, EINTR) == {"matched": ["w-3", "w-4"], "resolved": ["w-0", "w-1", "w-2"]}
    assert outcomes(report, SKEW) == {"matched": ["w-3", "w-4"]}
    facts = workers(report)
    assert {n: f["concourse"]["value"] for n, f in facts.items()} == {
        "w-0": "7.13.2",
        "w-1": "7.13.2",
        "w-2": "7.13.2",
        "w-3": "7.12.0",
        "w-4": "7.12.0",
    }
    for name in ("w-0", "w-1", "w-2"):
        assert "runtime" not in facts[name], "EINTR from before the restart proves nothing now"
    matched = next(
        f for f in report["findings"] if f["outcome"] == "matched" and f["advisory"] == EINTR
    )
    assert "7.13.2" in matched["remediation"]["fix"], "w-3 and w-4 do not run 7.13.2 yet"
    assert "### Resolved (3 workers)" in summary


def test_after_the_fix_the_fleet_is_healthy_with_its_history(fixed, tmp_path):
    version, report, summary = fetch(fixed, tmp_path)
    assert version["status"] == "healthy" and report["status"] == "healthy"
    (resolved,) = [f for f in report["findings"] if f["advisory"] == EINTR]
    assert (resolved["outcome"], resolved["workers"]) == ("resolved", ["w-1", "w-3"])
    assert resolved["affects_status"] is False
    assert len(resolved["evidence"]) == 4
    restarts = {r["worker"]: r for r in resolved["restarts"]}
    assert set(restarts) == {"w-1", "w-3"}
    for item in resolved["evidence"]:
        assert item["time"] < restarts[item["worker"]]["start_time"]
    assert "### Resolved (2 workers)" in summary
    for r in restarts.values():
        assert (
            f"- {r['worker']} restarted {r['started_at'][:10]} {r['started_at'][11:16]} UTC"
            in summary
        )
    assert "**Fix:**" not in summary

    gate = run_asset(
        "out", {"source": source_for(fixed), "params": {"action": "gate"}}, str(tmp_path)
    )
    assert gate.code == 0, gate.stderr
    assert {m["name"]: m["value"] for m in gate.json["metadata"]}["gate"] == "passed"


def test_the_fingerprint_ignores_resolved_history(fixed, healthy):
    assert check(fixed)["fingerprint"] == check(healthy)["fingerprint"]


def test_eintr_after_the_restart_on_a_fixed_worker_is_evidence_only_and_says_why(relapse, tmp_path):
    version, report, summary = fetch(relapse, tmp_path)
    assert version["status"] == "affected" and version["advisories"] == EINTR
    (finding,) = [f for f in report["findings"] if f["advisory"] == EINTR and f["affects_status"]]
    assert (finding["outcome"], finding["workers"]) == ("evidence-only", ["w-2"])
    assert [e["build_id"] for e in finding["evidence"]] == [903], "901 predates the restart"
    assert "facts say it is not affected" in finding["note"]
    assert "--containerd-cni-plugins-dir" in finding["remediation"]["fix"]
    assert "Upgrade Concourse" not in finding["remediation"]["fix"]
    assert "Upgrade Concourse" not in summary
    assert "**What to check:**" in summary
    assert (
        outcomes(report, EINTR)["resolved"] == ["w-2"]
        if "resolved" in outcomes(report, EINTR)
        else True
    )


def test_external_workers_on_another_release_are_named(external, tmp_path):
    _, report, _ = fetch(external, tmp_path)
    assert outcomes(report, SKEW) == {"matched": ["ext-0", "ext-1"]}
    ext = workers(report)["ext-0"]
    assert ext["concourse"]["value"] == "7.11.0..7.11.2"
    assert ext["concourse"]["members"] == ["7.11.0", "7.11.1", "7.11.2"]
    assert ext["cni_plugins"]["value"] == "1.3.0"
    assert "runc" not in ext, "7.11.2 fixed runc; the class cannot say which one it is"


def test_customised_bundles_fall_back_to_the_web_release_and_say_why(custom, tmp_path):
    _, report, _ = fetch(custom, tmp_path)
    facts = workers(report)
    assert facts["w-0"]["concourse"]["source"] == "observed"
    for name, said in (("w-1", "extra type rclone 0.4.2"), ("w-2", "git dev instead of 1.17.0")):
        concourse = facts[name]["concourse"]
        assert (concourse["value"], concourse["source"]) == ("7.12.0", "inferred")
        assert "customised bundle" in concourse["detail"]
        assert "nearest Concourse 7.12.0" in concourse["detail"]
        assert said in concourse["detail"]
    assert (facts["win-0"]["runtime"]["value"], facts["win-0"]["runtime"]["source"]) == (
        "houdini",
        "observed",
    )


def test_an_error_no_advisory_matches_still_proves_the_runtime(custom, tmp_path):
    _, report, _ = fetch(custom, tmp_path)
    runtime = workers(report)["w-0"]["runtime"]
    assert (runtime["value"], runtime["source"]) == ("guardian", "observed")
    assert "runc run: exit status" in runtime["detail"] and "build 901" in runtime["detail"]
    assert "w-0" not in outcomes(report, EINTR).get("possible", []), "guardian does not use CNI"


def explain(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fleet_guard.cli", "explain", *args, "--source", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_explain_shows_where_each_workers_release_came_from(upgrade, tmp_path):
    path = tmp_path / "source.json"
    path.write_text(json.dumps(source_for(upgrade)))
    done = explain(path, SKEW)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "w-3: matched" in lines and "w-0: clear" in lines
    concourse = [line for line in lines if line.strip().startswith("concourse")]
    assert any("7.12.0 (observed: /api/v1/workers" in line for line in concourse)
    assert any("7.13.2 (observed: /api/v1/workers" in line for line in concourse)

    history = explain(path, EINTR, "--worker", "w-0")
    assert history.returncode == 0, history.stderr
    assert "w-0: resolved" in history.stdout.splitlines()
    assert "all before the worker's current start" in history.stdout


@pytest.mark.parametrize(
    ("start_time", "resource_types"),
    [
        (None, None),
        ("soon", "git"),
        ("1700000000", [None, 7, {"type": None}, {"type": "git", "version": None}]),
        (-5, [{"type": "git", "version": ["1.17.0"]}]),
    ],
)
def test_odd_worker_fields_are_no_crash_and_no_release(tmp_path, start_time, resource_types):
    """A proxy or an unreleased ATC may serve types we do not expect: no traceback, no claim."""
    scenario = load_scenario("incident")
    worker = scenario.workers["w-1"]
    worker.start_time = start_time
    worker.resource_types = resource_types
    with Simulator(scenario) as sim:
        _, report, _ = fetch(sim, tmp_path)
    concourse = workers(report)["w-1"]["concourse"]
    assert (concourse["value"], concourse["source"]) == ("7.12.0", "inferred")
    assert outcomes(report, EINTR)["matched"] == ["w-1", "w-3"], "unknown start: evidence stays"

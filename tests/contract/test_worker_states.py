"""Worker states as evidence, end to end: check and get against the simulator.

A guardian worker that stalls minutes after starting is what a gdn that cannot start looks like
from the ATC (its error is only in the worker's own log); a worker on an older worker API is
running but gets no work. Neither leaves an error in any build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet_guard.schema import problems
from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import run_asset, source_for

SCENARIO = {
    "description": "Concourse 7.12.0 (guardian by default), no errored builds",
    "info": {"version": "7.12.0", "worker_version": "2.5"},
    "teams": ["main"],
    "users": [{"username": "admin", "password": "admin-pass", "teams": {"main": ["owner"]}}],
    "workers": [
        {"name": "w-0"},
        {"name": "w-1", "state": "stalled", "started_ago": 600},
        {"name": "w-2", "state": "stalled", "started_ago": 3 * 86400},
        {"name": "w-3", "version": "2.4"},
    ],
    "builds": [],
}


def _findings(tmp_path: Path) -> tuple[dict[str, Any], dict[tuple[str, str], list[str]]]:
    path = tmp_path / "states.json"
    path.write_text(json.dumps(SCENARIO))
    with Simulator(load_scenario(path)) as sim:
        checked = run_asset("check", {"source": source_for(sim)})
        payload = {
            "source": source_for(sim),
            "version": {"fingerprint": "0" * 16, "seq": "1", "status": "x", "advisories": ""},
        }
        got = run_asset("in", payload, str(tmp_path / "get"))
    assert checked.code == 0 and got.code == 0, checked.stderr + got.stderr
    report = json.loads((tmp_path / "get" / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    (cgroup,) = [f for f in report["findings"] if f["outcome"] == "evidence-only"]
    assert [s["worker"] for s in cgroup["worker_states"]] == ["w-1"]
    assert (
        cgroup["evidence"] == [] and "stalled within an hour" in cgroup["worker_states"][0]["state"]
    )
    found = {(f["advisory"], f["outcome"]): f["workers"] for f in report["findings"]}
    return checked.json[0], found


def test_worker_states_reach_the_verdict_without_any_build(tmp_path: Path) -> None:
    version, found = _findings(tmp_path)
    assert found[("guardian-cgroup-v2", "evidence-only")] == ["w-1"]
    assert "w-2" in found[("guardian-cgroup-v2", "possible")], "stalled after days: not this"
    assert found[("worker-api-behind", "matched")] == ["w-3"]
    assert found[("stalled-worker", "matched")] == ["w-1", "w-2"]
    assert version["status"] == "affected" and "guardian-cgroup-v2" in version["advisories"]

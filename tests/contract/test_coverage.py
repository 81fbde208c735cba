"""Coverage is part of the verdict: what a scan could not see makes it `incomplete`, is counted
in report.json, stated in summary.md and warned about on stderr by every step.

Each case is one way of being blind: a viewer without access to the team holding the EINTR
builds, every stream refused, every stream cut before `end`, the error past the byte cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_guard.schema import problems
from fleet_guard.simulator import Simulator, User, load_scenario
from tests.contract.helpers import Result, run_asset, source_for

EINTR = "cni-netlink-eintr"


def outsider_sim() -> Simulator:
    """The incident, seen by a user who may read team main only."""
    scenario = load_scenario("incident")
    scenario.users["outsider"] = User("outsider", "outsider-pass", {"main": ["viewer"]})
    return Simulator(scenario)


def big_log_sim(tmp_path: Path) -> Simulator:
    """One errored build whose EINTR error comes after 300 KB of log."""
    spec = {
        "description": "an EINTR error at the end of a long log",
        "info": {"version": "7.12.0", "worker_version": "2.5"},
        "teams": ["main"],
        "users": [{"username": "admin", "password": "admin-pass", "teams": {"main": ["owner"]}}],
        "workers": [{"name": "w-0"}],
        "messages": {
            # The wording of concourse/concourse#9027: only a container-creation failure counts.
            "eintr": "find or create container on worker {worker}: starting task: network add: "
            'cni net setup: plugin type="loopback" failed (add): interrupted system call'
        },
        "builds": [
            {
                "id": 11,
                "team": "main",
                "pipeline": "p",
                "job": "j",
                "status": "errored",
                "started_ago": 600,
                "duration": 30,
                "worker": "w-0",
                "steps": [{"get": "repo", "log_bytes": 300_000}, {"task": "t", "error": "@eintr"}],
            }
        ],
    }
    path = tmp_path / "big-log.json"
    path.write_text(json.dumps(spec))
    return Simulator(load_scenario(path))


@pytest.fixture
def outsider() -> Iterator[Simulator]:
    with outsider_sim() as sim:
        yield sim


def as_user(sim: Simulator, user: str, **extra: Any) -> dict[str, Any]:
    return {**source_for(sim, **extra), "username": user, "password": f"{user}-pass"}


def check_all(source: dict[str, Any]) -> tuple[Result, dict[str, str]]:
    result = run_asset("check", {"source": {**source, "emit": "all"}})
    assert result.code == 0, result.stderr
    [version] = result.json
    return result, version


def report_of(source: dict[str, Any], dest: Path) -> tuple[Result, dict[str, Any]]:
    result = run_asset("in", {"source": source}, str(dest))
    assert result.code == 0, result.stderr
    report = json.loads((dest / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    return result, report


def gate(source: dict[str, Any], tmp_path: Path, **params: Any) -> Result:
    return run_asset(
        "out", {"source": source, "params": {"action": "gate", **params}}, str(tmp_path)
    )


def assert_incomplete(source: dict[str, Any], tmp_path: Path, reason: str) -> dict[str, Any]:
    checked, version = check_all(source)
    assert version["status"] == "incomplete"
    assert "warning: incomplete scan:" in checked.stderr
    got, report = report_of(source, tmp_path / "get")
    assert report["status"] == "incomplete"
    assert report["coverage"]["complete"] is False
    assert report["coverage"]["builds_not_read"][reason] > 0
    assert "warning: incomplete scan:" in got.stderr
    summary = (tmp_path / "get" / "summary.md").read_text()
    assert summary.startswith("# Fleet Guard: INCOMPLETE")
    assert "not read whole" in summary.split("\n## ")[0], "coverage belongs at the top"
    coverage: dict[str, Any] = report["coverage"]

    refused = gate(source, tmp_path)
    assert refused.code == 1 and refused.stdout == ""
    assert "gate failed: the scan could not see everything" in refused.stderr
    assert "allow_incomplete: true" in refused.stderr
    assert coverage["problems"][0] in refused.stderr, "it names what it could not read"
    allowed = gate(source, tmp_path, allow_incomplete=True)
    assert allowed.code == 0, allowed.stderr
    assert "gate passed on an incomplete scan" in allowed.stderr
    assert coverage["problems"][0] in allowed.stderr, "it says what it could not see"
    shown = {m["name"]: m["value"] for m in allowed.json["metadata"]}
    assert shown["gate"] == "passed (incomplete)" and shown["status"] == "incomplete"
    assert shown["coverage"] != "complete"
    return coverage


def test_a_viewer_without_access_to_the_eintr_team_is_incomplete(outsider, tmp_path):
    source = as_user(outsider, "outsider", teams=["platform"])
    coverage = assert_incomplete(source, tmp_path, "forbidden")
    assert {u["team"] for u in coverage["unread"]} == {"platform"}
    assert any("viewer role on the team platform" in p for p in coverage["problems"])


def test_every_stream_refused_is_incomplete(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        sim.add_fault({"path": "/api/v1/builds/*/events", "status": 403, "times": -1})
        assert_incomplete(source_for(sim), tmp_path, "forbidden")


def test_every_stream_cut_before_end_is_incomplete(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        # Each stream, and each resume of it, ends before the first event.
        sim.add_fault({"path": "/api/v1/builds/*/events", "cut_after": 0, "times": -1})
        coverage = assert_incomplete(source_for(sim), tmp_path, "cut")
        assert coverage["builds_not_read"]["cut"] == len(coverage["unread"])
        sim.clear_requests()
        # Without the base-rate sample of emerging signatures, whose streams would count too.
        report_of(source_for(sim, emerging="off"), tmp_path / "again")
        streams = [r for r in sim.requests if r.path.endswith("/events")]
    # Each cut stream is resumed once; the reaped build's stream is just `end`, so it is whole.
    assert len(streams) == 2 * len(coverage["unread"]) + 1


def test_a_stream_cut_once_is_resumed_and_counts_as_read(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        sim.add_fault({"path": "/api/v1/builds/*/events", "cut_after": 1, "times": 1})
        _, report = report_of(source_for(sim), tmp_path)
    assert report["coverage"]["complete"] is True
    assert report["status"] == "affected"


def test_the_eintr_error_past_the_byte_cap_is_incomplete(tmp_path):
    with big_log_sim(tmp_path) as sim:
        capped = source_for(sim, max_log_bytes=65536)
        coverage = assert_incomplete(capped, tmp_path, "over_cap")
        assert any("raise max_log_bytes" in p for p in coverage["problems"])
        _, whole = report_of(source_for(sim), tmp_path / "whole")
    assert whole["status"] == "affected", "the default cap reads the whole log"
    assert whole["coverage"]["max_log_bytes"] == 128 * 1024 * 1024


def test_one_build_answering_500_is_counted_not_fatal(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        sim.add_fault({"path": "/api/v1/builds/1241/events", "status": 500, "times": -1})
        result = run_asset("check", {"source": source_for(sim)})
        assert result.code == 0, result.stderr
        assert result.json[0]["status"] == "affected", "the other builds still prove it"
        assert "1 build(s) not read whole (1241)" in result.stderr
        _, report = report_of(source_for(sim), tmp_path)
    assert report["coverage"]["builds_not_read"]["server_error"] == 1
    assert report["coverage"]["unread"][0]["build_id"] == 1241
    assert "failed or did not answer, even after retries" in result.stderr


def test_a_team_that_cannot_be_listed_is_not_visible(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        _, report = report_of(source_for(sim, teams=["platform", "no-such-team"]), tmp_path)
    assert report["coverage"]["teams_not_visible"] == ["no-such-team"]
    assert report["status"] == "affected"

"""Runtime witnesses: every error event of a read build may prove its worker's runtime."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from fleet_guard import schema
from fleet_guard.concourse.models import Build, Event, Info, Worker
from fleet_guard.config import SourceConfig
from fleet_guard.evidence import EvidenceMatcher
from fleet_guard.facts import FactSource, build_facts
from fleet_guard.facts.releases import ReleaseTable
from fleet_guard.facts.witnesses import WitnessTable, WitnessTableError
from tests.unit.test_evidence import EINTR

WITNESSES = WitnessTable.load()
BUILD = Build(id=7, team_name="main", name="12", status="errored", job_name="j", pipeline_name="p")


def _raw() -> Any:
    path = resources.files("fleet_guard.facts").joinpath("data", "witnesses.json")
    return json.loads(path.read_text("utf-8"))


def ev(type: str, origin: str = "a1", **data: Any) -> Event:
    return Event(type=type, data={"origin": {"id": origin}, "time": 1000, **data})


def match(events: list[Event], *advisories: Any) -> list[Any]:
    matcher = EvidenceMatcher(advisories, base_url="https://ci", witnesses=WITNESSES.witnesses)
    return matcher.match_build(BUILD, iter(events))


def test_the_data_file_matches_its_schema_and_every_fragment_has_a_reference() -> None:
    assert schema.problems(_raw(), "witnesses", where="witnesses.json") == []
    assert all(w.origin for w in WITNESSES.witnesses)
    twice = copy.deepcopy(_raw())
    twice["witnesses"].append(twice["witnesses"][0])
    with pytest.raises(WitnessTableError, match="listed twice"):
        WitnessTable.from_data(twice)


@pytest.mark.parametrize(
    ("message", "runtime"),
    [
        ("find or create container on worker w-9: new container: exists", "containerd"),
        ("find or create container on worker w-9: proc start: boom", "containerd"),
        ("find or create container on worker w-9: runc run: exit status 1: ...", "guardian"),
        ("on worker w-9: insufficient subnets remaining in the pool", "guardian"),
    ],
)
def test_an_error_no_advisory_matches_still_proves_the_runtime(message: str, runtime: str) -> None:
    found = match([ev("error", message=message)])
    assert [(e.advisory, e.worker, dict(e.implies)) for e in found] == [
        ("", "w-9", {"runtime": runtime})
    ]
    assert found[0].witness


def test_without_a_name_the_steps_selected_worker_is_the_witness() -> None:
    events = [
        ev("selected-worker", origin="b2", selected_worker="w-2"),
        ev("error", origin="b2", message="starting task: network add: failed"),
    ]
    assert [(e.worker, e.implies["runtime"]) for e in match(events)] == [("w-2", "containerd")]


def test_logs_unattributed_errors_and_resource_stderr_prove_nothing() -> None:
    logs = [ev("log", payload="runc run: exit status 1\n")]
    assert match(logs) == []
    assert match([ev("error", message="cni net setup: failed")]) == []
    stderr = (
        "resource script '/opt/resource/out []' failed: exit status 1\n\nstderr:\n"
        "deploying to staging: new container: cni net setup: failed on worker k8s-1: x\n"
    )
    placed = ev("selected-worker", selected_worker="w-5")
    assert match([placed, ev("error", message=stderr)]) == []


def test_an_advisory_match_and_its_witness_both_come_back() -> None:
    message = (
        "find or create container on worker w-3: starting task: network add: cni net setup: "
        'plugin type="loopback" failed (add): interrupted system call'
    )
    found = match([ev("error", message=message)], EINTR)
    assert sorted(e.advisory for e in found) == ["", "cni-netlink-eintr"]


def test_a_witness_gives_an_observed_runtime_naming_the_fragment() -> None:
    found = match([ev("error", message="on worker w-1: runc run: exit status 1")])
    worker = Worker(name="w-1", state="running", platform="linux")
    info = Info(version="7.12.0", worker_version="2.5")
    config = SourceConfig(url="https://ci")
    facts = build_facts([worker], info, config, found, ReleaseTable.load())["w-1"]
    assert (facts["runtime"].value, facts["runtime"].source) == ("guardian", FactSource.OBSERVED)
    assert "runc run: exit status" in facts["runtime"].detail
    assert "build 7" in facts["runtime"].detail

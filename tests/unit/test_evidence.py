"""Evidence matching on plain events: attribution, explained-by, and what is not evidence."""

from __future__ import annotations

import re
from typing import Any

from fleet_guard.advisories.model import Advisory, EvidencePattern, Remediation
from fleet_guard.concourse.models import Build, Event
from fleet_guard.evidence import EvidenceMatcher, build_url, builds_to_read
from fleet_guard.redact import Redactor
from fleet_guard.severity import Severity

CNI = (
    "find or create container on worker w-3: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


def advisory(id: str, regex: str, *, event: str = "error", explained_by: tuple[str, ...] = ()):
    return Advisory(
        id=id,
        summary=id,
        details="",
        severity=Severity.HIGH,
        conditions=(),
        patterns=(EvidencePattern(event, re.compile(regex), {"runtime": "containerd"}),),
        remediation=Remediation("fix"),
        references=(),
        explained_by=explained_by,
    )


EINTR = advisory("cni-netlink-eintr", r'cni net setup: plugin type="[^"]+" failed')
GENERIC = advisory(
    "netlink-dump-interrupted", r"interrupted system call", explained_by=("cni-netlink-eintr",)
)
BUILD = Build(
    id=48213,
    team_name="platform",
    name="311",
    status="errored",
    job_name="unit-tests",
    pipeline_name="backend",
    end_time=1747915518,
)


def ev(type: str, origin: str = "a1", **data: Any) -> Event:
    return Event(type=type, data={"origin": {"id": origin}, "time": 1747915500, **data})


def match(events: list[Event], *advisories: Advisory) -> list:
    matcher = EvidenceMatcher(advisories or (EINTR, GENERIC), base_url="https://ci.example.com")
    return matcher.match_build(BUILD, iter(events))


def test_the_worker_named_in_the_message_wins():
    found = match([ev("selected-worker", selected_worker="w-0"), ev("error", message=CNI)])
    assert [(e.advisory, e.worker) for e in found] == [("cni-netlink-eintr", "w-3")]
    assert found[0].implies == {"runtime": "containerd"}
    assert (
        found[0].url
        == "https://ci.example.com/teams/platform/pipelines/backend/jobs/unit-tests/builds/311"
    )


def test_without_a_name_the_selected_worker_of_the_same_step_is_used():
    message = CNI.split("w-3: ", 1)[1]
    found = match(
        [
            ev("selected-worker", "a1", selected_worker="w-1"),
            ev("selected-worker", "a2/image-get", selected_worker="w-2"),
            ev("error", "a2/image-get", message=message),
        ]
    )
    assert [e.worker for e in found] == ["w-2"]


def test_unattributable_evidence_keeps_no_worker_and_implies_nothing():
    found = match([ev("error", "zz", message=CNI.split("w-3: ", 1)[1])])
    assert found[0].worker is None and found[0].implies == {}


def test_an_explained_event_is_not_evidence_for_the_generic_rule():
    generic_only = "starting task: netlink: results interrupted system call"
    found = match([ev("error", message=CNI), ev("error", "b", message=generic_only)])
    assert sorted(e.advisory for e in found) == ["cni-netlink-eintr", "netlink-dump-interrupted"]
    assert match([ev("error", message=CNI)], GENERIC)[0].advisory == "netlink-dump-interrupted"


def test_aborted_builds_and_user_logs_are_not_evidence():
    events = [
        ev("error", message="interrupted"),
        ev("log", payload="read /dev/ttyS0: interrupted system call\n"),
    ]
    assert match(events) == []


def test_log_patterns_see_a_phrase_split_across_two_chunks():
    rule = advisory("user-rule", r"interrupted system call", event="log")
    found = match(
        [
            ev("selected-worker", selected_worker="w-4"),
            ev("log", payload="poll: interrupted sys"),
            ev("log", payload="tem call\n"),
        ],
        rule,
    )
    assert [(e.advisory, e.worker) for e in found] == [("user-rule", "w-4")]


def test_one_piece_of_evidence_per_advisory_and_worker_per_build():
    found = match([ev("error", message=CNI), ev("error", "a2", message=CNI)])
    assert len(found) == 1


def test_messages_are_redacted_and_truncated():
    long = CNI + " token=s3cr3t " + "x" * 2000
    matcher = EvidenceMatcher((EINTR,), base_url="https://ci", redact=Redactor(["hunter2"]))
    found = matcher.match_build(BUILD, [ev("error", message=long + " hunter2")])
    assert "s3cr3t" not in found[0].message and "hunter2" not in found[0].message
    assert len(found[0].message) <= 500


def test_only_builds_with_a_scanned_status_are_read_and_never_check_builds():
    builds = [
        BUILD,
        Build(id=1, team_name="t", name="check", status="errored"),
        Build(id=2, team_name="t", name="9", status="succeeded"),
    ]
    assert builds_to_read(builds, {"errored"}) == [BUILD]


def test_urls_for_one_off_and_instanced_builds():
    one_off = Build(id=7, team_name="t", name="1187", status="errored")
    assert build_url("https://ci/", one_off) == "https://ci/builds/7"
    instanced = Build(
        id=8,
        team_name="platform",
        name="57",
        status="errored",
        job_name="deploy",
        pipeline_name="release",
        pipeline_instance_vars={"env": "staging"},
    )
    assert build_url("https://ci", instanced).endswith("/builds/57?vars.env=%22staging%22")

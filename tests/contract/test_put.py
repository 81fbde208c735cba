"""`assets/out SRC` against the simulator: the gate, reruns, landing within limits, dry runs,
and roles. Every test that may change the fleet gets a simulator of its own and asserts on the
requests it recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fleet_guard.concourse.client import instance_var_params
from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import Result, run_asset, source_for

EINTR = "cni-netlink-eintr"
# In the incident scenario, the EINTR-errored job builds newest first. 1041 already has a
# rerun (1043); 1211 is a one-off that errored for another reason; 979 is outside the window.
ALL_EINTR_BUILDS = [1241, 1201, 1161, 1141, 1121, 1101, 1081, 1061, 1041, 1021]
# Once the green builds after them are gone (`rerunnable`), the newest EINTR build of each job:
# 1121, 1081 and 1021 are superseded by newer EINTR builds of their jobs.
EINTR_BUILDS = [1241, 1201, 1161, 1141, 1101, 1061]


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    with Simulator(load_scenario("incident")) as sim:
        yield sim


@pytest.fixture
def rerunnable() -> Iterator[Simulator]:
    """The incident without the builds that ran after each EINTR build of the same job."""
    scenario = load_scenario("incident")
    errored = [scenario.builds[i] for i in ALL_EINTR_BUILDS]
    for build in list(scenario.builds.values()):
        later = any(
            e.job == build.job and e.pipeline is build.pipeline and e.id < build.id for e in errored
        )
        if later and build.rerun_of is None and build.id not in ALL_EINTR_BUILDS:
            del scenario.builds[build.id]
    with Simulator(scenario) as sim:
        yield sim


@pytest.fixture
def mixed() -> Iterator[Simulator]:
    with Simulator(load_scenario("mixed-states")) as sim:
        yield sim


def put(sim: Simulator, src: Path, params: Any, user: str = "admin", **source: Any) -> Result:
    creds = {"username": user, "password": f"{user}-pass"}
    payload = {"source": {**source_for(sim, **source), **creds}, "params": params}
    return run_asset("out", payload, str(src))


def metadata(result: Result) -> list[tuple[str, str]]:
    items = result.json["metadata"]
    assert all(isinstance(m["name"], str) and isinstance(m["value"], str) for m in items)
    return [(m["name"], m["value"]) for m in items]


def named(result: Result, name: str) -> list[str]:
    return [value for key, value in metadata(result) if key == name]


def mutations(sim: Simulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.mutations]


def reruns(sim: Simulator) -> list[int]:
    """The ids whose rerun was requested, found by job build path and instance vars."""
    builds = requests.get(
        f"{sim.url}/api/v1/builds",
        params={"limit": "1000"},
        headers={"Authorization": "Bearer static-token-for-tests"},
        timeout=10,
    ).json()
    ids = {
        (
            f"/api/v1/teams/{b['team_name']}/pipelines/{b['pipeline_name']}"
            f"/jobs/{b['job_name']}/builds/{b['name']}",
            tuple(instance_var_params(b.get("pipeline_instance_vars"))),
        ): b["id"]
        for b in builds
        if b.get("job_name")
    }
    return [
        ids[(r.path, tuple(sorted((k, v) for k, vs in r.query.items() for v in vs)))]
        for r in sim.mutations
        if r.method == "POST"
    ]


def assert_version(result: Result) -> dict[str, str]:
    assert result.code == 0, result.stderr
    version = result.json["version"]
    assert set(version) == {"fingerprint", "seq", "status", "advisories"}
    assert all(isinstance(v, str) for v in version.values())
    return version


# --- gate ------------------------------------------------------------------------------------


def test_gate_fails_on_the_incident_with_the_summary_and_the_threshold(incident, tmp_path):
    incident.clear_requests()
    result = put(incident, tmp_path, {"action": "gate"})
    assert result.code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "fleet-guard: affected: cni-netlink-eintr on 2 of 5 workers (w-1, w-3)" in result.stderr
    assert "    matched: w-1, w-3" in result.stderr and "    fix: " in result.stderr
    # A build log is plain text: no Markdown emphasis, links or headings.
    assert "**" not in result.stderr and "](" not in result.stderr
    assert not any(line.startswith("#") for line in result.stderr.splitlines())
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fleet-guard: gate failed at fail_on high")
    assert "w-1, w-3" in last
    assert incident.mutations == []


def test_gate_passes_on_a_healthy_fleet(healthy, tmp_path):
    result = put(healthy, tmp_path, {"action": "gate"})
    version = assert_version(result)
    assert version["status"] == "healthy" and version["seq"] == "0"
    assert dict(metadata(result))["gate"] == "passed"


def test_gate_below_fail_on_passes_and_says_so(incident, tmp_path):
    result = put(incident, tmp_path, {"action": "gate", "fail_on": "critical"})
    version = assert_version(result)
    assert version["status"] == "affected", "the version still names the state"
    assert dict(metadata(result))["gate"] == "passed"
    assert dict(metadata(result))["fail_on"] == "critical"


def test_gate_fail_on_defaults_to_source_severity(healthy, tmp_path):
    # On the healthy fleet, declaring the bad CNI makes cni-netlink-eintr (high) match.
    facts = {"runtime": "containerd", "cni_plugins": "1.6.2"}
    assert put(healthy, tmp_path, {"action": "gate"}, facts=facts).code == 1
    lenient = put(healthy, tmp_path, {"action": "gate"}, facts=facts, severity="critical")
    assert lenient.code == 0, lenient.stderr


def test_gate_dry_run_reports_the_verdict_and_passes(incident, tmp_path):
    result = put(incident, tmp_path, {"action": "gate", "dry_run": True})
    assert_version(result)
    assert dict(metadata(result))["gate"] == "would fail (dry run)"
    assert "fleet-guard: affected: cni-netlink-eintr on 2 of 5 workers" in result.stderr


def test_the_put_version_is_the_live_state_with_seq_0(incident, tmp_path):
    [checked] = run_asset("check", {"source": source_for(incident)}).json
    version = assert_version(put(incident, tmp_path, {"action": "gate", "fail_on": "critical"}))
    assert version == {**checked, "seq": "0"}


# --- rerun -----------------------------------------------------------------------------------


def test_rerun_reruns_the_newest_eintr_job_builds_up_to_max_builds(rerunnable, tmp_path):
    result = put(rerunnable, tmp_path, {"action": "rerun"})
    assert_version(result)
    assert reruns(rerunnable) == EINTR_BUILDS[:5]
    assert all(m.startswith("POST /api/v1/teams/") for m in mutations(rerunnable))
    assert len(named(result, "rerun")) == 5
    assert named(result, "rerun")[0].startswith("platform/backend/build-image #16 (build 1241)")
    assert "rerun as #16.1" in named(result, "rerun")[0]


def test_rerun_never_touches_a_build_already_rerun_nor_a_one_off(rerunnable, tmp_path):
    result = put(rerunnable, tmp_path, {"action": "rerun", "max_builds": 20})
    assert_version(result)
    assert reruns(rerunnable) == EINTR_BUILDS
    skipped = named(result, "skipped")
    assert any("(build 1041): already rerun as #14.1 (build 1043)" in s for s in skipped)
    assert any("(build 1121): superseded by #" in s for s in skipped)


def test_rerun_of_an_instanced_pipeline_sends_its_vars(rerunnable, tmp_path):
    assert put(rerunnable, tmp_path, {"action": "rerun", "max_builds": 20}).code == 0
    [deploy] = [r for r in rerunnable.mutations if "/pipelines/release/" in r.path]
    assert deploy.query == {"vars.env": ['"prod"']}


def test_a_second_rerun_skips_what_the_first_reran(rerunnable, tmp_path):
    assert put(rerunnable, tmp_path, {"action": "rerun", "max_builds": 2}).code == 0
    second = put(rerunnable, tmp_path, {"action": "rerun", "max_builds": 2})
    assert_version(second)
    assert reruns(rerunnable) == EINTR_BUILDS[:4]
    skipped = named(second, "skipped")
    assert any("(build 1241): already rerun as #16.1" in s for s in skipped)


def test_rerun_dry_run_changes_nothing(rerunnable, tmp_path):
    result = put(rerunnable, tmp_path, {"action": "rerun", "dry_run": True})
    assert_version(result)
    assert rerunnable.mutations == []
    assert len(named(result, "planned")) == 5
    assert dict(metadata(result))["action"] == "rerun (dry run)"


def test_rerun_skips_every_build_that_green_builds_of_its_job_superseded(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "rerun", "dry_run": True, "max_builds": 20})
    assert_version(result)
    assert fresh.mutations == []
    skipped = named(result, "skipped")
    superseded = [s for s in skipped if "superseded by #" in s]
    assert any("(build 1241): superseded by #" in s and "succeeded" in s for s in superseded)
    planned = named(result, "planned")
    assert not any("build-image" in p for p in planned), "the green builds since replace it"
    assert "replay the old inputs" in result.stderr, "the dry run says why on stderr too"


def test_rerun_restricted_to_a_pipeline_and_jobs(rerunnable, tmp_path):
    params = {"action": "rerun", "max_builds": 20, "pipelines": ["oss-*"], "jobs": ["integ*"]}
    result = put(rerunnable, tmp_path, params)
    assert_version(result)
    assert reruns(rerunnable) == [1201]
    assert any("not in params.pipelines" in s for s in named(result, "skipped"))


# --- land, retire, prune ---------------------------------------------------------------------


def test_land_lands_one_affected_running_worker(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "land"})
    assert_version(result)
    assert mutations(fresh) == ["PUT /api/v1/workers/w-1/land"]
    assert named(result, "landed") == ["w-1"]
    assert named(result, "skipped") == ["w-3: max_workers is 1"]


def test_land_honours_keep_running(fresh, tmp_path):
    # With containerd declared, all five workers are affected; 50% of 5 running keeps 3.
    facts = {"runtime": "containerd"}
    result = put(fresh, tmp_path, {"action": "land", "max_workers": 5}, facts=facts)
    assert_version(result)
    assert len(named(result, "landed")) == 2
    assert len(fresh.mutations) == 2
    assert all(
        "keep_running 50%: 5 running, 3 must stay running" in s for s in named(result, "skipped")
    )


def test_keep_running_is_counted_on_the_fleet_as_it_is_now(fresh, tmp_path):
    facts = {"runtime": "containerd"}
    params = {"action": "land", "max_workers": 5, "keep_running": 3}
    assert len(named(put(fresh, tmp_path, params, facts=facts), "landed")) == 2
    again = put(fresh, tmp_path, params, facts=facts)
    assert_version(again)
    assert named(again, "landed") == [], "3 still running: nothing more may go"
    assert len(fresh.mutations) == 2
    reasons = named(again, "skipped")
    assert sum("already landing" in s for s in reasons) == 2
    assert sum("3 running, 3 must stay running" in s for s in reasons) == 3


def test_an_already_landing_worker_is_skipped_not_an_error(fresh, tmp_path):
    assert put(fresh, tmp_path, {"action": "land"}).code == 0
    second = put(fresh, tmp_path, {"action": "land"})
    assert_version(second)
    assert named(second, "skipped") == ["w-1: already landing"]
    assert named(second, "landed") == ["w-3"]


def test_land_dry_run_changes_nothing(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "land", "dry_run": True, "max_workers": 2})
    assert_version(result)
    assert fresh.mutations == []
    assert named(result, "planned") == ["w-1", "w-3"]


def test_prune_takes_only_stalled_affected_workers(mixed, tmp_path):
    # At severity medium the stalled worker and the one on an old worker API are affected;
    # only the stalled one can be pruned.
    result = put(mixed, tmp_path, {"action": "prune", "max_workers": 5}, severity="medium")
    assert_version(result)
    assert mutations(mixed) == ["PUT /api/v1/workers/concourse-worker-3/prune"]
    assert named(result, "pruned") == ["concourse-worker-3"]
    assert any(s.startswith("old-worker-1: running") for s in named(result, "skipped"))


def test_retire_goes_through_the_same_plan(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "retire", "workers": ["w-3"]})
    assert_version(result)
    assert mutations(fresh) == ["PUT /api/v1/workers/w-3/retire"]


# --- from: a get earlier in the job ----------------------------------------------------------


def test_from_acts_on_the_fetched_report_and_emits_its_version(fresh, tmp_path):
    [checked] = run_asset("check", {"source": source_for(fresh)}).json
    fetched = run_asset(
        "in", {"source": source_for(fresh), "version": checked}, str(tmp_path / "fleet")
    )
    assert fetched.code == 0, fetched.stderr
    fresh.clear_requests()
    result = put(fresh, tmp_path, {"action": "land", "from": "fleet"})
    assert result.code == 0, result.stderr
    assert result.json["version"] == checked, "Concourse already has it: nothing new is saved"
    assert mutations(fresh) == ["PUT /api/v1/workers/w-1/land"]
    assert not any("/events" in r.path or "/builds" in r.path for r in fresh.requests)


def test_from_a_directory_that_is_not_a_get_is_a_clear_message(fresh, tmp_path):
    fresh.clear_requests()
    result = put(fresh, tmp_path, {"action": "land", "from": "fleet"})
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "params.from: fleet/report.json does not exist" in result.stderr
    assert fresh.requests == [], "checked before any API call"


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["land", "retire", "rerun"])
def test_a_viewer_gets_a_clear_permission_message_and_nothing_is_sent(fresh, tmp_path, action):
    result = put(fresh, tmp_path, {"action": action}, user="viewer")
    assert result.code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert f"the credentials in source cannot {action} all of this" in result.stderr
    assert "nothing was changed" in result.stderr
    needed = "pipeline-operator role" if action == "rerun" else "needs an admin"
    assert needed in result.stderr and "`viewer`" in result.stderr
    assert fresh.mutations == []


def test_a_viewer_cannot_prune_either(mixed, tmp_path):
    result = put(mixed, tmp_path, {"action": "prune"}, user="viewer", severity="medium")
    assert result.code == 1
    assert "prune concourse-worker-3: a global worker (no team) needs an admin" in result.stderr
    assert mixed.mutations == []


def test_one_missing_role_stops_the_whole_plan(fresh, tmp_path):
    # operator is a member of platform (w-3) but not an admin (w-1 is global).
    result = put(fresh, tmp_path, {"action": "land", "max_workers": 2}, user="operator")
    assert result.code == 1
    assert "land w-1: a global worker (no team) needs an admin" in result.stderr
    assert fresh.mutations == []


def test_a_team_member_may_land_its_own_teams_worker(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "land", "workers": ["w-3"]}, user="operator")
    assert_version(result)
    assert mutations(fresh) == ["PUT /api/v1/workers/w-3/land"]


def test_a_dry_run_shows_what_would_be_refused(fresh, tmp_path):
    result = put(fresh, tmp_path, {"action": "land", "dry_run": True}, user="viewer")
    assert_version(result)
    assert any("needs an admin" in r for r in named(result, "refused"))
    assert fresh.mutations == []


def test_an_unknown_action_is_a_clear_message(incident, tmp_path):
    incident.clear_requests()
    result = put(incident, tmp_path, {"action": "drain"})
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "params.action: 'drain' is not one of" in result.stderr
    assert incident.requests == []

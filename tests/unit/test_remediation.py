"""Remediation planning and execution with plain data: every safety rule, no HTTP."""

from __future__ import annotations

import io

import pytest

from fleet_guard.advisories.engine import Finding
from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.advisories.model import Outcome
from fleet_guard.concourse.models import Build, UserInfo, Worker
from fleet_guard.errors import ConcourseError, PermissionDenied
from fleet_guard.evidence import Evidence
from fleet_guard.log import Log
from fleet_guard.params import Action, load_put_params
from fleet_guard.remediation import execute, missing_roles, plan_reruns, plan_workers

EINTR = "cni-netlink-eintr"
RULES = {rule.id: rule for rule in load_builtin_rules()}


def worker(name: str, state: str = "running", team: str = "") -> Worker:
    return Worker(name=name, state=state, platform="linux", team=team)


def fleet(*states: str) -> list[Worker]:
    return [worker(f"w-{i}", state) for i, state in enumerate(states)]


def params(action: str, **extra):
    return load_put_params({"action": action, **extra})


def targets(plan) -> list[str]:
    return [t.target for t in plan.tasks]


def reasons(plan) -> dict[str, str]:
    return {s.target: s.reason for s in plan.skipped}


# --- land, retire, prune ---------------------------------------------------------------------


def test_land_takes_the_worst_affected_worker_first_and_stops_at_max_workers():
    plan = plan_workers(Action.LAND, ["w-3", "w-1"], fleet(*["running"] * 5), params("land"))
    assert targets(plan) == ["w-3"]
    assert reasons(plan) == {"w-1": "max_workers is 1"}


def test_land_never_goes_below_keep_running_rounded_up():
    five = fleet(*["running"] * 5)
    affected = ["w-0", "w-1", "w-2", "w-3", "w-4"]
    plan = plan_workers(Action.LAND, affected, five, params("land", max_workers=5))
    assert targets(plan) == ["w-0", "w-1"], "50% of 5 keeps 3 running"
    assert reasons(plan)["w-2"] == "keep_running 50%: 5 running, 3 must stay running"
    plan = plan_workers(Action.LAND, affected, five, params("land", max_workers=5, keep_running=4))
    assert targets(plan) == ["w-0"]
    plan = plan_workers(Action.LAND, affected, five, params("land", keep_running="100%"))
    assert targets(plan) == []


def test_keep_running_counts_only_running_workers_of_the_whole_fleet():
    # 2 running of 4: 50% keeps 1, so one may go even though four are registered.
    workers = fleet("running", "running", "stalled", "landed")
    plan = plan_workers(Action.LAND, ["w-0", "w-1"], workers, params("land", max_workers=2))
    assert targets(plan) == ["w-0"]
    assert "2 running, 1 must stay running" in reasons(plan)["w-1"]


def test_landing_a_stalled_worker_does_not_use_up_the_running_room():
    workers = fleet("stalled", "running", "running")
    plan = plan_workers(Action.LAND, ["w-0", "w-1", "w-2"], workers, params("land", max_workers=3))
    assert targets(plan) == ["w-0", "w-1"], "2 running, 50% keeps 1: one running may go"


def test_workers_already_on_their_way_out_are_skipped_not_errors():
    workers = fleet("landing", "landed", "retiring", "running", "running", "running")
    affected = ["w-0", "w-1", "w-2", "w-3"]
    for action in ("land", "retire"):
        plan = plan_workers(Action(action), affected, workers, params(action))
        assert targets(plan) == ["w-3"]
        assert reasons(plan) == {
            "w-0": "already landing",
            "w-1": "already landed",
            "w-2": "already retiring",
        }


def test_prune_only_takes_workers_that_are_stalled_or_landed():
    workers = fleet("running", "stalled", "landing", "landed", "retiring")
    affected = [w.name for w in workers]
    plan = plan_workers(Action.PRUNE, affected, workers, params("prune", max_workers=5))
    assert targets(plan) == ["w-1", "w-3"]
    assert reasons(plan)["w-0"].startswith("running; Concourse prunes only")
    assert "draining" in reasons(plan)["w-2"] and "draining" in reasons(plan)["w-4"]


def test_prune_ignores_keep_running_because_it_never_touches_a_running_worker():
    workers = fleet("running", "stalled")
    plan = plan_workers(Action.PRUNE, ["w-1"], workers, params("prune", keep_running="100%"))
    assert targets(plan) == ["w-1"]


def test_only_affected_workers_are_ever_acted_on():
    workers = fleet(*["running"] * 5)
    plan = plan_workers(Action.LAND, ["w-1"], workers, params("land", workers=["w-1", "w-4"]))
    assert targets(plan) == ["w-1"]
    assert reasons(plan)["w-4"].startswith("not affected")
    plan = plan_workers(Action.LAND, ["w-1", "w-3"], workers, params("land", workers=["w-3"]))
    assert targets(plan) == ["w-3"]
    assert reasons(plan)["w-1"] == "not in params.workers"


def test_a_worker_that_left_is_skipped():
    plan = plan_workers(Action.LAND, ["gone", "w-0"], fleet("running", "running"), params("land"))
    assert targets(plan) == ["w-0"]
    assert reasons(plan) == {"gone": "no longer registered"}


def test_the_plan_says_how_the_floor_was_computed():
    plan = plan_workers(Action.LAND, [], fleet("running", "stalled", "running"), params("land"))
    assert plan.notes == ("2 of 3 workers running; keep_running 50% keeps 1 running",)


# --- rerun -----------------------------------------------------------------------------------


def build(build_id: int, **extra) -> Build:
    fields = {
        "team_name": "platform",
        "name": str(build_id - 1000),
        "status": "errored",
        "job_name": "unit",
        "pipeline_name": "backend",
    }
    return Build(id=build_id, **{**fields, **extra})


def evidence_for(b: Build, advisory: str = EINTR, worker_name: str = "w-1") -> Evidence:
    return Evidence(
        advisory=advisory,
        build_id=b.id,
        team=b.team_name,
        pipeline=b.pipeline_name,
        job=b.job_name,
        build=b.name,
        worker=worker_name,
        message="cni net setup: ... interrupted system call",
        url=f"https://ci.example.com/builds/{b.id}",
    )


def finding(advisory: str, builds: list[Build], outcome=Outcome.MATCHED) -> Finding:
    items = tuple(evidence_for(b, advisory) for b in builds)
    return Finding(RULES[advisory], outcome, ("w-1",), items)


def test_rerun_takes_evidence_builds_newest_first_up_to_max_builds():
    builds = [build(i) for i in (1010, 1020, 1030, 1040)]
    plan = plan_reruns([finding(EINTR, builds)], builds, params("rerun", max_builds=2))
    assert [t.build.id for t in plan.tasks] == [1040, 1030]
    assert reasons(plan) == {
        "platform/backend/unit #20 (build 1020)": "max_builds is 2",
        "platform/backend/unit #10 (build 1010)": "max_builds is 2",
    }


def test_rerun_never_repeats_a_rerun_nor_reruns_a_rerun_nor_a_one_off():
    original, rerun = build(1010), build(1012, name="10.1", rerun_of=1010)
    one_off = build(1020, job_name=None, pipeline_name=None, name="1187")
    ok = build(1030)
    builds = [original, rerun, one_off, ok]
    plan = plan_reruns([finding(EINTR, builds)], builds, params("rerun"))
    assert [t.build.id for t in plan.tasks] == [1030]
    assert reasons(plan) == {
        "platform/backend/unit #10.1 (build 1012)": "itself a rerun (of build 1010)",
        "platform/backend/unit #10 (build 1010)": "already rerun as #10.1 (build 1012)",
        "platform one-off build 1020": "a one-off build (no job), which Concourse cannot rerun",
    }


def test_rerun_only_errored_builds_of_the_chosen_advisories():
    eintr, failed, other = build(1010), build(1020, status="failed"), build(1030)
    findings = [finding(EINTR, [eintr, failed]), finding("runc-cve-2024-21626", [other])]
    plan = plan_reruns(findings, [eintr, failed, other], params("rerun"))
    assert [t.build.id for t in plan.tasks] == [1010]
    assert reasons(plan) == {"platform/backend/unit #20 (build 1020)": "failed, not errored"}
    plan = plan_reruns(findings, [eintr, failed, other], params("rerun", advisories=[EINTR]))
    assert [t.build.id for t in plan.tasks] == [1010]


def test_a_build_with_evidence_for_two_advisories_or_workers_is_rerun_once():
    b = build(1010)
    findings = [finding(EINTR, [b, b]), finding("netlink-dump-interrupted", [b])]
    plan = plan_reruns(findings, [b], params("rerun"))
    assert [t.build.id for t in plan.tasks] == [1010]
    assert plan.skipped == ()


def test_rerun_keeps_the_listed_build_for_its_instance_vars():
    b = build(1010, pipeline_instance_vars={"env": "prod"})
    plan = plan_reruns([finding(EINTR, [b])], [b], params("rerun"))
    assert plan.tasks[0].build.pipeline_instance_vars == {"env": "prod"}
    assert plan.tasks[0].team == "platform"


def test_a_build_superseded_by_a_newer_build_of_the_same_job_is_never_rerun():
    deploy = build(1010, job_name="deploy", start_time=100, pipeline_id=7)
    green = build(1030, job_name="deploy", status="succeeded", start_time=300, pipeline_id=7)
    pending = build(1040, job_name="unit", status="pending")  # never started: supersedes nothing
    unit = build(1020, start_time=200, pipeline_id=7)
    other_instance = build(1015, job_name="deploy", start_time=150, pipeline_id=8)
    builds = [deploy, unit, green, pending, other_instance]
    plan = plan_reruns([finding(EINTR, [deploy, unit, other_instance])], builds, params("rerun"))
    assert [t.build.id for t in plan.tasks] == [1020, 1015]
    assert reasons(plan) == {
        "platform/backend/deploy #10 (build 1010)": "superseded by #30 (build 1030, succeeded) "
        "of the same job; a rerun would replay the old inputs"
    }


def test_rerun_can_be_restricted_to_pipelines_and_jobs_by_glob():
    a = build(1010, job_name="unit-a")
    b = build(1020, job_name="integration", pipeline_name="release")
    c = build(1030, job_name="unit-b", team_name="oss", pipeline_name="release")
    builds = [a, b, c]
    chosen = plan_reruns(
        [finding(EINTR, builds)], builds, params("rerun", pipelines=["platform/rel*"])
    )
    assert [t.build.id for t in chosen.tasks] == [1020]
    assert set(reasons(chosen).values()) == {"not in params.pipelines"}
    chosen = plan_reruns([finding(EINTR, builds)], builds, params("rerun", jobs=["unit-*"]))
    assert [t.build.id for t in chosen.tasks] == [1030, 1010]
    chosen = plan_reruns([finding(EINTR, builds)], builds, params("rerun", pipelines=["release"]))
    assert [t.build.id for t in chosen.tasks] == [1030, 1020]


# --- roles -----------------------------------------------------------------------------------

ADMIN = UserInfo("admin", True, {"main": ("owner",)})
OPERATOR = UserInfo("operator", False, {"platform": ("member",), "oss": ("pipeline-operator",)})
VIEWER = UserInfo("viewer", False, {"main": ("viewer",), "platform": ("viewer",)})


def land_plan(*workers: Worker):
    names = [w.name for w in workers]
    return plan_workers(
        Action.LAND, names, list(workers), params("land", keep_running=0, max_workers=9)
    )


def test_admins_may_do_anything():
    plan = land_plan(worker("w-1"), worker("w-3", team="platform"))
    assert missing_roles(plan, ADMIN) == []


def test_a_team_member_may_land_the_teams_workers_but_not_global_or_other_teams_ones():
    assert missing_roles(land_plan(worker("w-3", team="platform")), OPERATOR) == []
    problems = missing_roles(land_plan(worker("w-1"), worker("w-4", team="oss")), OPERATOR)
    assert problems == [
        "land w-1: a global worker (no team) needs an admin (owner of team `main`); "
        "`operator` is not an admin",
        "land w-4: needs the member role (or higher) in team `oss`, or an admin (owner of team "
        "`main`); `operator` has pipeline-operator there",
    ]


def test_rerun_needs_pipeline_operator_on_the_builds_team():
    oss, platform = build(1010, team_name="oss"), build(1020)
    plan = plan_reruns([finding(EINTR, [oss, platform])], [oss, platform], params("rerun"))
    assert missing_roles(plan, OPERATOR) == []
    problems = missing_roles(plan, VIEWER)
    assert len(problems) == 2
    assert "needs the pipeline-operator role (or higher) in team `platform`" in problems[0]
    assert "`viewer` has viewer there" in problems[0]
    assert "team `oss`" in problems[1] and "has no role there" in problems[1]


# --- execution -------------------------------------------------------------------------------


class FakeClient:
    def __init__(
        self, refuse: dict[str, Exception] | None = None, fleets: list[list[Worker]] | None = None
    ) -> None:
        self.refuse = refuse or {}
        self.calls: list[tuple[str, str]] = []
        # What each successive GET /api/v1/workers answers; the last one repeats.
        self.fleets = fleets

    def workers(self) -> list[Worker]:
        self.calls.append(("workers", ""))
        if self.fleets is None:
            return fleet(*["running"] * 5)
        return self.fleets.pop(0) if len(self.fleets) > 1 else self.fleets[0]

    def _call(self, action: str, name: str) -> None:
        self.calls.append((action, name))
        if name in self.refuse:
            raise self.refuse[name]

    def land_worker(self, name: str) -> None:
        self._call("land", name)

    def retire_worker(self, name: str) -> None:
        self._call("retire", name)

    def prune_worker(self, name: str) -> None:
        self._call("prune", name)

    def rerun_build(self, b: Build) -> Build:
        self._call("rerun", str(b.id))
        return Build(id=b.id + 1, team_name=b.team_name, name=f"{b.name}.1", status="pending")


def quiet() -> Log:
    return Log(stream=io.StringIO())


def test_execution_goes_on_after_an_ordinary_failure():
    plan = land_plan(worker("w-0"), worker("w-1"), worker("w-2"))
    client = FakeClient({"w-1": ConcourseError("PUT /api/v1/workers/w-1/land: 500", status=500)})
    result = execute(plan, client, quiet())
    assert [c for c in client.calls if c[0] == "land"] == [
        ("land", "w-0"),
        ("land", "w-1"),
        ("land", "w-2"),
    ]
    assert [d.task.target for d in result.done] == ["w-0", "w-2"]
    assert [f.task.target for f in result.failed] == ["w-1"]


@pytest.mark.parametrize("error", [PermissionDenied("403", status=403)])
def test_execution_stops_once_the_credentials_are_refused(error):
    plan = land_plan(worker("w-0"), worker("w-1"), worker("w-2"))
    client = FakeClient({"w-0": error})
    result = execute(plan, client, quiet())
    assert client.calls == [("workers", ""), ("land", "w-0")]
    assert [t.target for t in result.not_attempted] == ["w-1", "w-2"]


def test_a_rerun_reports_the_new_build():
    b = build(1010)
    plan = plan_reruns([finding(EINTR, [b])], [b], params("rerun"))
    result = execute(plan, FakeClient(), quiet())
    assert result.done[0].result == "rerun as #10.1 (build 1011)"


def test_each_worker_action_reads_the_workers_again_first():
    plan = land_plan(worker("w-0"), worker("w-1"))
    client = FakeClient()
    execute(plan, client, quiet())
    assert client.calls == [("workers", ""), ("land", "w-0"), ("workers", ""), ("land", "w-1")]


def test_keep_running_is_checked_again_when_workers_stalled_since_the_plan():
    planned = fleet("running", "running", "running", "running")
    plan = plan_workers(
        Action.LAND, ["w-0", "w-1"], planned, params("land", keep_running=2, max_workers=2)
    )
    assert [t.target for t in plan.tasks] == ["w-0", "w-1"]
    # By the time the put acts, w-2 has stalled; after landing w-0 only w-1 and w-3 run.
    meanwhile = fleet("running", "running", "stalled", "running")
    after_first = fleet("landing", "running", "stalled", "running")
    client = FakeClient(fleets=[meanwhile, after_first])
    result = execute(plan, client, quiet())
    assert [d.task.target for d in result.done] == ["w-0"]
    assert [(s.target, s.reason.split(":")[0]) for s in result.skipped] == [
        ("w-1", "keep_running 2")
    ]
    assert "2 running now" in result.skipped[0].reason


def test_a_worker_that_left_or_began_landing_since_the_plan_is_skipped():
    plan = land_plan(worker("w-0"), worker("w-1"))
    client = FakeClient(fleets=[[worker("w-1", "landing")]])
    result = execute(plan, client, quiet())
    assert result.done == []
    assert [(s.target, s.reason) for s in result.skipped] == [
        ("w-0", "no longer registered"),
        ("w-1", "now already landing"),
    ]


def test_a_worker_list_that_cannot_be_read_again_stops_that_action():
    class Broken(FakeClient):
        def workers(self) -> list[Worker]:
            raise ConcourseError("GET /api/v1/workers failed with 500", status=500)

    result = execute(land_plan(worker("w-0")), Broken(), quiet())
    assert result.done == [] and "could not be read again" in result.skipped[0].reason

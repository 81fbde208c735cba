"""Remediation: which workers to land, retire or prune and which builds to rerun, done safely.

Planning is a pure function of the scan (findings, listed builds), the fresh worker list and
the params, so every safety rule can be tested with plain data:

- only affected workers, worst first, at most `max_workers`;
- never below the `keep_running` floor of the workers running now;
- a worker already on its way out (landing, landed, retiring) is skipped, not an error;
- only stalled or landed workers are pruned: the ATC refuses running ones, and pruning a
  landing or retiring worker would cut off the builds it is still draining;
- only errored job builds are rerun, never one-offs, reruns, or builds already rerun, and
  never a build superseded by a newer build of the same job (same pipeline instance), which
  would replay stale inputs; `pipelines` and `jobs` globs narrow it further.

Then the roles are checked for the whole plan before anything is sent, so credentials that
cannot do all of it do none of it. Right before each land, retire or prune the worker list is
read again and the worker's state and the `keep_running` floor are checked against it: the
scan may be minutes old, and a worker that stalled meanwhile no longer runs builds.
Execution goes through the client; one failed call does not stop the others (each was
planned as safe on its own) unless the credentials were refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol

from fleet_guard.advisories.engine import Finding
from fleet_guard.concourse.models import Build, UserInfo, Worker
from fleet_guard.errors import AuthError, ConcourseError, PermissionDenied, UserError
from fleet_guard.evidence import Evidence
from fleet_guard.log import Log
from fleet_guard.params import Action, KeepRunning, PutParams
from fleet_guard.schema import did_you_mean

# atc/api/accessor/roles.go: each role includes the ones below it.
ROLE_RANK: Mapping[str, int] = {"viewer": 1, "pipeline-operator": 2, "member": 3, "owner": 4}
REQUIRED_ROLE: Mapping[Action, str] = {
    Action.LAND: "member",
    Action.RETIRE: "member",
    Action.PRUNE: "member",
    Action.RERUN: "pipeline-operator",
}
ADMIN = "an admin (owner of team `main`)"

_LEAVING = ("landing", "landed", "retiring")
_PRUNABLE = ("stalled", "landed")


@dataclass(frozen=True)
class Task:
    """One API call the plan will make."""

    action: Action
    target: str
    team: str
    worker: Worker | None = None
    build: Build | None = None


@dataclass(frozen=True)
class Skipped:
    target: str
    reason: str


@dataclass(frozen=True)
class Plan:
    action: Action
    tasks: tuple[Task, ...]
    skipped: tuple[Skipped, ...]
    # How the limits were applied, for the log: "5 running; keep_running 50% keeps 3".
    notes: tuple[str, ...] = ()
    # The floor as planned; execution re-checks it against a fresh worker list.
    keep_running: KeepRunning = field(default_factory=KeepRunning)
    floor: int = 0


class Remediator(Protocol):
    """The part of ConcourseClient that changes things; a protocol so plans run against fakes."""

    def land_worker(self, name: str) -> None: ...

    def retire_worker(self, name: str) -> None: ...

    def prune_worker(self, name: str) -> None: ...

    def rerun_build(self, build: Build) -> Build: ...

    def workers(self) -> list[Worker]: ...


@dataclass(frozen=True)
class Done:
    task: Task
    result: str = ""


@dataclass(frozen=True)
class Failed:
    task: Task
    error: str


@dataclass
class Execution:
    done: list[Done] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    # Left out after the credentials were refused: the rest would be refused too.
    not_attempted: list[Task] = field(default_factory=list)
    # No longer safe when their turn came (the fresh worker list said otherwise).
    skipped: list[Skipped] = field(default_factory=list)


def plan_workers(
    action: Action, affected: Sequence[str], workers: Sequence[Worker], params: PutParams
) -> Plan:
    """`affected` is worst first; the plan keeps that order and stops at the limits."""
    registered = {w.name: w for w in workers}
    unknown = [name for name in params.workers if name not in registered]
    if unknown:
        # A typo here would otherwise read as "not affected": nothing done, nothing said.
        hints = "".join(did_you_mean(name, registered) for name in unknown[:1])
        raise UserError(
            f"params.workers names {', '.join(unknown)}, which no registered worker is called"
            f"{hints}; the registered workers are: {', '.join(sorted(registered)) or 'none'}"
        )
    running = sum(1 for w in workers if w.state == "running")
    floor = params.keep_running.floor(running)
    room = max(running - floor, 0)
    only = set(params.workers)
    tasks: list[Task] = []
    skipped = [
        Skipped(name, "not affected; Fleet Guard acts only on affected workers")
        for name in params.workers
        if name not in affected
    ]
    for name in affected:
        worker = registered.get(name)
        reason = None
        if only and name not in only:
            reason = "not in params.workers"
        elif worker is None:
            reason = "no longer registered"
        else:
            reason = _state_reason(action, worker.state)
        if reason is None and len(tasks) >= params.max_workers:
            reason = f"max_workers is {params.max_workers}"
        takes_a_runner = worker is not None and worker.state == "running"
        if reason is None and takes_a_runner and room == 0:
            reason = (
                f"keep_running {params.keep_running}: {running} running, {floor} must stay running"
            )
        if reason is not None:
            skipped.append(Skipped(name, reason))
            continue
        assert worker is not None
        room -= 1 if takes_a_runner else 0
        tasks.append(Task(action, name, worker.team, worker=worker))
    notes = (
        f"{running} of {len(workers)} workers running; keep_running {params.keep_running} "
        f"keeps {floor} running",
    )
    return Plan(action, tuple(tasks), tuple(skipped), notes, params.keep_running, floor)


def _state_reason(action: Action, state: str) -> str | None:
    if action is Action.PRUNE:
        if state == "running":
            return "running; Concourse prunes only workers that are not running (land it first)"
        if state not in _PRUNABLE:
            return f"{state}; it is still draining its builds (prune it once landed)"
        return None
    if state in _LEAVING:
        return f"already {state}"
    return None


def plan_reruns(findings: Iterable[Finding], builds: Sequence[Build], params: PutParams) -> Plan:
    """The evidence builds of `params.advisories`, newest first, one task per build."""
    listed = {b.id: b for b in builds}
    rerun_as = {b.rerun_of: b for b in sorted(builds, key=lambda b: b.id) if b.rerun_of}
    newest = _newest_started(builds)
    wanted = set(params.advisories)
    evidence: dict[int, Evidence] = {}
    for finding in findings:
        if finding.advisory.id in wanted:
            for item in finding.evidence:
                evidence.setdefault(item.build_id, item)
    tasks: list[Task] = []
    skipped: list[Skipped] = []
    for build_id in sorted(evidence, reverse=True):
        item = evidence[build_id]
        build = listed.get(build_id)
        target = _evidence_label(item)
        reason = _rerun_reason(build, rerun_as) or _filter_reason(build, params)
        if reason is None and build is not None:
            reason = _superseded_reason(build, newest)
        if reason is None and len(tasks) >= params.max_builds:
            reason = f"max_builds is {params.max_builds}"
        if reason is not None:
            skipped.append(Skipped(target, reason))
            continue
        assert build is not None
        tasks.append(Task(Action.RERUN, target, build.team_name, build=build))
    notes = (f"{len(evidence)} builds with evidence of {', '.join(params.advisories)}",)
    return Plan(Action.RERUN, tuple(tasks), tuple(skipped), notes)


def _rerun_reason(build: Build | None, rerun_as: Mapping[int, Build]) -> str | None:
    if build is None:
        return "not among the builds listed"
    if not (build.job_name and build.pipeline_name):
        return "a one-off build (no job), which Concourse cannot rerun"
    if build.rerun_of:
        return f"itself a rerun (of build {build.rerun_of})"
    if build.id in rerun_as:
        again = rerun_as[build.id]
        return f"already rerun as #{again.name} (build {again.id})"
    if build.status != "errored":
        return f"{build.status}, not errored"
    return None


def _job_key(build: Build) -> tuple[str, int | str | None, str | None]:
    """One job of one pipeline instance: instanced pipelines each have their own id."""
    pipeline = build.pipeline_id if build.pipeline_id is not None else build.pipeline_name
    return (build.team_name, pipeline, build.job_name)


def _newest_started(
    builds: Sequence[Build],
) -> dict[tuple[str, int | str | None, str | None], Build]:
    """The newest build of each job that has started (pending builds have not run yet)."""
    newest: dict[tuple[str, int | str | None, str | None], Build] = {}
    for build in builds:
        if build.job_name and build.start_time is not None:
            key = _job_key(build)
            if key not in newest or build.id > newest[key].id:
                newest[key] = build
    return newest


def _superseded_reason(
    build: Build, newest: Mapping[tuple[str, int | str | None, str | None], Build]
) -> str | None:
    later = newest.get(_job_key(build))
    if later is None or later.id <= build.id or later.rerun_of == build.id:
        return None
    return (
        f"superseded by #{later.name} (build {later.id}, {later.status or 'started'}) of the "
        "same job; a rerun would replay the old inputs"
    )


def _filter_reason(build: Build | None, params: PutParams) -> str | None:
    if build is None or not (build.job_name and build.pipeline_name):
        return None
    pipeline = f"{build.team_name}/{build.pipeline_name}"
    if params.pipelines and not any(
        fnmatchcase(pipeline if "/" in glob else build.pipeline_name, glob)
        for glob in params.pipelines
    ):
        return "not in params.pipelines"
    if params.jobs and not any(fnmatchcase(build.job_name, glob) for glob in params.jobs):
        return "not in params.jobs"
    return None


def _evidence_label(item: Evidence) -> str:
    if item.pipeline and item.job:
        return f"{item.team}/{item.pipeline}/{item.job} #{item.build} (build {item.build_id})"
    return f"{item.team} one-off build {item.build_id}"


def missing_roles(plan: Plan, user: UserInfo) -> list[str]:
    """Every task the credentials may not do, each naming the role, the team and the target."""
    if user.is_admin:
        return []
    role = REQUIRED_ROLE[plan.action]
    who = f"`{user.name}`" if user.name else "these credentials"
    problems = []
    for task in plan.tasks:
        if task.worker is not None and not task.team:
            problems.append(
                f"{task.action} {task.target}: a global worker (no team) needs {ADMIN}; "
                f"{who} is not an admin"
            )
            continue
        held = user.teams.get(task.team, ())
        if _rank(held) < ROLE_RANK[role]:
            has = f"has {', '.join(held)} there" if held else "has no role there"
            problems.append(
                f"{task.action} {task.target}: needs the {role} role (or higher) in team "
                f"`{task.team}`, or {ADMIN}; {who} {has}"
            )
    return problems


def _rank(roles: Iterable[str]) -> int:
    return max((ROLE_RANK.get(r, 0) for r in roles), default=0)


def execute(plan: Plan, client: Remediator, log: Log) -> Execution:
    """Runs the plan in order; call only after `missing_roles` came back empty."""
    outcome = Execution()
    for index, task in enumerate(plan.tasks):
        stale = _no_longer_safe(plan, task, client) if task.worker is not None else None
        if stale is not None:
            outcome.skipped.append(Skipped(task.target, stale))
            log.info(f"{task.action} {task.target}: skipped: {stale}")
            continue
        try:
            result = _perform(task, client)
        except (AuthError, PermissionDenied) as error:
            outcome.failed.append(Failed(task, error.message))
            outcome.not_attempted = list(plan.tasks[index + 1 :])
            log.info(f"{task.action} {task.target}: FAILED: {error.message}")
            break
        except ConcourseError as error:
            outcome.failed.append(Failed(task, error.message))
            log.info(f"{task.action} {task.target}: FAILED: {error.message}")
            continue
        outcome.done.append(Done(task, result))
        log.info(f"{task.action} {task.target}: done{f' ({result})' if result else ''}")
    return outcome


def _no_longer_safe(plan: Plan, task: Task, client: Remediator) -> str | None:
    """Why the worker task must not run now, judged on a worker list read right before it."""
    try:
        workers = client.workers()
    except ConcourseError as error:
        return f"the worker list could not be read again, so not acting on old state: {error}"
    worker = next((w for w in workers if w.name == task.target), None)
    if worker is None:
        return "no longer registered"
    reason = _state_reason(plan.action, worker.state)
    if reason is not None:
        return f"now {reason}"
    if worker.state != "running":
        return None
    running = sum(1 for w in workers if w.state == "running")
    floor = max(plan.floor, plan.keep_running.floor(running))
    if running - 1 < floor:
        return (
            f"keep_running {plan.keep_running}: {running} running now (workers may have "
            f"stalled or left since the plan), {floor} must stay running"
        )
    return None


def _perform(task: Task, client: Remediator) -> str:
    if task.action is Action.RERUN:
        assert task.build is not None
        new = client.rerun_build(task.build)
        return f"rerun as #{new.name} (build {new.id})"
    {
        Action.LAND: client.land_worker,
        Action.RETIRE: client.retire_worker,
        Action.PRUNE: client.prune_worker,
    }[task.action](task.target)
    return ""

"""`out` (put): gate a deploy on the fleet's health, or remediate it within safe limits.

The version a put prints is informational. Concourse saves it as a resource version, and a
*new* one becomes the latest version, schedules every job that triggers on the resource, and
is what the next `check` continues from. So:

- with `from`, the put prints the version the job fetched: Concourse already has it, records
  nothing new and triggers nothing;
- otherwise it prints the live state with `seq` "0". check's own versions start at seq 1, so
  the two never collide, and the same state always gives the same put version, so repeated
  puts add at most one version per state. Put to a resource no job triggers on (and that is
  not checked) to keep even that one out of the check stream; see the example pipelines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.models import UserInfo
from fleet_guard.config import SourceConfig, load_source
from fleet_guard.errors import UserError
from fleet_guard.log import Log
from fleet_guard.params import Action, PutParams, load_put_params
from fleet_guard.remediation import (
    REQUIRED_ROLE,
    ROLE_RANK,
    Execution,
    Plan,
    execute,
    missing_roles,
    plan_reruns,
    plan_workers,
)
from fleet_guard.render import render_text
from fleet_guard.resource.get import AFFECTED_FILE, REPORT_FILE
from fleet_guard.resource.metadata import as_version, metadata, shorten, state_pairs
from fleet_guard.resource.protocol import Request
from fleet_guard.scan import scan_fleet, summary_line
from fleet_guard.version import AFFECTED, INCOMPLETE, Version

_PAST = {
    Action.LAND: "landed",
    Action.RETIRE: "retired",
    Action.PRUNE: "pruned",
    Action.RERUN: "rerun",
}


@dataclass(frozen=True)
class Fetched:
    """What an earlier `get` in the same job wrote: its version and affected workers."""

    version: dict[str, str]
    affected: tuple[str, ...]


def put(request: Request, log: Log) -> dict[str, Any]:
    params = load_put_params(request.params)
    config = load_source(request.source)
    # Read before any API call, so a wrong `from` costs nothing.
    fetched = _read_fetched(Path(request.directory or "."), params.from_dir)
    with ConcourseClient(config, log) as client:
        if params.action is Action.GATE:
            return _gate(config, params, client, log)
        return _remediate(config, params, fetched, client, log)


def _gate(
    config: SourceConfig, params: PutParams, client: ConcourseClient, log: Log
) -> dict[str, Any]:
    report = scan_fleet(config, client, log)
    log.info(summary_line(report))
    fail_on = params.fail_on or config.severity
    verdict = replace(report, threshold=fail_on)
    outcome = "passed"
    line = ""
    if verdict.status == AFFECTED:
        log.info(render_text(verdict))
        line = (
            f"gate failed at fail_on {fail_on}: the fleet is affected by "
            f"{', '.join(verdict.advisory_ids)} on {shorten(verdict.affected_workers)} "
            f"({len(verdict.affected_workers)} workers); the lines above say what to do"
        )
    elif verdict.status == INCOMPLETE:
        gaps = "\n".join(f"  - {gap}" for gap in verdict.coverage.problems())
        if params.allow_incomplete:
            log.warn(
                "gate passed on an incomplete scan (allow_incomplete: true); it could not "
                f"see:\n{gaps}"
            )
            outcome = "passed (incomplete)"
        else:
            line = (
                "gate failed: the scan could not see everything in its scope, so it cannot "
                f"call the fleet healthy:\n{gaps}\nFix what is named above, or set "
                "allow_incomplete: true on this put to pass on what it could see."
            )
    if line:
        if not params.dry_run:
            raise UserError(line)
        log.info(f"fleet-guard: dry run, so passing anyway: {line}")
        outcome = "would fail (dry run)"
    pairs = [
        ("action", "gate"),
        ("gate", outcome),
        ("fail_on", fail_on),
        *state_pairs(report.version()),
        ("affected_workers", shorten(report.affected_workers)),
        ("coverage", report.coverage.summary()),
    ]
    return {"version": report.version().to_json(), "metadata": metadata(pairs)}


def _remediate(
    config: SourceConfig,
    params: PutParams,
    fetched: Fetched | None,
    client: ConcourseClient,
    log: Log,
) -> dict[str, Any]:
    action = params.action
    plan, version = _plan(config, params, fetched, client, log)
    _log_plan(plan, params, log)

    # Roles are checked for the whole plan before anything is sent.
    user = client.user()
    denied = missing_roles(plan, user)
    if not plan.tasks:
        _warn_if_powerless(action, user, log)
    if denied and not params.dry_run:
        raise UserError(
            f"the credentials in source cannot {action} all of this, so nothing was changed:\n"
            + "\n".join(f"  - {d}" for d in denied)
            + "\nGrant the role in the team's auth (fly set-team), or give this put a "
            "credential that holds it (README: Roles and least privilege)."
        )
    if params.dry_run:
        for problem in denied:
            log.warn(f"would be refused: {problem}")
        log.info("fleet-guard: dry run: nothing was changed")
        planned = [("planned", t.target) for t in plan.tasks]
        pairs = _outcome_pairs(plan, version, planned, dry_run=True)
        pairs += [("refused", d) for d in denied]
        return {"version": version, "metadata": metadata(pairs)}

    execution = execute(plan, client, log)
    if execution.failed:
        raise UserError(_failure_message(plan, execution))
    pairs = _outcome_pairs(plan, version, _done_pairs(plan, execution), dry_run=False)
    pairs += [("skipped", f"{s.target}: {s.reason}") for s in execution.skipped]
    return {"version": version, "metadata": metadata(pairs)}


def _plan(
    config: SourceConfig,
    params: PutParams,
    fetched: Fetched | None,
    client: ConcourseClient,
    log: Log,
) -> tuple[Plan, dict[str, str]]:
    """The plan, and the version the put will print (see the module docstring)."""
    action = params.action
    if action.on_workers and fetched is not None:
        log.info(f"fleet-guard: affected workers from {params.from_dir}/{AFFECTED_FILE}")
        plan = plan_workers(action, fetched.affected, client.workers(), params)
        return plan, fetched.version
    report = scan_fleet(config, client, log)
    log.info(summary_line(report))
    if action.on_workers:
        plan = plan_workers(action, report.affected_workers, report.workers, params)
    else:
        plan = plan_reruns(report.findings, report.builds, params)
    return plan, fetched.version if fetched else report.version().to_json()


def _read_fetched(src: Path, from_dir: str | None) -> Fetched | None:
    if from_dir is None:
        return None
    directory = src / from_dir
    report_path = directory / REPORT_FILE
    affected_path = directory / AFFECTED_FILE
    for path in (report_path, affected_path):
        if not path.is_file():
            raise UserError(
                f"params.from: {from_dir}/{path.name} does not exist in the put's working "
                "directory. `from` names a `get` of this resource earlier in the same job "
                "(its step name, such as `fleet`), and that get must scan (params.scan: true)."
            )
    try:
        version = as_version(json.loads(report_path.read_text("utf-8"))["version"])
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"params.from: {from_dir}/{REPORT_FILE} is not a report written by this resource's "
            f"get ({error}); point `from` at the get step of a fleet-guard resource."
        ) from None
    lines = affected_path.read_text("utf-8").splitlines()
    return Fetched(
        version=version,
        affected=tuple(line.strip() for line in lines if line.strip()),
    )


def _log_plan(plan: Plan, params: PutParams, log: Log) -> None:
    count = len(plan.tasks)
    noun = "build" if plan.action is Action.RERUN else "worker"
    head = "dry run: would" if params.dry_run else "plan:"
    log.info(f"fleet-guard: {head} {plan.action} {count} {noun}{'s' * (count != 1)}")
    for note in plan.notes:
        log.info(f"  ({note})")
    for task in plan.tasks:
        log.info(f"  {plan.action} {task.target}")
    for skip in plan.skipped:
        log.info(f"  skip {skip.target}: {skip.reason}")


def _warn_if_powerless(action: Action, user: UserInfo, log: Log) -> None:
    """Nothing to do today; say now if the credentials could not have done it anyway."""
    needed = ROLE_RANK[REQUIRED_ROLE[action]]
    held = [ROLE_RANK.get(r, 0) for roles in user.teams.values() for r in roles]
    if not user.is_admin and max(held, default=0) < needed:
        log.warn(
            f"these credentials hold no {REQUIRED_ROLE[action]} role in any team; "
            f"a {action} with something to do would be refused"
        )


def _outcome_pairs(
    plan: Plan, version: dict[str, str], acted: list[tuple[str, str]], *, dry_run: bool
) -> list[tuple[str, Any]]:
    """Every action taken (or, in a dry run, planned) and every one skipped, with why."""
    label = f"{plan.action} (dry run)" if dry_run else str(plan.action)
    pairs: list[tuple[str, Any]] = [("action", label), *state_pairs(Version.from_json(version))]
    pairs += acted
    pairs += [("skipped", f"{s.target}: {s.reason}") for s in plan.skipped]
    if not plan.tasks:
        pairs.append(("result", "nothing to do"))
    return pairs


def _done_pairs(plan: Plan, execution: Execution) -> list[tuple[str, str]]:
    return [
        (_PAST[plan.action], f"{d.task.target}: {d.result}" if d.result else d.task.target)
        for d in execution.done
    ]


def _failure_message(plan: Plan, execution: Execution) -> str:
    lines = [
        f"{len(execution.failed)} of {len(plan.tasks)} {plan.action} calls failed:",
        *(f"  - {f.task.target}: {f.error}" for f in execution.failed),
    ]
    if execution.done:
        done = ", ".join(d.task.target for d in execution.done)
        lines.append(f"Done before or after the failure: {done}.")
    if execution.not_attempted:
        rest = ", ".join(t.target for t in execution.not_attempted)
        lines.append(f"Not attempted once the credentials were refused: {rest}.")
    return "\n".join(lines)

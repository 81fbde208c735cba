"""Rules that name worker states: `uptime`, `below`, and worker states that count as evidence.

gdn that cannot start logs its error only to the worker's own log; what the ATC shows is the
worker stalling right after it registered. A worker that drops to an older worker API gets no
work at all. Both are read from /api/v1/workers, not from build events.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleet_guard.advisories.engine import check, explain, judge
from fleet_guard.advisories.loader import compile_rule, load_builtin_rules
from fleet_guard.advisories.model import Condition, Outcome
from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConfigError
from fleet_guard.facts import Fact, FactSource, ReleaseTable, build_facts

NOW = 1_750_000_000
WEB = {"web.worker_version": "2.5", "web.concourse": "7.12.0"}
RULES = {r.id: r for r in load_builtin_rules()}
TABLE = ReleaseTable.load()


def _facts(**values: str) -> dict[str, Fact]:
    return {k: Fact(v, FactSource.OBSERVED, "/api/v1/workers") for k, v in values.items()}


def _worker(name: str, **kwargs: Any) -> Worker:
    values: dict[str, Any] = {"state": "running", "platform": "linux", "version": "2.5"}
    values.update(kwargs)
    return Worker(name=name, **values)


# --- the uptime fact ---------------------------------------------------------------------------


def test_uptime_is_the_time_since_the_worker_started_at_the_scan() -> None:
    info = Info(version="7.12.0", worker_version="2.5")
    config = SourceConfig(url="https://ci.example.com")
    workers = [_worker("w-0", start_time=NOW - 600), _worker("w-1", start_time=0)]
    facts = build_facts(workers, info, config, [], TABLE, now=NOW)
    uptime = facts["w-0"]["uptime"]
    assert (uptime.value, uptime.source) == ("600", FactSource.OBSERVED)
    assert "start_time" in uptime.detail
    assert "uptime" not in facts["w-1"], "an unknown start time gives no uptime"
    assert "uptime" not in build_facts(workers, info, config, [], TABLE)["w-0"], "no clock"


@pytest.mark.parametrize(
    ("test", "uptime", "expected"),
    [
        (Condition("uptime", under=3600), "600", True),
        (Condition("uptime", under=3600), "3600", False),
        (Condition("uptime", over=86400), "90000", True),
        (Condition("uptime", over=86400), "600", False),
        (Condition("uptime", under=3600), "soon", None),
    ],
)
def test_uptime_under_and_over(test: Condition, uptime: str, expected: bool | None) -> None:
    result = check(test, _facts(uptime=uptime), WEB)
    assert result.result is expected, result.reason
    assert check(test, {}, WEB).result is None


# --- below a web fact --------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "expected"), [("2.4", True), ("2.5", False), ("2.6", False)])
def test_a_worker_api_below_the_web_nodes_gets_no_work(api: str, expected: bool) -> None:
    (condition,) = RULES["worker-api-behind"].conditions
    result = check(condition, _facts(worker_api=api), WEB)
    assert result.result is expected, result.reason
    assert ("not below" in result.reason) is not expected


def test_below_an_unknown_web_fact_is_unknown() -> None:
    (condition,) = RULES["worker-api-behind"].conditions
    assert check(condition, _facts(worker_api="2.4"), {}).result is None


# --- worker states count as evidence -----------------------------------------------------------

GUARDIAN_7_12 = {"runtime": "guardian", "concourse": "7.12.0"}


def test_a_guardian_worker_that_stalls_right_after_starting_shows_the_cgroup_failure() -> None:
    rule = RULES["guardian-cgroup-v2"]
    facts = _facts(**GUARDIAN_7_12, state="stalled", uptime="600")
    verdict = judge(rule, "w-1", facts, (), WEB)
    # cgroup is unknown, but the worker does what a gdn that cannot start makes it do
    assert verdict.outcome is Outcome.EVIDENCE_ONLY
    assert verdict.states and "stalled within an hour" in verdict.states[0]
    (*_, seen) = explain(rule, facts, (), WEB)
    assert seen.fact == "evidence" and seen.result is True and "stalled" in seen.reason
    declared = {**facts, "cgroup": Fact("v2", FactSource.OPERATOR, "source.facts")}
    assert judge(rule, "w-1", declared, (), WEB).outcome is Outcome.MATCHED


@pytest.mark.parametrize(
    "facts",
    [
        {**GUARDIAN_7_12, "state": "stalled", "uptime": str(3 * 86400)},  # ran for days first
        {**GUARDIAN_7_12, "state": "running", "uptime": "600"},  # just started, heartbeating
        {**GUARDIAN_7_12, "state": "stalled"},  # start time unknown
    ],
)
def test_other_workers_are_only_possible(facts: dict[str, str]) -> None:
    verdict = judge(RULES["guardian-cgroup-v2"], "w-1", _facts(**facts), (), WEB)
    assert verdict.outcome is Outcome.POSSIBLE and verdict.states == ()


def test_a_containerd_worker_that_stalls_early_is_clear_of_the_guardian_rule() -> None:
    """Unlike an error text, a worker state is no signature of one failure: where the facts
    rule the advisory out, the state does not count."""
    facts = _facts(runtime="containerd", concourse="7.12.0", state="stalled", uptime="60")
    verdict = judge(RULES["guardian-cgroup-v2"], "w-1", facts, (), WEB)
    assert verdict.outcome is Outcome.CLEAR and verdict.states == ()
    (*_, seen) = explain(RULES["guardian-cgroup-v2"], facts, (), WEB)
    assert seen.result is False


# --- the rule format ---------------------------------------------------------------------------


def _rule(**evidence: Any) -> dict[str, Any]:
    return {
        "id": "my-rule",
        "summary": "s",
        "severity": "low",
        "evidence": evidence,
        "remediation": {"fix": "f"},
    }


def test_a_symptom_rule_may_name_only_worker_states() -> None:
    states = [{"summary": "idle", "conditions": {"worker_api": {"below": "web.worker_version"}}}]
    rule = compile_rule(_rule(required=True, worker_states=states), where="r", builtin=False)
    (state,) = rule.worker_states
    assert state.summary == "idle" and state.conditions[0].below == "web.worker_version"
    verdict = judge(rule, "w", _facts(worker_api="2.4"), (), WEB)
    assert verdict.outcome is Outcome.MATCHED


@pytest.mark.parametrize(
    ("states", "where"),
    [
        ([{"summary": "x", "conditions": {"uptime": {"under": "soon"}}}], "uptime.under"),
        ([{"summary": "x", "conditions": {}}], "worker_states[0].conditions"),
        ([{"conditions": {"state": {"equals": "stalled"}}}], "worker_states[0]"),
        ([{"summary": "x", "conditions": {"kernel": {"equals": "six"}}}], "kernel.equals"),
    ],
)
def test_bad_worker_states_are_refused_at_their_path(states: list[Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_rule(_rule(required=True, worker_states=states), where="r", builtin=False)
    assert any(where in p for p in caught.value.problems), caught.value.problems

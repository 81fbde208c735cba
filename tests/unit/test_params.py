"""get/put params: defaults from the schemas, every problem at once, misplaced keys caught."""

from __future__ import annotations

import pytest

from fleet_guard.errors import ConfigError
from fleet_guard.params import Action, KeepRunning, load_get_params, load_put_params
from fleet_guard.schema import load_schema
from fleet_guard.severity import Severity


def problems_of(raw, loader=load_put_params) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loader(raw)
    return caught.value.problems


def test_get_params_default_to_scanning_when_concourse_sends_none():
    assert load_get_params(None).scan is True
    assert load_get_params({}).scan is True
    assert load_get_params({"scan": False}).scan is False


def test_get_params_reject_unknown_keys_with_a_hint():
    [problem] = problems_of({"scna": False}, load_get_params)
    assert problem.startswith("params.scna: unknown key")
    assert "did you mean 'scan'" in problem


def test_put_needs_an_action():
    assert problems_of(None) == ["params.action: required key is missing"]
    [problem] = problems_of({"action": "drain"})
    assert problem.startswith("params.action:") and "gate" in problem


def test_put_defaults_are_the_schema_defaults():
    params = load_put_params({"action": "land"})
    defaults = {k: v.get("default") for k, v in load_schema("put_params")["properties"].items()}
    assert params.action is Action.LAND
    assert params.fail_on is None, "gate falls back to source.severity"
    assert list(params.advisories) == defaults["advisories"]
    assert params.advisories == ("cni-netlink-eintr", "netlink-dump-interrupted")
    assert params.max_builds == defaults["max_builds"] == 5
    assert params.max_workers == defaults["max_workers"] == 1
    assert str(params.keep_running) == defaults["keep_running"] == "50%"
    assert params.workers == ()
    assert params.from_dir is None
    assert params.dry_run is False


def test_put_reads_every_key():
    params = load_put_params(
        {
            "action": "retire",
            "max_workers": 2,
            "keep_running": 3,
            "workers": ["w-1"],
            "from": "fleet",
            "dry_run": True,
        }
    )
    assert (params.max_workers, params.keep_running.floor(10)) == (2, 3)
    assert (params.workers, params.from_dir, params.dry_run) == (("w-1",), "fleet", True)
    gate = load_put_params({"action": "gate", "fail_on": "critical"})
    assert gate.fail_on is Severity.CRITICAL


@pytest.mark.parametrize(
    ("raw", "running", "floor"),
    [("50%", 5, 3), ("50%", 4, 2), ("0%", 5, 0), ("100%", 4, 4), ("34%", 3, 2), (2, 9, 2)],
)
def test_keep_running_percentages_round_up(raw, running, floor):
    assert KeepRunning.parse(raw).floor(running) == floor


def test_keep_running_that_is_neither_a_count_nor_a_percentage_is_explained():
    [problem] = problems_of({"action": "land", "keep_running": "half"})
    assert problem.startswith("params.keep_running:")
    assert '"50%"' in problem and "number of workers" in problem
    assert problems_of({"action": "land", "keep_running": "150%"})
    assert problems_of({"action": "land", "keep_running": -1})


def test_a_key_the_action_ignores_is_an_error_not_a_surprise():
    problems = problems_of({"action": "gate", "max_workers": 2, "advisories": ["x"]})
    assert "params.max_workers: not used by action `gate`; only by `land`, `retire`, `prune`" in (
        problems
    )
    assert any(p.startswith("params.advisories: not used by action `gate`") for p in problems)
    assert problems_of({"action": "rerun", "fail_on": "high"})
    assert problems_of({"action": "gate", "from": "fleet"})


def test_every_problem_is_reported_at_once():
    problems = problems_of({"action": "gate", "fail_on": "urgent", "max_workers": 0})
    assert any(p.startswith("params.fail_on:") for p in problems)
    assert any(p.startswith("params.max_workers:") for p in problems)


def test_from_must_be_relative_to_the_put_directory():
    [problem] = problems_of({"action": "land", "from": "/tmp/build/put/fleet"})
    assert problem.startswith("params.from:") and "relative" in problem


def test_rerun_advisories_must_be_ids():
    [problem] = problems_of({"action": "rerun", "advisories": ["CNI EINTR"]})
    assert problem.startswith("params.advisories[0]:") and "slug" in problem


def test_params_must_be_an_object():
    [problem] = problems_of(["gate"])
    assert problem.startswith("params:") or problem.startswith("(document)")

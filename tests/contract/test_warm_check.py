"""A check in a reused container asks the ATC only for what is new since the last one.

`assets/check` runs as Concourse runs it, twice or more with the same cache directory, against
the simulator; the fleet moves on in between. Whatever the cache holds, the answer must be
the one a cold check gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import run_asset, source_for

EINTR = (
    "find or create container on worker {worker}: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(load_scenario("incident")) as running:
        yield running


def check(sim: Simulator, cache: Path, **source: object) -> tuple[list[dict[str, str]], str]:
    sim.clear_requests()
    result = run_asset("check", {"source": source_for(sim, **source)}, cache_dir=cache)
    assert result.code == 0, result.stderr
    summary = next(line for line in result.stderr.splitlines() if "API calls" in line)
    return result.json, summary


def calls(sim: Simulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.requests]


def errored(build_id: int, worker: str, started_ago: int = 60) -> dict[str, object]:
    return {
        "id": build_id,
        "team": "platform",
        "pipeline": "deploy",
        "job": "smoke",
        "started_ago": started_ago,
        "duration": 20,
        "steps": [{"task": "smoke", "worker": worker, "error": EINTR.format(worker=worker)}],
    }


def newest(sim: Simulator) -> int:
    return max(sim.scenario.builds)


def test_a_warm_check_with_nothing_new_makes_four_calls_and_gives_the_same_answer(sim, tmp_path):
    cold, _ = check(sim, tmp_path)
    warm, summary = check(sim, tmp_path)
    assert warm == cold
    assert calls(sim) == [
        "POST /sky/issuer/token",
        "GET /api/v1/info",
        "GET /api/v1/workers",
        "GET /api/v1/builds",
    ]
    # The pending and the started build of the scenario are the ones asked for again.
    assert "(2 new or updated, 1 page)" in summary and "4 API calls" in summary


def test_new_errored_builds_cost_one_stream_each_and_are_found(sim, tmp_path):
    check(sim, tmp_path)
    top = newest(sim)
    sim.add_builds([errored(top + 1, "w-4"), errored(top + 2, "w-4"), errored(top + 3, "w-4")])
    warm, summary = check(sim, tmp_path)
    streams = [c for c in calls(sim) if c.endswith("/events")]
    assert sorted(streams) == [f"GET /api/v1/builds/{top + n}/events" for n in (1, 2, 3)]
    assert len(calls(sim)) <= 8, calls(sim)
    assert "(5 new or updated, 1 page)" in summary  # and the 2 unfinished ones
    fresh, _ = check(sim, tmp_path / "cold")
    assert warm == fresh, "the same answer as a cold check"


def test_a_build_running_at_one_check_and_errored_at_the_next_is_read(sim, tmp_path):
    top = newest(sim)
    running = {**errored(top + 1, "w-4"), "status": "started"}
    sim.add_builds([running])
    check(sim, tmp_path)
    assert f"GET /api/v1/builds/{top + 1}/events" not in calls(sim)  # not errored yet
    sim.add_builds([errored(top + 1, "w-4")])
    warm, _ = check(sim, tmp_path)
    assert f"GET /api/v1/builds/{top + 1}/events" in calls(sim)
    fresh, _ = check(sim, tmp_path / "cold")
    assert warm == fresh


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: text.replace('"format": 1', '"format": "1"'),
        lambda text: text.replace('"newest": ', '"newest": -'),
        lambda text: "[]",
    ],
    ids=["truncated", "wrong-format", "bad-newest", "not-an-object"],
)
def test_a_damaged_cache_means_a_cold_check_with_the_same_answer(sim, tmp_path, damage):
    first, _ = check(sim, tmp_path)
    (path,) = tmp_path.glob("fleet-guard-evidence-*.json")
    path.write_text(damage(path.read_text()))
    again, summary = check(sim, tmp_path)
    assert again == first
    assert "new or updated" not in summary, "listed cold"


def test_teams_are_listed_incrementally_one_request_each(sim, tmp_path):
    teams = ["platform", "oss"]
    cold, _ = check(sim, tmp_path, teams=teams)
    warm, summary = check(sim, tmp_path, teams=teams)
    assert "new or updated, 2 pages)" in summary, summary
    assert warm == cold
    lists = [c for c in calls(sim) if c.endswith("/builds")]
    assert lists == ["GET /api/v1/teams/platform/builds", "GET /api/v1/teams/oss/builds"]
    # Another set of teams is another listing: cold again.
    _, other = check(sim, tmp_path, teams=["platform"])
    assert "new or updated" not in other

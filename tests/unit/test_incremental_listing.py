"""A warm check lists only what is new: one `from=` request on top of the last listing.

Against the simulator over real HTTP, each case compares the incremental listing with a cold
one of the same moment: they must agree on every build and its status, except where the cold
walk is known to miss something (a fresh rerun of an old build) and the warm one does not.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_guard.concourse import paging
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.models import Build
from fleet_guard.concourse.paging import BuildListing, Series
from fleet_guard.config import SourceConfig
from fleet_guard.evidence_cache import EvidenceCache
from fleet_guard.log import Log
from fleet_guard.simulator import Simulator, load_scenario

HOUR = 3600


def job_build(id: int, started_ago: int, **extra: Any) -> dict[str, Any]:
    team = {} if "rerun_of" in extra else {"team": extra.pop("team", "main")}
    return {
        "id": id,
        **team,
        "pipeline": "app",
        "job": "unit",
        "started_ago": started_ago,
        "duration": 60,
        "steps": [{"task": "test", "worker": "w-1"}],
        **extra,
    }


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    """Two hours of builds, one every five minutes, on two teams."""
    builds = [
        job_build(100 + n, 2 * HOUR - n * 300, team="main" if n % 3 else "ops") for n in range(24)
    ]
    scenario = {
        "info": {"version": "7.12.0", "worker_version": "2.5"},
        "users": [{"username": "admin", "password": "pw", "teams": {"main": ["owner"]}}],
        "workers": [{"name": "w-1"}],
        "builds": builds,
    }
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(scenario))
    with Simulator(load_scenario(str(path))) as running:
        yield running


def client_for(sim: Simulator) -> ConcourseClient:
    config = SourceConfig(url=sim.url, username="admin", password="pw")
    return ConcourseClient(config, Log(stream=io.StringIO()))


def listing(
    sim: Simulator,
    since: int,
    known: BuildListing | None = None,
    teams: tuple[str, ...] = (),
    max_builds: int = 1000,
) -> BuildListing:
    with client_for(sim) as client:
        client.info()  # log in first, so the recorded requests below are the listing's own
        sim.clear_requests()
        return client.list_builds(
            since=since,
            max_builds=max_builds,
            teams=teams,
            known=known.series if known else None,
        )


def shown(result: BuildListing) -> list[tuple[int, str]]:
    return [(b.id, b.status) for b in result.builds]


def list_queries(sim: Simulator) -> list[dict[str, list[str]]]:
    return [r.query for r in sim.requests if r.path.endswith("/builds")]


def test_nothing_new_costs_one_request_and_gives_the_same_builds(sim):
    since = int(time.time()) - HOUR
    cold = listing(sim, since)
    assert cold.fetched is None and len(cold.builds) > 5
    warm = listing(sim, since, cold)
    assert shown(warm) == shown(cold)
    assert list_queries(sim) == [{"from": ["124"], "limit": ["1000"]}]
    assert (warm.fetched, warm.pages) == (0, 1)


def test_a_build_running_at_one_check_and_errored_at_the_next_is_read_fresh(sim):
    since = int(time.time()) - HOUR
    sim.add_builds([job_build(130, 30, status="started")])
    first = listing(sim, since)
    assert (130, "started") in shown(first)
    sim.add_builds([job_build(130, 30, status="errored"), job_build(131, 10)])
    warm = listing(sim, since, first)
    assert list_queries(sim) == [{"from": ["130"], "limit": ["1001"]}]
    assert shown(warm)[:2] == [(131, "succeeded"), (130, "errored")]
    assert warm.fetched == 2
    assert shown(warm) == shown(listing(sim, since))
    # And once finished, the next check asks only past the newest build.
    listing(sim, since, warm)
    assert list_queries(sim) == [{"from": ["132"], "limit": ["1000"]}]


def test_reruns_are_listed_next_to_their_original_even_a_fresh_rerun_of_an_old_build(sim):
    since = int(time.time()) - HOUR
    first = listing(sim, since)
    old = min(b.id for b in first.builds)
    outside = old - 3  # started and ended before the window
    sim.add_builds(
        [
            job_build(140, 20, rerun_of=old + 2),  # a rerun of a build in the window
            job_build(141, 10, rerun_of=outside),  # a fresh rerun of a build out of the window
        ]
    )
    warm = listing(sim, since, first)
    cold = listing(sim, since)
    ids = [b.id for b in warm.builds]
    assert ids.index(140) == ids.index(old + 2) - 1, "a rerun sorts just before its original"
    assert 141 in ids, "the from= page finds what the cold walk stops before reaching"
    assert 141 not in [b.id for b in cold.builds]
    assert [i for i in ids if i != 141] == [b.id for b in cold.builds]


def test_builds_that_left_the_window_are_dropped_without_a_call(sim):
    now = int(time.time())
    first = listing(sim, now - HOUR)
    later = now - HOUR + 1800  # half an hour on, nothing new
    warm = listing(sim, later, first)
    assert len(list_queries(sim)) == 1
    assert len(warm.builds) < len(first.builds)
    assert all((b.end_time or now) >= later for b in warm.builds)
    assert shown(warm) == shown(listing(sim, later))


def test_a_listing_cut_at_max_builds_moves_on_like_a_cold_one(sim):
    since = int(time.time()) - HOUR
    first = listing(sim, since, max_builds=5)
    assert first.capped and len(first.builds) == 5
    sim.add_builds([job_build(170, 8), job_build(171, 4, rerun_of=122)])
    warm = listing(sim, since, first, max_builds=5)
    assert len(list_queries(sim)) == 1
    assert warm.capped
    assert shown(warm) == shown(listing(sim, since, max_builds=5))


def test_a_full_page_means_more_changed_than_expected_and_the_window_is_listed_afresh(
    sim, monkeypatch
):
    since = int(time.time()) - HOUR
    first = listing(sim, since)
    monkeypatch.setattr(paging, "NEW_BUILDS_ROOM", 2)
    sim.add_builds([job_build(150 + n, 5) for n in range(4)])
    warm = listing(sim, since, first)
    assert warm.fetched is None, "listed cold"
    assert list_queries(sim)[0] == {"from": ["124"], "limit": ["2"]}
    assert shown(warm) == shown(listing(sim, since))


def test_teams_each_get_their_own_request_and_an_unknown_team_is_walked_cold(sim):
    since = int(time.time()) - HOUR
    teams = ("main", "ops")
    first = listing(sim, since, teams=teams)
    assert first.series is not None
    main, ops = "/api/v1/teams/main/builds", "/api/v1/teams/ops/builds"
    assert first.series[main].newest == 123 and first.series[ops].newest == 121
    sim.add_builds([job_build(160, 5, team="ops")])
    warm = listing(sim, since, first, teams=teams)
    assert [q.get("from") for q in list_queries(sim)] == [["124"], ["122"]]
    assert shown(warm) == shown(listing(sim, since, teams=teams))
    assert (160, "succeeded") in shown(warm)
    assert warm.series is not None
    partial = BuildListing(builds=[], pages=0, capped=False, series={main: warm.series[main]})
    again = listing(sim, since, partial, teams=teams)
    assert [q.get("from") for q in list_queries(sim)] == [["124"], None]  # ops: walked cold
    assert shown(again) == shown(warm)


# The cache file: what it keeps, and everything that must make the next check list cold.

SETTINGS = (("main",), 86400, 1000)


def cache_with_listing(tmp_path: Path, now: float) -> tuple[EvidenceCache, dict[str, Series]]:
    series = {
        "/api/v1/teams/main/builds": Series(
            newest=12,
            builds=(
                Build(id=11, team_name="main", name="4", status="started", start_time=5),
                Build(
                    id=10,
                    team_name="main",
                    name="3",
                    status="errored",
                    job_name="unit",
                    pipeline_name="app",
                    pipeline_instance_vars={"branch": "x"},
                    start_time=1,
                    end_time=2,
                    rerun_of=7,
                    rerun_number=1,
                ),
            ),
        )
    }
    cache = EvidenceCache(tmp_path / "cache.json", Log(stream=io.StringIO()))
    listed = BuildListing(builds=[], pages=1, capped=False, series=series)
    cache.remember_listing(listed, *SETTINGS, now=now)
    cache.save([])
    return EvidenceCache(tmp_path / "cache.json", Log(stream=io.StringIO())), series


def test_the_listing_survives_the_cache_file(tmp_path):
    now = time.time()
    reread, series = cache_with_listing(tmp_path, now)
    assert reread.known_listing(*SETTINGS, now=now + 600) == series


@pytest.mark.parametrize(
    "why, settings, later",
    [
        ("other teams", (("main", "ops"), 86400, 1000), 600),
        ("another window", (("main",), 3600, 1000), 600),
        ("another max_builds", (("main",), 86400, 50), 600),
        ("older than the window", SETTINGS, 86400 + 1),
        ("from the future", SETTINGS, -3600),
    ],
)
def test_a_listing_made_for_something_else_is_not_built_on(tmp_path, why, settings, later):
    now = time.time()
    reread, _ = cache_with_listing(tmp_path, now)
    assert reread.known_listing(*settings, now=now + later) is None, why


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["listing"].update(format=99),
        lambda d: d["listing"].pop("series"),
        lambda d: d["listing"]["series"]["/api/v1/teams/main/builds"].update(newest="12"),
        lambda d: d["listing"]["series"]["/api/v1/teams/main/builds"]["builds"][0].pop(),
        lambda d: d["listing"]["series"]["/api/v1/teams/main/builds"]["builds"][1].__setitem__(
            0, "10"
        ),
        lambda d: d["listing"]["series"]["/api/v1/teams/main/builds"]["builds"][1].__setitem__(
            8, -1
        ),
        lambda d: d.update(listing=[1, 2]),
    ],
)
def test_a_damaged_listing_means_a_cold_listing(tmp_path, damage):
    now = time.time()
    cache_with_listing(tmp_path, now)
    path = tmp_path / "cache.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    reread = EvidenceCache(path, Log(stream=io.StringIO()))
    assert reread.known_listing(*SETTINGS, now=now + 60) is None


def test_a_truncated_cache_file_means_a_cold_listing(tmp_path):
    now = time.time()
    cache_with_listing(tmp_path, now)
    path = tmp_path / "cache.json"
    path.write_text(path.read_text()[:-40])
    assert EvidenceCache(path, Log(stream=io.StringIO())).known_listing(*SETTINGS, now=now) is None

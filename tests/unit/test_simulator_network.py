"""The simulator as a benchmark needs it: a remote ATC's latency and bandwidth, a stream cache,
builds added while running, connection counts, and paging that stays cheap on a big fleet."""

from __future__ import annotations

import random
import time

import pytest
import requests

from fleet_guard.simulator import Simulator, load_scenario
from fleet_guard.simulator.model import Build
from fleet_guard.simulator.paging import Page, RangeError, _paginate_by_bisection, paginate

TIMEOUT = 10


@pytest.mark.parametrize("seed", range(6))
def test_paging_by_bisection_answers_exactly_as_the_scan_does(seed):
    """The fast path for big fleets must not change a single page or link."""
    rng = random.Random(seed)
    ids = sorted(rng.sample(range(1, 400), 60), reverse=True)  # with gaps, like the ATC's
    builds = [Build(id=i, team="main", name=str(i), status="succeeded") for i in ids]
    bounds = [None, -1, 0, 1, ids[-1], ids[0], ids[0] + 5, *rng.sample(range(-5, 420), 20)]
    for _ in range(400):
        limit = rng.choice([-1, 1, 3, 10, 100])
        page = Page(limit=limit, from_=rng.choice(bounds), to=rng.choice(bounds))
        try:
            expected = paginate(builds, page)
        except RangeError:
            with pytest.raises(RangeError):
                _paginate_by_bisection(builds, page)
            continue
        assert _paginate_by_bisection(builds, page) == expected, page


def login(sim: Simulator) -> dict[str, str]:
    token = requests.post(
        f"{sim.url}/sky/issuer/token",
        auth=("fly", "Zmx5"),
        data={
            "grant_type": "password",
            "username": "admin",
            "password": "admin-pass",
            "scope": "openid",
        },
        timeout=TIMEOUT,
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def read_stream(sim: Simulator, build_id: int, headers: dict[str, str]) -> bytes:
    """The decoded body up to and including `end` (the server holds the stream open after)."""
    with requests.get(
        f"{sim.url}/api/v1/builds/{build_id}/events", headers=headers, stream=True, timeout=TIMEOUT
    ) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        body = b""
        for piece in response.iter_content(None):
            body += piece
            if b"event: end" in body:
                return body
    raise AssertionError("the stream ended without `end`")


def test_latency_rate_and_the_stream_cache_while_running():
    scenario = load_scenario("healthy")
    scenario.stream.cache = True
    scenario.stream.hold_seconds = 5
    with Simulator(scenario) as sim:
        headers = login(sim)
        sim.add_builds(
            [
                {
                    "id": 9100,
                    "team": "main",
                    "pipeline": "app",
                    "job": "big",
                    "started_ago": 30,
                    "steps": [
                        {"task": "t", "worker": "w-1", "log_bytes": 400_000, "log_text": "varied"}
                    ],
                }
            ]
        )
        first = read_stream(sim, 9100, headers)
        again = read_stream(sim, 9100, headers)
        assert first == again and first.count(b"\n\n") > 500  # cached as rendered
        stats = requests.get(f"{sim.url}/_sim/stats", timeout=TIMEOUT).json()
        assert stats["cached_streams"] == 1

        requests.post(
            f"{sim.url}/_sim/network", json={"latency": 0.2, "rate": 200_000}, timeout=TIMEOUT
        )
        started = time.monotonic()
        requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert read_stream(sim, 9100, headers) == first
        # latency, then at least the gzip bytes (a quarter of the text, or more) at 200 KB/s
        assert time.monotonic() - started >= 0.2 + len(first) / 8 / 200_000
        bad = requests.post(f"{sim.url}/_sim/network", json={"rate": -1}, timeout=TIMEOUT)
        assert bad.status_code == 400


def test_builds_added_while_running_are_listed_and_replace_by_id():
    with Simulator(load_scenario("healthy")) as sim:
        headers = login(sim)
        newest = requests.get(
            f"{sim.url}/api/v1/builds?limit=1", headers=headers, timeout=TIMEOUT
        ).json()[0]["id"]
        spec = {
            "id": newest + 1,
            "team": "main",
            "pipeline": "app",
            "job": "j",
            "status": "started",
            "started_ago": 5,
            "steps": [{"task": "t", "worker": "w-1"}],
        }
        added = requests.post(f"{sim.url}/_sim/builds", json={"builds": [spec]}, timeout=TIMEOUT)
        assert added.json() == {"added": [newest + 1]}
        page = requests.get(
            f"{sim.url}/api/v1/builds?from={newest + 1}", headers=headers, timeout=TIMEOUT
        ).json()
        assert [(b["id"], b["status"]) for b in page] == [(newest + 1, "started")]
        spec.update(status="errored", duration=3)
        sim.add_builds([spec])
        page = requests.get(
            f"{sim.url}/api/v1/builds?from={newest + 1}", headers=headers, timeout=TIMEOUT
        ).json()
        assert [(b["id"], b["status"]) for b in page] == [(newest + 1, "errored")]
        assert "end_time" in page[0]
        bad = requests.post(
            f"{sim.url}/_sim/builds", json={"builds": [{"id": 1, "oops": 1}]}, timeout=TIMEOUT
        )
        assert bad.status_code == 400


def test_the_connection_peak_counts_connections_open_at_once():
    with Simulator(load_scenario("healthy")) as sim:
        sim.clear_requests()
        sessions = [requests.Session() for _ in range(3)]
        for session in sessions:  # three keep-alive connections, open together
            session.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)
        assert sim.peak_connections == 3
        for session in sessions:
            session.close()
        time.sleep(0.3)
        sim.clear_requests()
        requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)
        assert sim.peak_connections == 1

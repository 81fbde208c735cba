"""No server answer breaks a step: each fault the simulator can inject, against `assets/check`.

Every case: exit 0 with a correct answer or exit 1 with one paragraph, never a traceback, no
secret on any output, and no longer than the deadline the message states.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import PASSWORD, Result, run_asset, source_for


def assert_clean(result: Result) -> None:
    assert result.code in (0, 1)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    if result.code == 1:
        assert result.stdout == ""
    else:
        json.loads(result.stdout)


def check(sim: Simulator, **extra: Any) -> Result:
    result = run_asset("check", {"source": source_for(sim, emit="all", **extra)})
    assert_clean(result)
    return result


BAD_BUILDS = [
    {
        "id": 7001,
        "team_name": "main",
        "name": "1",
        "status": "errored",
        "start_time": "yesterday",
        "end_time": {"at": 1},
        "job_name": ["j"],
        "pipeline_name": 5,
        "rerun_of": "x",
    },
    {"id": "7002", "team_name": "main", "name": "2", "status": "errored"},
]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (
            {
                "path": "/api/v1/builds",
                "status": 200,
                "body": json.dumps(BAD_BUILDS[:1]),
                "content_type": "application/json",
            },
            0,
        ),
        (
            {
                "path": "/api/v1/builds",
                "status": 200,
                "body": json.dumps(BAD_BUILDS),
                "content_type": "application/json",
            },
            1,
        ),
        (
            {
                "path": "/api/v1/info",
                "status": 200,
                "body": '{"version": {"a": 1}, '
                '"worker_version": 7, "feature_flags": "yes", "external_url": []}',
                "content_type": "application/json",
            },
            0,
        ),
        (
            {
                "path": "/api/v1/workers",
                "status": 200,
                "body": '[{"name": "w-9", "tags": "gpu", '
                '"start_time": "now", "active_containers": "many", "state": 3}]',
                "content_type": "application/json",
            },
            0,
        ),
        (
            {
                "path": "/api/v1/builds/*/events",
                "status": 200,
                "content_type": "text/event-stream",
                "body": 'id: 0\nevent: event\ndata: {"event": "error", "data": {"origin": "x", '
                '"message": 5, "time": "t"}}\n\nid: 1\nevent: event\ndata: {"event": '
                '"selected-worker", "data": {"origin": [1], "selected_worker": {}}}\n\n'
                "id: 2\nevent: end\ndata:\n\n",
                "times": -1,
            },
            0,
        ),
    ],
    ids=["build-times-as-text", "build-id-as-text", "info-types", "worker-types", "event-types"],
)
def test_wrong_typed_fields_are_read_or_refused_in_one_paragraph(fault, code):
    with Simulator(load_scenario("healthy")) as sim:
        sim.add_fault(fault)
        result = check(sim)
    assert result.code == code, result.stderr
    if code == 1:
        assert "cannot read" in result.stderr


def test_a_retry_after_that_is_not_a_number_is_still_retried():
    with Simulator(load_scenario("healthy")) as sim:
        sim.add_fault({"path": "/api/v1/workers", "status": 429, "retry_after": "soon", "times": 2})
        result = check(sim)
        attempts = [r for r in sim.requests if r.path == "/api/v1/workers"]
    assert result.code == 0, result.stderr
    assert len(attempts) == 3


def test_an_answer_cut_mid_body_is_retried():
    with Simulator(load_scenario("healthy")) as sim:
        body = json.dumps([{"name": "w-0", "state": "running", "platform": "linux"}] * 20)
        sim.add_fault(
            {
                "path": "/api/v1/workers",
                "status": 200,
                "body": body,
                "content_type": "application/json",
                "truncate": True,
                "times": 1,
            }
        )
        result = check(sim)
        attempts = [r for r in sim.requests if r.path == "/api/v1/workers"]
    assert result.code == 0, result.stderr
    assert len(attempts) == 2


def test_an_answer_cut_every_time_says_so_and_that_it_retried():
    with Simulator(load_scenario("healthy")) as sim:
        body = json.dumps({"version": "7.12.0", "worker_version": "2.5", "x": "y" * 500})
        sim.add_fault(
            {
                "path": "/api/v1/info",
                "status": 200,
                "body": body,
                "truncate": True,
                "content_type": "application/json",
                "times": -1,
            }
        )
        result = check(sim)
    assert result.code == 1
    assert "cut off before its end (4 attempts over" in result.stderr


def test_a_dripping_server_is_given_up_on_at_the_stated_deadline():
    with Simulator(load_scenario("healthy")) as sim:
        body = json.dumps({"version": "7.12.0", "worker_version": "2.5"})
        sim.add_fault(
            {
                "path": "/api/v1/info",
                "status": 200,
                "body": body,
                "drip": 0.3,
                "content_type": "application/json",
                "times": -1,
            }
        )
        started = time.monotonic()
        result = check(sim, request_timeout=2)
        took = time.monotonic() - started
    assert result.code == 1
    assert "after source.request_timeout (2 s) in total, on attempt 1" in result.stderr
    assert took < 10


def test_a_dripping_event_stream_counts_as_cut_not_as_a_hang():
    with Simulator(load_scenario("incident")) as sim:
        events = "".join(
            f'id: {n}\nevent: event\ndata: {{"event": "log", "data": {{"payload": "x"}}}}\n\n'
            for n in range(50)
        )
        sim.add_fault(
            {
                "path": "/api/v1/builds/1241/events",
                "status": 200,
                "drip": 0.05,
                "body": events,
                "content_type": "text/event-stream",
                "times": -1,
            }
        )
        started = time.monotonic()
        result = check(sim, request_timeout=1, concurrency=1)
        took = time.monotonic() - started
    assert result.code == 0, result.stderr
    assert "not read whole (1241" in result.stderr, "the dripping build counts as cut"
    assert took < 30


def test_build_pages_that_repeat_end_the_walk():
    with Simulator(load_scenario("healthy")) as sim:
        page = json.dumps(
            [
                {
                    "id": 5,
                    "team_name": "main",
                    "name": "1",
                    "status": "succeeded",
                    "start_time": int(time.time()),
                    "end_time": int(time.time()),
                }
            ]
        )
        sim.add_fault(
            {
                "path": "/api/v1/builds",
                "status": 200,
                "body": page,
                "times": -1,
                "content_type": "application/json",
                "headers": {"Link": f'<{sim.url}/api/v1/builds?to=5&limit=100>; rel="next"'},
            }
        )
        result = check(sim)
        pages = [r for r in sim.requests if r.path == "/api/v1/builds"]
    assert result.code == 0, result.stderr
    assert len(pages) <= 3


def test_a_damaged_or_foreign_cache_is_ignored_and_the_streams_read_again(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        first = run_asset("check", {"source": source_for(sim)}, cache_dir=tmp_path)
        assert first.code == 0, first.stderr
        [cache] = tmp_path.glob("fleet-guard-evidence-*.json")
        stored = json.loads(cache.read_text())
        build_id = next(k for k, v in stored.items() if k.isdigit() and v)
        for damage in (
            json.dumps({build_id: "not a list"}),
            json.dumps({build_id: [{"build_id": int(build_id), "worker": {"a": 1}}]}),
            json.dumps({build_id: [{**stored[build_id][0], "worker": ["w-1"]}]}),
            "[" * 100_000,
            "\xff\xfe garbage",
        ):
            cache.write_text(damage, encoding="utf-8", errors="surrogateescape")
            again = run_asset("check", {"source": source_for(sim)}, cache_dir=tmp_path)
            assert_clean(again)
            assert again.code == 0, again.stderr
            assert again.json == first.json, "the same answer as without a cache"


def test_temporary_cache_files_left_by_a_killed_check_are_removed(tmp_path):
    with Simulator(load_scenario("healthy")) as sim:
        first = run_asset("check", {"source": source_for(sim)}, cache_dir=tmp_path)
        [cache] = tmp_path.glob("fleet-guard-evidence-*.json")
        old = cache.with_suffix(".4242.tmp")
        fresh = cache.with_suffix(".4343.tmp")
        for leftover in (old, fresh):
            leftover.write_text("{}")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        again = run_asset("check", {"source": source_for(sim)}, cache_dir=tmp_path)
    assert first.code == again.code == 0
    assert not old.exists(), "an hour-old temporary file is a killed check's"
    assert fresh.exists(), "a recent one may be another check's, still saving"


def test_a_secret_in_an_error_body_never_reaches_stderr():
    with Simulator(load_scenario("healthy")) as sim:
        body = json.dumps({"error": f"bad password {PASSWORD!r} for {json.dumps(PASSWORD)}"})
        sim.add_fault(
            {
                "path": "/api/v1/workers",
                "status": 500,
                "body": body,
                "times": -1,
                "content_type": "application/json",
            }
        )
        result = check(sim)
    assert result.code == 1
    assert "[redacted]" in result.stderr

"""Event streams of different builds read at once: the same report whatever the order in
which they finish, and never more connections to the ATC than `source.concurrency`."""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import load_source
from fleet_guard.log import Log
from fleet_guard.report import Report, report_json
from fleet_guard.scan import scan_fleet
from fleet_guard.simulator import Simulator, load_scenario


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """The incident, with streams that take different, shuffled times to finish."""
    scenario = load_scenario("incident")
    rng = random.Random(4)
    for build in scenario.builds.values():
        build.event_delay = rng.choice([0.0, 0.002, 0.01, 0.02])
    with Simulator(scenario) as running:
        yield running


def scan(sim: Simulator, now: float, **source: Any) -> Report:
    config = load_source({"url": sim.url, "username": "admin", "password": "admin-pass", **source})
    log = Log(stream=io.StringIO())
    with ConcourseClient(config, log) as client:
        return scan_fleet(config, client, log, clock=lambda: now)


def comparable(report: Report) -> dict[str, Any]:
    document = report_json(report)
    document["scanned"].pop("seconds")
    return document


def test_the_report_is_the_same_at_one_and_at_several_streams(sim):
    now = time.time()
    one = scan(sim, now, concurrency=1)
    assert one.scanned.builds_read >= 12 and one.affecting
    for concurrency in (4, 16):
        many = scan(sim, now, concurrency=concurrency)
        assert comparable(many) == comparable(one)
        assert [e for f in many.findings for e in f.evidence] == [
            e for f in one.findings for e in f.evidence
        ], "evidence in the same order too"


@pytest.mark.parametrize("concurrency", [1, 3])
def test_never_more_connections_than_the_concurrency(sim, concurrency):
    sim.clear_requests()
    report = scan(sim, time.time(), concurrency=concurrency)
    streams = [r for r in sim.requests if r.path.endswith("/events")]
    assert len(streams) == report.scanned.builds_read + report.scanned.builds_sampled > 12
    assert sim.peak_connections <= concurrency
    if concurrency > 1:
        assert sim.peak_connections > 1, "the streams were read one after the other"


def test_concurrency_is_a_bounded_source_key():
    assert load_source({"url": "http://ci"}).concurrency == 4
    for bad in (0, 17, "4"):
        with pytest.raises(Exception, match="concurrency"):
            load_source({"url": "http://ci", "concurrency": bad})


def test_streams_start_while_the_listing_is_still_paging(sim, monkeypatch):
    from fleet_guard.concourse import paging

    monkeypatch.setattr(paging, "PAGE_SIZE", 40)  # the incident's ~200 builds: several pages
    sim.clear_requests()
    report = scan(sim, time.time(), concurrency=4)
    paths = [r.path for r in sim.requests]
    pages = [i for i, p in enumerate(paths) if p == "/api/v1/builds"]
    streams = [i for i, p in enumerate(paths) if p.endswith("/events")]
    assert len(pages) > 3 and report.scanned.builds_read >= 12
    assert streams[0] < pages[-1], "the first errored build's stream waited for the last page"
    one = scan(sim, time.time(), concurrency=1)
    assert comparable(one)["fingerprint"] == comparable(report)["fingerprint"]

"""The check container's evidence cache: only finished, fully read builds; never stale rules."""

from __future__ import annotations

import io
import re

from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.advisories.model import EvidencePattern
from fleet_guard.concourse.models import Build
from fleet_guard.evidence import Evidence
from fleet_guard.evidence_cache import CACHE_DIR_ENV, EvidenceCache
from fleet_guard.log import Log

FINISHED = Build(id=7, team_name="t", name="3", status="errored", end_time=100)
RUNNING = Build(id=8, team_name="t", name="4", status="started")
FOUND = Evidence(
    advisory="cni-netlink-eintr",
    build_id=7,
    team="t",
    pipeline="p",
    job="j",
    build="3",
    worker="w-1",
    message="...interrupted system call",
    url="https://ci/builds/7",
    time=90,
    implies={"runtime": "containerd"},
)


def cache_in(tmp_path, monkeypatch, rules=None) -> EvidenceCache:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    return EvidenceCache.for_check(
        "https://ci", rules or load_builtin_rules(), Log(stream=io.StringIO())
    )


def test_finished_builds_round_trip_through_the_file(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    assert cache.lookup(FINISHED) is None
    cache.store(FINISHED, [FOUND])
    cache.save([FINISHED])
    again = cache_in(tmp_path, monkeypatch)
    assert again.lookup(FINISHED) == [FOUND]
    assert again.hits == 1


def test_a_build_that_was_clean_is_remembered_as_clean(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(FINISHED, [])
    cache.save([FINISHED])
    assert cache_in(tmp_path, monkeypatch).lookup(FINISHED) == []


def test_running_builds_are_never_cached(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(RUNNING, [])
    cache.save([RUNNING])
    assert cache_in(tmp_path, monkeypatch).lookup(RUNNING) is None


def test_builds_that_left_the_listing_are_dropped(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(FINISHED, [FOUND])
    cache.save([])
    assert cache_in(tmp_path, monkeypatch).lookup(FINISHED) is None


def test_changed_rules_use_another_file(tmp_path, monkeypatch):
    rules = load_builtin_rules()
    cache = cache_in(tmp_path, monkeypatch, rules)
    cache.store(FINISHED, [FOUND])
    cache.save([FINISHED])
    first = rules[0]
    changed = [
        first.__class__(
            **{**first.__dict__, "patterns": (EvidencePattern("error", re.compile("x")),)}
        ),
        *rules[1:],
    ]
    assert cache_in(tmp_path, monkeypatch, changed).lookup(FINISHED) is None


def test_a_corrupt_or_foreign_file_means_reading_again(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(FINISHED, [FOUND])
    cache.save([FINISHED])
    (path,) = tmp_path.iterdir()
    for junk in ("{not json", "[1, 2]", '{"7": [{"advisory": "x"}]}'):
        path.write_text(junk)
        assert cache_in(tmp_path, monkeypatch).lookup(FINISHED) is None


def test_the_file_is_private(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.save([])
    (path,) = tmp_path.iterdir()
    assert path.stat().st_mode & 0o077 == 0


def test_signature_records_and_memory_ride_along_and_leave_with_the_window(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(FINISHED, [FOUND])
    cache.store_record(FINISHED, {"errors": [], "placements": {"w-1": 2}})
    cache.store_record(RUNNING, {"errors": [], "placements": {}})
    gone = Build(id=9, team_name="t", name="5", status="succeeded", end_time=50)
    cache.store_record(gone, {"errors": [], "placements": {"w-2": 1}})
    cache.memory = {"emerging-0123456789": [10, 20]}
    cache.save([FINISHED, RUNNING])

    again = cache_in(tmp_path, monkeypatch)
    assert again.lookup(FINISHED) == [FOUND], "the section never hides the evidence"
    assert again.lookup_record(FINISHED) == {"errors": [], "placements": {"w-1": 2}}
    assert again.lookup_record(RUNNING) is None, "an unfinished build is read again"
    assert again.lookup_record(gone) is None, "dropped with the window"
    assert again.memory == {"emerging-0123456789": [10, 20]}


def test_a_damaged_signature_section_is_ignored(tmp_path, monkeypatch):
    cache = cache_in(tmp_path, monkeypatch)
    cache.store(FINISHED, [FOUND])
    cache.save([FINISHED])
    [path] = list(tmp_path.iterdir())
    for damage in ('"nope"', '{"builds": 3, "memory": []}'):
        text = path.read_text()
        path.write_text(re.sub(r'"signatures": .*\}$', f'"signatures": {damage}}}', text))
        assert f'"signatures": {damage}' in path.read_text()
        again = cache_in(tmp_path, monkeypatch)
        assert again.lookup(FINISHED) == [FOUND]
        assert again.lookup_record(FINISHED) is None and again.memory == {}

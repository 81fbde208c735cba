"""The signature search on plain data: templates, the exact tests, concentration, detection."""

from __future__ import annotations

import math
import random
import re
from fractions import Fraction

import pytest

from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.concourse.models import Build, Event
from fleet_guard.errors import UserError
from fleet_guard.redact import Redactor
from fleet_guard.signatures.collect import (
    BuildRecord,
    ErrorCollector,
    ErrorRecord,
    sample_builds,
)
from fleet_guard.signatures.concentration import concentrate
from fleet_guard.signatures.detect import Settings, find_signatures
from fleet_guard.signatures.draft import draft_rule, pick_signature
from fleet_guard.signatures.stats import benjamini_hochberg, fisher_greater
from fleet_guard.signatures.templates import template_id, template_of, template_regex

WORKERS = [f"w-{i}" for i in range(20)]


def _handle(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- templates -----------------------------------------------------------------------------

MESSAGES = {
    "volume": "find or create container on worker {w}: failed to create volume {h} at "
    "/var/lib/concourse/volumes/live/{h}/volume: exit status {n}",
    "max": "find or create container on worker {w}: checking container capacity: "
    "max containers reached",
    "dns": "lookup registry-1.docker.io on [::1]:53: read udp [::1]:{n}->[::1]:53: "
    "read: connection refused",
    "eof": 'backend error: Exit status: 500, message: {{"Type":"","Message":"EOF",'
    '"Handle":"{h}","ProcessID":"{n}","Binds":null}}',
    "task": 'task retrieval: no running task found for {h} in namespace "concourse" after {d}',
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_forty_occurrences_on_different_workers_and_containers_become_one_template(kind):
    rng = random.Random(kind)
    messages = [
        MESSAGES[kind].format(
            w=rng.choice(WORKERS),
            h=_handle(rng),
            n=rng.randrange(1, 70000),
            d=f"{rng.randrange(1, 90)}.{rng.randrange(10)}s",
        )
        for _ in range(40)
    ]
    templates = {template_of(m, WORKERS) for m in messages}
    assert len(templates) == 1
    (template,) = templates
    regex = re.compile(template_regex(template))
    assert all(regex.search(m) for m in messages)
    assert not any(w in template for w in WORKERS)


def test_templates_keep_the_stable_wording_and_mask_each_kind_of_variable():
    template = template_of(
        'container 0123456789abcdef on w-7 at /tmp/build/x: plugin type="loopback" '
        "name='my-net 3' took 1m30.5s, id 42, ip 10.0.0.7:7777, see https://x.example/a?b",
        ["w-7"],
    )
    assert template == (
        'container <hex> on <worker> at <path>: plugin type="loopback" name=<quoted> took '
        "<duration>, id <num>, ip <addr>, see <url>"
    )


def test_different_failures_stay_different_templates():
    a = template_of("failed to create volume", WORKERS)
    b = template_of("max containers reached", WORKERS)
    assert a != b and template_id(a) != template_id(b)
    assert template_id(a) == template_id(template_of("failed  to create\nvolume"))


def test_a_template_regex_matches_every_message_it_came_from():
    rng = random.Random(7)
    alphabet = [
        "on worker w-3:",
        "/var/x",
        '"q 1"',
        "0xbeef",
        "12",
        "3.5s",
        "[::1]:53",
        "word",
        "a.b",
        "(add)",
        "*",
        "+",
        "?",
        "\\",
        "\t",
        "  ",
        "w-12",
        "ünï",
    ]
    for _ in range(500):
        message = " ".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        template = template_of(message, ["w-3", "w-12"])
        assert re.search(template_regex(template), message), (message, template)


def test_a_huge_message_is_templated_by_its_head_and_its_regex_is_not_anchored_at_the_end():
    message = "disk full " + "x " * 5000
    template = template_of(message)
    assert template.endswith(" …") and len(template) < 2100
    assert re.search(template_regex(template), message)


# --- exact tests ---------------------------------------------------------------------------


def _fisher_by_enumeration(hits, draws, base_hits, base_total):
    population, marked = draws + base_total, hits + base_hits
    total = sum(
        Fraction(math.comb(marked, x) * math.comb(population - marked, draws - x))
        for x in range(hits, min(draws, marked) + 1)
    )
    return float(total / math.comb(population, draws))


@pytest.mark.parametrize(
    "table", [(3, 5, 1, 10), (0, 4, 3, 9), (16, 16, 15, 135), (6, 40, 300, 3000), (1, 1, 0, 5)]
)
def test_fisher_matches_exact_enumeration(table):
    assert fisher_greater(*table) == pytest.approx(_fisher_by_enumeration(*table), rel=1e-9)


def test_fisher_stays_finite_in_log_space_for_large_counts():
    p = fisher_greater(900, 1000, 5000, 100000)
    assert 0.0 <= p < 1e-300 or p == 0.0
    assert 0.4 < fisher_greater(50, 1000, 5000, 100000) < 0.6  # about the expected count
    assert fisher_greater(30, 1000, 5000, 100000) > 0.99


def test_fisher_refuses_impossible_tables():
    with pytest.raises(ValueError):
        fisher_greater(5, 4, 0, 1)


def test_benjamini_hochberg_adjusts_in_input_order():
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx(
        [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5]
    )
    assert benjamini_hochberg([]) == []


# --- concentration -------------------------------------------------------------------------

UNIFORM_WORK = {w: 30 for w in WORKERS}


def test_a_failure_on_two_workers_names_exactly_those_two():
    result = concentrate({"w-4": 9, "w-11": 8}, UNIFORM_WORK, max_units=3)
    assert result is not None
    assert result.units == ("w-11", "w-4")
    assert result.p_value < 1e-10 and result.lift == pytest.approx(10.0)


def test_uniform_failures_are_not_concentrated_however_loud():
    rng = random.Random(3)
    failures = {w: 0 for w in WORKERS}
    for _ in range(2000):
        failures[rng.choice(WORKERS)] += 1
    result = concentrate(failures, UNIFORM_WORK, max_units=3)
    assert result is not None and result.lift < 1.5


def test_a_worker_that_does_twenty_times_the_work_is_not_a_hot_spot():
    work = {**UNIFORM_WORK, "big": 600}
    result = concentrate({"big": 12, "w-1": 1}, work, max_units=3)
    assert result is not None and result.p_value > 0.05


def test_no_base_rate_means_no_test():
    assert concentrate({"w-1": 5}, {}, max_units=3) is None
    assert concentrate({"w-1": 5}, {"w-1": 4}, max_units=3) is None


# --- detection -----------------------------------------------------------------------------

NOW = 1_800_000_000


def _build(i: int, status: str = "errored") -> Build:
    return Build(i, "main", str(i), status, "unit", "ci", end_time=NOW - 10_000 + i)


def _errors(template: str, workers: list[str], start: int = 0) -> list[tuple[Build, ErrorRecord]]:
    return [
        (_build(start + i), ErrorRecord(template, f"{template} #{i}", w, NOW - 9000 + start + i))
        for i, w in enumerate(workers)
    ]


BACKGROUND = [
    f"background failure number {kind}" for kind in ("one", "two", "three", "four", "five")
]


def _fleet(planted: list[str], seed: int) -> list[tuple[Build, ErrorRecord]]:
    rng = random.Random(seed)
    errors = _errors("failed to create volume <id>", planted, 1000)
    for k, template in enumerate(BACKGROUND):
        errors += _errors(template, [rng.choice(WORKERS) for _ in range(8)], 2000 + 100 * k)
    return errors


def _work(seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    placed = {w: 0 for w in WORKERS}
    for _ in range(150):
        placed[rng.choice(WORKERS)] += 1
    return placed


def _detect(errors, placements, release_of=None, memory=None, **settings):
    return find_signatures(
        errors,
        placements,
        release_of=release_of or {},
        memory=memory or {},
        base_url="https://ci.example.com",
        now=NOW,
        settings=Settings(**settings),
    )


def test_a_planted_failure_is_one_signature_naming_its_two_workers_with_first_seen():
    errors = _fleet(["w-4", "w-11"] * 8, seed=1)
    detection = _detect(errors, _work(1))
    assert [s.stats.template for s in detection.signatures] == ["failed to create volume <id>"]
    (signature,) = detection.signatures
    assert [w.worker for w in signature.workers] == ["w-11", "w-4"]
    assert all(w.observed == 8 and w.expected < 2 for w in signature.workers)
    assert signature.stats.first_seen == NOW - 9000 + 1000
    assert signature.q_value <= 0.01 and len(signature.stats.evidence) == 16
    assert detection.tested == 6


@pytest.mark.parametrize("seed", range(10))
def test_the_same_volume_spread_uniformly_is_never_a_signature(seed):
    rng = random.Random(100 + seed)
    errors = _fleet([rng.choice(WORKERS) for _ in range(16)], seed=seed)
    assert _detect(errors, _work(seed)).signatures == []


def test_below_the_minimum_count_nothing_is_tested():
    errors = _errors("failed to create volume <id>", ["w-4"] * 4)
    detection = _detect(errors, _work(1), min_builds=5)
    assert detection.signatures == [] and detection.tested == 0


def test_one_release_class_carrying_the_failure_is_named():
    release_of = {w: "7.13.2" for w in WORKERS} | {"w-18": "7.11.0", "w-19": "7.11.0"}
    errors = _fleet(["w-18", "w-19"] * 8, seed=2)
    (signature,) = _detect(errors, _work(2), release_of=release_of).signatures
    assert signature.release == "7.11.0"
    assert [w.worker for w in signature.workers] == ["w-18", "w-19"]


def test_a_release_class_is_not_named_when_only_some_of_its_workers_fail():
    release_of = {w: ("7.13.2" if int(w[2:]) < 10 else "7.11.0") for w in WORKERS}
    errors = _fleet(["w-14", "w-15"] * 8, seed=3)
    (signature,) = _detect(errors, _work(3), release_of=release_of).signatures
    assert signature.release is None


def test_first_seen_is_remembered_across_checks_and_old_templates_are_forgotten():
    errors = _fleet(["w-4", "w-11"] * 8, seed=1)
    sid = template_id("failed to create volume <id>")
    memory = {sid: [NOW - 5 * 86400, NOW - 4 * 86400], "emerging-old": [1, 2]}
    detection = _detect(errors, _work(1), memory=memory)
    assert detection.signatures[0].stats.first_seen == NOW - 5 * 86400
    assert detection.memory[sid] == [NOW - 5 * 86400, NOW - 9000 + 1015]
    assert "emerging-old" not in detection.memory


# --- collection ----------------------------------------------------------------------------

EINTR = (
    "find or create container on worker w-3: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


def _events(*items: tuple[str, str, dict]) -> list[Event]:
    return [Event(kind, {"origin": {"id": origin}, **data}) for kind, origin, data in items]


def _collect(build: Build, events, **kwargs) -> tuple[BuildRecord, list[Event]]:
    collector = ErrorCollector(load_builtin_rules(), workers=WORKERS, redact=Redactor(["s3cr3t"]))
    record = BuildRecord()
    passed = list(collector.observe(build, events, record, **kwargs))
    return record, passed


def test_collection_passes_every_event_through_and_counts_work_not_failures():
    events = _events(
        ("selected-worker", "a1", {"selected_worker": "w-1"}),
        ("log", "a1", {"payload": "ok"}),
        ("selected-worker", "a2", {"selected_worker": "w-2"}),
        ("error", "a2", {"message": "failed to create volume s3cr3t", "time": NOW}),
    )
    record, passed = _collect(_build(1), events)
    assert passed == events
    assert record.placements == {"w-1": 1}
    (error,) = record.errors
    assert error.worker == "w-2" and error.time == NOW
    assert "s3cr3t" not in error.message + error.template
    assert BuildRecord.from_json(record.to_json()) == record


def test_errors_an_advisory_explains_and_aborts_are_left_out():
    explained = _events(
        ("selected-worker", "a1", {"selected_worker": "w-3"}),
        ("error", "a1", {"message": EINTR}),
    )
    assert _collect(_build(1), explained)[0].errors == []
    aborted = _events(("error", "a1", {"message": "failed to create volume"}))
    assert _collect(_build(2, "aborted"), aborted)[0].errors == []
    interrupted = _events(("error", "a1", {"message": "interrupted"}))
    assert _collect(_build(3, "errored"), interrupted)[0].errors == []


def test_a_sample_build_gives_placements_only():
    events = _events(
        ("selected-worker", "a1", {"selected_worker": "w-1"}),
        ("error", "a2", {"message": "no workers satisfying"}),
    )
    record, _ = _collect(_build(1, "failed"), events, errors=False)
    assert record.errors == [] and record.placements == {"w-1": 1}


def test_a_damaged_cached_record_is_refused():
    for bad in ({}, {"errors": [[1, 2]], "placements": {}}, {"errors": [], "placements": 3}):
        with pytest.raises((TypeError, ValueError, KeyError)):
            BuildRecord.from_json(bad)


def test_the_base_rate_sample_is_bounded_deterministic_and_skips_what_is_read():
    builds = [_build(i, "succeeded") for i in range(200)] + [
        Build(999, "main", "check", "succeeded", end_time=NOW),
        Build(998, "main", "5", "started"),
    ]
    sample = sample_builds(builds, exclude={1, 2, 3}, size=20)
    assert len(sample) == 20 and sample == sample_builds(reversed(builds), {1, 2, 3}, 20)
    assert not {b.id for b in sample} & {1, 2, 3, 998, 999}
    later = sample_builds(builds[10:] + [_build(i, "succeeded") for i in range(200, 210)], (), 20)
    assert len({b.id for b in sample} & {b.id for b in later}) >= 12
    assert sample_builds(builds, (), 0) == []


# --- drafts --------------------------------------------------------------------------------


def test_a_draft_needs_a_signature_named_when_there_are_several():
    one = {"id": "emerging-0000000001", "template": "max containers reached", "workers": []}
    two = {**one, "id": "emerging-0000000002"}
    assert pick_signature({"emerging": [one]}, None) is one
    assert pick_signature({"emerging": [one, two]}, "emerging-0000000002") is two
    for report, wanted, says in (
        ({"emerging": [one, two]}, None, "give --signature"),
        ({"emerging": []}, None, "no emerging signature"),
        ({}, "emerging-0000000003", "it has none"),
    ):
        with pytest.raises(UserError, match=says):
            pick_signature(report, wanted)
    rule = draft_rule({**one, "template": "x" * 300}, [])
    assert len(rule["summary"]) == 200 and rule["conditions"] == {}
    assert re.search(rule["evidence"]["patterns"][0]["regex"], "x" * 300)

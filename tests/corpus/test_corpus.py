"""Every corpus row through the real evidence matcher with the built-in advisories.

A row fails when the matcher finds another advisory than the row expects (or one where the row
expects none), names another worker, or when the container-creation test disagrees with the
row. Each failure prints the row's id and source, so a wrong row or a wrong pattern is one
look away.
"""

from __future__ import annotations

import pytest

from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.evidence import is_container_creation
from tests.corpus.corpus import (
    MESSAGES,
    NONE,
    Row,
    evidence,
    load_rows,
    matcher,
    problems,
    scores,
    verdict,
)

ROWS = load_rows()
MATCHER = matcher()
BUILTIN = {a.id for a in load_builtin_rules()}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_every_row_is_classified_right(row: Row) -> None:
    found = evidence(row, MATCHER)
    assert verdict(found) == row.expect, f"{row.id} ({row.source})"
    assert all(e.worker == row.expected_worker for e in found), f"{row.id}: wrong worker"


@pytest.mark.parametrize("row", [r for r in ROWS if r.event == "error"], ids=lambda r: r.id)
def test_container_creation_is_told_apart_from_other_errors(row: Row) -> None:
    assert is_container_creation(row.message) is row.container_creation, row.id


def test_rows_name_only_builtin_advisories_and_cover_each_pattern_rule() -> None:
    expected = {r.expect for r in ROWS} - {NONE}
    assert expected <= BUILTIN
    with_patterns = {a.id for a in load_builtin_rules() if a.patterns}
    assert with_patterns <= expected, "every advisory with patterns needs rows it must match"


def test_every_pattern_advisory_has_near_misses() -> None:
    """A pattern proven only on rows it matches proves nothing about what it leaves alone."""
    results = [(r, verdict(evidence(r, MATCHER))) for r in ROWS]
    for score in scores(results, {a.id for a in load_builtin_rules() if a.patterns}):
        assert score.true_positives > 0, score.advisory
    assert sum(r.expect == NONE for r in ROWS) >= len(ROWS) // 3


def test_rows_say_where_they_come_from_and_how_they_were_changed() -> None:
    for row in ROWS:
        assert row.source.startswith("https://"), row.id
        # A row that names a worker must carry it in the ATC's wording, or be adapted to.
        if row.worker:
            assert f"on worker {row.worker}:" in row.message, row.id


def test_the_schema_rejects_a_row_without_a_source_and_a_log_that_creates_containers() -> None:
    bad = [
        {"id": "x", "event": "error", "container_creation": True, "expect": NONE, "message": "m"},
        {
            "id": "y",
            "source": "https://example.com",
            "event": "log",
            "container_creation": True,
            "expect": NONE,
            "message": "m",
        },
    ]
    found = problems(bad)
    assert any("rows[0]" in p and "source" in p for p in found)
    assert any("rows[1].container_creation" in p for p in found)
    assert problems(bad[:1] * 2 + []) and "used 2 times" in " ".join(problems([bad[1], bad[1]]))


def test_the_corpus_file_is_where_the_report_reads_it() -> None:
    assert MESSAGES.name == "messages.yaml" and MESSAGES.exists()

#!/usr/bin/env python3
"""Precision and recall of each built-in advisory over the message corpus (tests/corpus/).

Runs every row through the real evidence matcher, prints one line per advisory with patterns
and every row it got wrong, and exits 1 when any row is wrong, so `make corpus` can gate. The
corpus is real messages from public reports (see the `source` of each row), near misses included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus.corpus import evidence, load_rows, matcher, scores, verdict  # noqa: E402

from fleet_guard.advisories.loader import load_builtin_rules  # noqa: E402


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    rows = load_rows()
    using = matcher()
    results = [(row, verdict(evidence(row, using))) for row in rows]
    advisories = {a.id for a in load_builtin_rules() if a.patterns}
    print(f"corpus: {len(rows)} messages, {sum(r.expect == 'none' for r in rows)} near misses")
    print(
        f"{'advisory':32} {'rows':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>6}"
    )
    for s in scores(results, advisories):
        wanted = s.true_positives + s.false_negatives
        print(
            f"{s.advisory:32} {wanted:>4} {s.true_positives:>4} {s.false_positives:>4} "
            f"{s.false_negatives:>4} {_ratio(s.precision):>9} {_ratio(s.recall):>6}"
        )
    wrong = [(row, got) for row, got in results if got != row.expect]
    for row, got in wrong:
        print(f"WRONG {row.id}: expected {row.expect}, got {got} ({row.source})")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

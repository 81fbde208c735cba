"""Is one template concentrated on a few units (workers, or release classes) beyond their
share of placed work? One exact test, corrected for having chosen the units after looking.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fleet_guard.signatures.stats import fisher_greater, log_comb


@dataclass(frozen=True)
class Concentration:
    """The best set of units for one template, with its corrected p-value."""

    units: tuple[str, ...]
    hits: int  # failures (distinct build, unit) on the units
    draws: int  # all attributed failures of the template
    base_hits: int  # placed steps on the units
    base_total: int  # all placed steps
    p_value: float

    @property
    def lift(self) -> float:
        """How many times their share of work the units carry of the failures."""
        if not self.base_total or not self.draws:
            return math.inf if self.hits else 0.0
        expected = self.draws * self.base_hits / self.base_total
        return self.hits / expected if expected else math.inf


def concentrate(
    failures: Mapping[str, int], placed: Mapping[str, int], *, max_units: int
) -> Concentration | None:
    """The set of at most `max_units` units with the strongest concentration, or None when
    there is nothing to compare against (no base rate, or fewer than two units).

    Candidates are the prefixes of the units ordered by failures per placed step. Their
    p-values (Fisher's exact test, one-sided) are multiplied by the number of unit sets of
    those sizes, sum of C(U, m): a union bound over every set that could have been picked, so
    the search itself cannot manufacture significance.
    """
    units = sorted(set(failures) | set(placed))
    base_total = sum(placed.values())
    draws = sum(failures.values())
    largest = min(max_units, len(units) - 1)
    if base_total == 0 or draws == 0 or largest < 1:
        return None
    ranked = sorted(
        (u for u in units if failures.get(u, 0) > 0),
        key=lambda u: (-failures[u] / (placed.get(u, 0) + 0.5), -failures[u], u),
    )
    correction = math.fsum(math.exp(log_comb(len(units), m)) for m in range(1, largest + 1))
    best: Concentration | None = None
    for size in range(1, min(largest, len(ranked)) + 1):
        chosen = tuple(ranked[:size])
        hits = sum(failures[u] for u in chosen)
        base_hits = sum(placed.get(u, 0) for u in chosen)
        p = min(1.0, fisher_greater(hits, draws, base_hits, base_total) * correction)
        if best is None or p < best.p_value:
            best = Concentration(tuple(sorted(chosen)), hits, draws, base_hits, base_total, p)
    return best

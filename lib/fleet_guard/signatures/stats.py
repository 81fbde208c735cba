"""Exact tests in log space with `math` only (no scipy in the image).

Fisher's exact test rather than a binomial tail against an estimated share: the base rate is
itself a sample (placements counted in the builds read), and conditioning on both margins makes
the test exact whatever the sample's size, so a worker that happened to be rarely sampled does
not look like a hot spot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def log_comb(n: int, k: int) -> float:
    """log C(n, k), exact enough for any n we will see (lgamma is accurate to ~1e-15)."""
    if k < 0 or k > n:
        return -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_sum(logs: Sequence[float]) -> float:
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in logs))


def fisher_greater(hits: int, draws: int, base_hits: int, base_total: int) -> float:
    """One-sided Fisher's exact test, P(X >= hits).

    The 2x2 table: of `draws` failures, `hits` landed on the units tested; of `base_total`
    placements of work, `base_hits` landed there. Under the null (failures land where work
    lands) X is hypergeometric: `draws` taken from `draws + base_total` items of which
    `hits + base_hits` belong to the units.
    """
    if not 0 <= hits <= draws or not 0 <= base_hits <= base_total:
        raise ValueError("counts out of range")
    population = draws + base_total
    marked = hits + base_hits
    top = min(draws, marked)
    if hits > top:
        return 0.0
    denominator = log_comb(population, draws)
    terms = [
        log_comb(marked, x) + log_comb(population - marked, draws - x) - denominator
        for x in range(hits, top + 1)
    ]
    return min(1.0, math.exp(_log_sum(terms)))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted p-values (q-values), in the input order: reject where q <= the chosen FDR."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [1.0] * count
    running = 1.0
    for rank in range(count, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * count / rank)
        adjusted[index] = min(1.0, running)
    return adjusted

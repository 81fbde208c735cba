"""Every template of a scan → findings of kind `emerging`.

A template is an emerging signature when, with at least `min_builds` builds, it is concentrated
on at most a few workers (or on one release class) by an exact test that survives
Benjamini-Hochberg across all templates tested, and the concentrated units carry at least
`MIN_LIFT` times their share of placed work. Uniform noise, however loud, fails the lift even
when a huge count would make a tiny imbalance significant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet_guard.concourse.models import Build
from fleet_guard.evidence import Evidence, build_url
from fleet_guard.signatures.collect import ErrorRecord
from fleet_guard.signatures.concentration import Concentration, concentrate
from fleet_guard.signatures.stats import benjamini_hochberg
from fleet_guard.signatures.templates import template_id

# False discovery rate across the templates of one scan.
FDR = 0.01
# The concentrated units must carry at least this many times their share of placed work.
MIN_LIFT = 3.0
# A release class named as the carrier must carry at least this many times its share.
MIN_RELEASE_LIFT = 2.0
# "A few workers": the largest set of workers one signature may name.
MAX_WORKERS = 3
# First-seen memory: forget a template not seen for this long, and keep at most this many.
MEMORY_SECONDS = 30 * 86400
MEMORY_SIZE = 2000


@dataclass(frozen=True)
class Settings:
    min_builds: int = 5
    fdr: float = FDR
    min_lift: float = MIN_LIFT
    max_workers: int = MAX_WORKERS


@dataclass(frozen=True)
class WorkerCount:
    worker: str
    observed: int
    expected: float


@dataclass
class TemplateStats:
    """One template over the window (and, for first seen, over earlier checks)."""

    template: str
    example: str
    occurrences: int = 0
    per_worker: Counter[str] = field(default_factory=Counter)  # distinct builds per worker
    build_ids: set[int] = field(default_factory=set)
    unattributed: int = 0
    releases: set[str] = field(default_factory=set)
    first_seen: int | None = None
    last_seen: int | None = None
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def id(self) -> str:
        return template_id(self.template)


@dataclass(frozen=True)
class Signature:
    stats: TemplateStats
    workers: tuple[WorkerCount, ...]
    release: str | None
    p_value: float
    q_value: float

    @property
    def id(self) -> str:
        return self.stats.id

    @property
    def worker_names(self) -> list[str]:
        return [w.worker for w in self.workers]


@dataclass(frozen=True)
class Detection:
    signatures: list[Signature]
    templates: list[TemplateStats]
    tested: int
    placements: int
    memory: dict[str, list[int]]


def find_signatures(
    errors: Sequence[tuple[Build, ErrorRecord]],
    placements: Mapping[str, int],
    *,
    release_of: Mapping[str, str],
    memory: Mapping[str, Any],
    base_url: str,
    now: int,
    settings: Settings = Settings(),
) -> Detection:
    """Pure: the same errors, placements and memory always give the same signatures."""
    memory = _readable(memory)
    templates = _templates(errors, release_of, memory, base_url)
    tested: list[tuple[TemplateStats, Concentration, Concentration | None]] = []
    for stats in templates:
        if len(stats.build_ids) < settings.min_builds:
            continue
        on_workers = concentrate(stats.per_worker, placements, max_units=settings.max_workers)
        if on_workers is None:
            continue
        by_release = _release_concentration(stats, placements, release_of)
        tested.append((stats, on_workers, by_release))
    p_values = [_template_p(w, r) for _, w, r in tested]
    q_values = benjamini_hochberg(p_values)
    signatures = []
    for (stats, on_workers, by_release), p, q in zip(tested, p_values, q_values, strict=True):
        if q > settings.fdr:
            continue
        release = _named_release(by_release, stats, placements, release_of, settings)
        if on_workers.lift < settings.min_lift and release is None:
            continue
        total = sum(placements.values())
        draws = on_workers.draws
        workers = tuple(
            WorkerCount(w, stats.per_worker[w], round(draws * placements.get(w, 0) / total, 2))
            for w in on_workers.units
        )
        signatures.append(Signature(stats, workers, release, p, q))
    signatures.sort(key=lambda s: (s.p_value, s.id))
    return Detection(
        signatures=signatures,
        templates=templates,
        tested=len(tested),
        placements=sum(placements.values()),
        memory=_remember(memory, templates, now),
    )


def _templates(
    errors: Sequence[tuple[Build, ErrorRecord]],
    release_of: Mapping[str, str],
    memory: Mapping[str, list[int]],
    base_url: str,
) -> list[TemplateStats]:
    by_template: dict[str, TemplateStats] = {}
    seen_pairs: set[tuple[str, int, str | None]] = set()
    for build, error in errors:
        stats = by_template.get(error.template)
        if stats is None:
            stats = by_template[error.template] = TemplateStats(error.template, error.message)
        stats.occurrences += 1
        stats.build_ids.add(build.id)
        when = error.time if error.time is not None else build.end_time
        if when is not None:
            stats.first_seen = when if stats.first_seen is None else min(stats.first_seen, when)
            stats.last_seen = when if stats.last_seen is None else max(stats.last_seen, when)
        pair = (error.template, build.id, error.worker)
        if pair in seen_pairs:
            continue
        seen_pairs.add(pair)
        if error.worker is None:
            stats.unattributed += 1
        else:
            stats.per_worker[error.worker] += 1
            if error.worker in release_of:
                stats.releases.add(release_of[error.worker])
        stats.evidence.append(_evidence(stats.id, build, error, when, base_url))
    for stats in by_template.values():
        remembered = memory.get(stats.id)
        if remembered and stats.first_seen is not None:
            stats.first_seen = min(stats.first_seen, remembered[0])
        stats.evidence.sort(key=lambda e: (-(e.time or 0), -e.build_id))
    return sorted(by_template.values(), key=lambda s: (-len(s.build_ids), s.template))


def _evidence(
    signature: str, build: Build, error: ErrorRecord, when: int | None, base_url: str
) -> Evidence:
    return Evidence(
        advisory=signature,
        build_id=build.id,
        team=build.team_name,
        pipeline=build.pipeline_name,
        job=build.job_name,
        build=build.name,
        worker=error.worker,
        message=error.message,
        url=build_url(base_url, build),
        time=when,
    )


def _release_concentration(
    stats: TemplateStats, placements: Mapping[str, int], release_of: Mapping[str, str]
) -> Concentration | None:
    """The same test with workers pooled by release class: one class, among several."""
    failures: Counter[str] = Counter()
    for worker, count in stats.per_worker.items():
        if worker in release_of:
            failures[release_of[worker]] += count
    placed: Counter[str] = Counter()
    for worker, count in placements.items():
        if worker in release_of:
            placed[release_of[worker]] += count
    if len(set(placed) | set(failures)) < 2:
        return None
    return concentrate(failures, placed, max_units=1)


def _template_p(on_workers: Concentration, by_release: Concentration | None) -> float:
    """Two families tried (workers, release classes): Bonferroni over both."""
    if by_release is None:
        return on_workers.p_value
    return min(1.0, 2 * min(on_workers.p_value, by_release.p_value))


def _named_release(
    by_release: Concentration | None,
    stats: TemplateStats,
    placements: Mapping[str, int],
    release_of: Mapping[str, str],
    settings: Settings,
) -> str | None:
    """A release class is named only when it, as a whole, carries the failure: concentrated
    beyond its share, and seen on at least half of its workers that ran work."""
    if by_release is None or by_release.p_value > settings.fdr:
        return None
    if by_release.lift < MIN_RELEASE_LIFT:
        return None
    (release,) = by_release.units
    members = {w for w, r in release_of.items() if r == release}
    failing = {w for w in stats.per_worker if w in members}
    active = {w for w in members if placements.get(w, 0) > 0} | failing
    if not failing or 2 * len(failing) < len(active):
        return None
    return release


def _readable(memory: Mapping[str, Any]) -> dict[str, list[int]]:
    """The remembered [first, last] pairs that are well formed (the file may be damaged)."""
    kept = {}
    for key, value in memory.items():
        try:
            first, last = (int(v) for v in value)
        except (TypeError, ValueError):
            continue
        kept[str(key)] = [first, last]
    return kept


def _remember(
    memory: Mapping[str, list[int]], templates: Sequence[TemplateStats], now: int
) -> dict[str, list[int]]:
    """First and last seen per template id, kept across checks beyond the window."""
    kept = {key: value for key, value in memory.items() if value[1] >= now - MEMORY_SECONDS}
    for stats in templates:
        if stats.first_seen is None or stats.last_seen is None:
            continue
        old = kept.get(stats.id)
        first = stats.first_seen if old is None else min(old[0], stats.first_seen)
        last = stats.last_seen if old is None else max(old[1], stats.last_seen)
        kept[stats.id] = [first, last]
    newest = sorted(kept.items(), key=lambda item: (-item[1][1], item[0]))[:MEMORY_SIZE]
    return dict(sorted(newest))

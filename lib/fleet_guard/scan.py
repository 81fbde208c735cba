"""One scan of the fleet: the flow config → client → facts/evidence → advisor → report.

This is the only module that strings the stages together; each stage stays testable alone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from functools import partial
from typing import Any, TypeVar

from fleet_guard.advisories.engine import evaluate
from fleet_guard.advisories.loader import load_advisories
from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.events import StreamOutcome
from fleet_guard.concourse.models import Build
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.evidence import Evidence, EvidenceMatcher, builds_to_read
from fleet_guard.evidence_cache import EvidenceCache
from fleet_guard.facts import Fact, gather_facts, web_facts
from fleet_guard.facts.releases import ReleaseTable
from fleet_guard.facts.restarts import split_by_restart
from fleet_guard.facts.witnesses import WitnessTable
from fleet_guard.log import Log
from fleet_guard.report import Coverage, Report, Scanned, UnreadBuild
from fleet_guard.signatures.collect import BuildRecord, ErrorCollector, sample_builds
from fleet_guard.signatures.detect import Detection, Settings, find_signatures

_T = TypeVar("_T")

# How a build was read besides the stream outcomes and the UNREAD_REASONS of report.py.
CACHED = "cached"


@dataclass(frozen=True)
class BuildRead:
    """One build's evidence and how its log was read: `complete`, `cached`, or a reason it was
    not read whole (a key of report.UNREAD_REASONS). Evidence from a partial read stands."""

    build: Build
    evidence: list[Evidence]
    outcome: str
    # What the build told the signature search (None when the search is off or it failed).
    record: BuildRecord | None = None

    @property
    def whole(self) -> bool:
        return self.outcome in (StreamOutcome.COMPLETE, CACHED)


def scan_fleet(
    config: SourceConfig,
    client: ConcourseClient,
    log: Log,
    *,
    advisories: Sequence[Advisory] | None = None,
    clock: Callable[[], float] = time.time,
    cache: EvidenceCache | None = None,
) -> Report:
    started = time.monotonic()
    now = clock()
    rules = list(advisories) if advisories is not None else load_advisories(config)

    info = client.info()
    workers = client.workers()
    # The last check's listing is only built on when it was made for the same settings.
    settings = (config.teams, config.window_seconds, config.max_builds)
    known = cache.known_listing(*settings, now=now) if cache else None
    matcher = EvidenceMatcher(
        rules, base_url=config.url, redact=log.redact, witnesses=WitnessTable.load().witnesses
    )
    collector = (
        ErrorCollector(rules, workers=[w.name for w in workers], redact=log.redact)
        if config.emerging.enabled
        else None
    )

    def read(build: Build) -> Callable[[], BuildRead]:
        return partial(
            read_build,
            build,
            client,
            matcher,
            cache,
            log,
            max_bytes=config.max_log_bytes,
            collector=collector,
        )

    with _Streams(config.concurrency) as streams:
        # A build's stream is started as soon as a page lists it, while the walk goes on.
        listing = client.list_builds(
            since=int(now) - config.window_seconds,
            max_builds=config.max_builds,
            teams=config.teams,
            known=known,
            on_kept=lambda b: streams.start(b.id, read(b)) if _worth_reading(b, config) else None,
        )
        to_read = builds_to_read(listing.builds, config.scan_statuses)
        samples = (
            sample_builds(listing.builds, {b.id for b in to_read}, config.emerging.sample)
            if collector
            else []
        )
        for build in samples:
            if collector:
                streams.start(
                    -build.id,  # never a read's key: build IDs are positive
                    partial(
                        _sample_work, build, client, collector, cache, log, config.max_log_bytes
                    ),
                )
        # Whatever order the streams finish in, results are taken in the listing's order.
        reads = [streams.result(build.id, read(build)) for build in to_read]
        results = [streams.result(-build.id, _not_read) for build in samples]
        # A sample build that could not be read is left out of the sample, not a coverage gap.
        sampled: list[BuildRecord] = [r for r in results if r is not None]
    evidence = [item for read in reads for item in read.evidence]
    coverage = Coverage(
        unread=tuple(_unread(read) for read in reads if not read.whole),
        teams_not_visible=listing.teams_not_visible,
        listing_capped=listing.capped,
        window=config.window,
        max_builds=config.max_builds,
        max_log_bytes=config.max_log_bytes,
    )

    # Errors from before a worker's current start prove nothing about the running process.
    split = split_by_restart(evidence, workers)
    fleet = gather_facts(workers, info, config, split.current, ReleaseTable.load(), now=int(now))
    for position, override in enumerate(config.worker_facts):
        if not any(
            fnmatchcase(w.name, override.match) and set(w.tags).issuperset(override.tags)
            for w in workers
        ):
            tags = f" with tags {', '.join(override.tags)}" if override.tags else ""
            log.warn(
                f"source.worker_facts[{position}] (match {override.match!r}{tags}) matches no "
                "registered worker, so its facts apply to none; check the glob and the tags"
            )
    for conflict in fleet.conflicts:
        # Usually a declared fact that is out of date: worth a line on every check.
        log.warn(conflict.describe())
    facts = fleet.workers
    detection = _signatures(config, reads, sampled, facts, cache, int(now)) if collector else None
    if cache:
        cache.remember_listing(listing, *settings, now=now)
        cache.save(listing.builds)
    findings = evaluate(rules, facts, split.current, web_facts(info), split.history)
    for problem in coverage.problems():
        # At the default log level on every step: a verdict that could not see everything.
        log.warn(f"incomplete scan: {problem}")
    return Report(
        url=config.url,
        info=info,
        workers=workers,
        facts=facts,
        findings=findings,
        threshold=config.severity,
        scanned=Scanned(
            window=config.window,
            builds_listed=len(listing.builds),
            builds_read=sum(1 for r in reads if r.outcome in _STREAMED),
            builds_cached=sum(1 for r in reads if r.outcome == CACHED),
            builds_sampled=len(sampled),
            list_pages=listing.pages,
            builds_fetched=listing.fetched,
            api_calls=client.calls,
            capped=listing.capped,
            seconds=time.monotonic() - started,
        ),
        generated_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        builds=listing.builds,
        coverage=coverage,
        emerging=tuple(detection.signatures) if detection else (),
        emerging_severity=config.emerging.severity,
        templates=(len(detection.templates), detection.tested) if detection else None,
        history=split.history,
    )


# Outcomes where the stream was opened and read, whole or not.
_STREAMED = frozenset(StreamOutcome)


def read_build(
    build: Build,
    client: ConcourseClient,
    matcher: EvidenceMatcher,
    cache: EvidenceCache | None,
    log: Log,
    *,
    max_bytes: int,
    collector: ErrorCollector | None = None,
) -> BuildRead:
    """One build's evidence (cached, else streamed); never raises for a build we cannot read.

    Whatever the status (403 private job, 404 deleted, 5xx after retries, no answer), one bad
    build must not blind the whole scan: it is skipped and counted in the coverage.
    """
    cached_record = _cached_record(build, cache) if collector else None
    found = cache.lookup(build) if cache and (cached_record or not collector) else None
    if found is not None:
        return BuildRead(build, found, CACHED, cached_record)
    wanted = matcher.wanted_events | (collector.event_types if collector else frozenset())
    stream = client.build_events(build.id, max_bytes=max_bytes, events=wanted)
    record = BuildRecord() if collector else None
    try:
        events = collector.observe(build, stream, record) if collector and record else stream
        found = matcher.match_build(build, events)
    except ConcourseError as error:
        log.debug(error.message)
        return BuildRead(build, [], _error_reason(error))
    if cache and stream.complete:
        cache.store(build, found)
        if record:
            cache.store_record(build, record.to_json())
    for item in found:
        what = item.advisory or f"runtime witness {item.witness.strip()!r}"
        log.debug(f"build {build.id}: {what} on {item.worker or 'unknown worker'}")
    return BuildRead(build, found, stream.outcome, record)


def _cached_record(build: Build, cache: EvidenceCache | None) -> BuildRecord | None:
    stored = cache.lookup_record(build) if cache else None
    if stored is None:
        return None
    try:
        return BuildRecord.from_json(stored)
    except (TypeError, ValueError, KeyError):
        return None  # damaged: read the build again


def _worth_reading(build: Build, config: SourceConfig) -> bool:
    return bool(builds_to_read([build], config.scan_statuses))


class _Streams:
    """Event streams read at most `workers` at once, each started when its build is listed.

    With one worker nothing runs early: each task runs when its result is asked for, in the
    listing's order, exactly as a plain loop would. Each running task holds one pooled
    connection, so `workers` is also the most connections a scan opens.
    """

    def __init__(self, workers: int) -> None:
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-guard-stream")
            if workers > 1
            else None
        )
        self._started: dict[int, Future[Any] | Callable[[], Any]] = {}

    def start(self, key: int, task: Callable[[], Any]) -> None:
        if key not in self._started:
            self._started[key] = self._pool.submit(task) if self._pool else task

    def result(self, key: int, task: Callable[[], _T]) -> _T:
        """The started task's result, or `task`'s when none was started under `key`."""
        started = self._started.pop(key, task)
        value: _T = started.result() if isinstance(started, Future) else started()
        return value

    def __enter__(self) -> _Streams:
        return self

    def __exit__(self, *exc: object) -> None:
        # Builds started but not in the final listing, or an error: do not start the rest.
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _not_read() -> BuildRecord | None:
    return None


def _sample_work(
    build: Build,
    client: ConcourseClient,
    collector: ErrorCollector,
    cache: EvidenceCache | None,
    log: Log,
    max_bytes: int,
) -> BuildRecord | None:
    """Where one sampled build's steps were placed: the base rate, nothing else. None: it
    could not be read."""
    cached = _cached_record(build, cache)
    if cached is not None:
        return cached
    record = BuildRecord()
    stream = client.build_events(build.id, max_bytes=max_bytes, events=collector.event_types)
    try:
        for _ in collector.observe(build, stream, record, errors=False):
            pass
    except ConcourseError as error:
        log.debug(f"base-rate sample: {error.message}")
        return None
    if cache and stream.complete:
        cache.store_record(build, record.to_json())
    return record


def _signatures(
    config: SourceConfig,
    reads: Sequence[BuildRead],
    sampled: Sequence[BuildRecord],
    facts: Mapping[str, Mapping[str, Fact]],
    cache: EvidenceCache | None,
    now: int,
) -> Detection:
    """Emerging signatures over every read build's unexplained errors, against where work
    was placed in those builds and the sample."""
    placements: Counter[str] = Counter()
    for record in [r.record for r in reads if r.record] + list(sampled):
        placements.update(record.placements)
    errors = [(r.build, e) for r in reads if r.record for e in r.record.errors]
    release_of = {w: f["concourse"].value for w, f in facts.items() if "concourse" in f}
    detection = find_signatures(
        errors,
        placements,
        release_of=release_of,
        memory=cache.memory if cache else {},
        base_url=config.url,
        now=now,
        settings=Settings(min_builds=config.emerging.min_builds),
    )
    if cache:
        cache.memory = dict(detection.memory)
    return detection


def _error_reason(error: ConcourseError) -> str:
    if error.status in (401, 403):
        return "forbidden"
    if error.status == 404:
        return "gone"
    return "server_error"


def _unread(read: BuildRead) -> UnreadBuild:
    b = read.build
    return UnreadBuild(b.id, b.team_name, b.pipeline_name, b.job_name, str(read.outcome))


def _pages(count: int) -> str:
    return f"{count} page" + ("" if count == 1 else "s")


def summary_line(report: Report) -> str:
    """The one line every check prints on stderr."""
    s = report.scanned
    affecting = len(report.affecting)
    return (
        f"fleet-guard: {report.status}"
        + (f" ({', '.join(report.advisory_ids)})" if report.advisory_ids else "")
        + f"; {len(report.workers)} workers, {s.builds_listed} builds listed "
        + (
            f"({_pages(s.list_pages)})"
            if s.builds_fetched is None
            else f"({s.builds_fetched} new or updated, {_pages(s.list_pages)})"
        )
        + f", {s.builds_read} read"
        + (f" ({s.builds_cached} more from cache)" if s.builds_cached else "")
        + (f", {s.builds_sampled} sampled" if s.builds_sampled else "")
        + f", {len(report.findings)} findings ({affecting} affecting), "
        + (f"{len(report.emerging)} emerging signature(s), " if report.emerging else "")
        + f"{s.api_calls} API calls, {s.seconds:.1f}s"
    )

"""One scan of the fleet: the flow config → client → facts/evidence → advisor → report.

This is the only module that strings the stages together; each stage stays testable alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fleet_guard.advisories.engine import evaluate
from fleet_guard.advisories.loader import load_advisories
from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.models import Build
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.evidence import Evidence, EvidenceMatcher, builds_to_read
from fleet_guard.evidence_cache import EvidenceCache
from fleet_guard.facts import gather_facts, web_facts
from fleet_guard.facts.releases import ReleaseTable
from fleet_guard.log import Log
from fleet_guard.report import Report, Scanned

# Statuses of one build's event stream that skip that build instead of failing the scan.
_SKIPPABLE = (403, 404)


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
    listing = client.list_builds(
        since=int(now) - config.window_seconds, max_builds=config.max_builds, teams=config.teams
    )
    to_read = builds_to_read(listing.builds, config.scan_statuses)
    matcher = EvidenceMatcher(rules, base_url=config.url, redact=log.redact)
    evidence, unreadable = _collect_evidence(to_read, client, matcher, cache, log)

    fleet = gather_facts(workers, info, config, evidence, ReleaseTable.load())
    for conflict in fleet.conflicts:
        # Usually a declared fact that is out of date: worth a line on every check.
        log.warn(conflict.describe())
    facts = fleet.workers
    if cache:
        cache.save(listing.builds)
    findings = evaluate(rules, facts, evidence, web_facts(info))
    if unreadable:
        shown = ", ".join(str(i) for i in unreadable[:5]) + (" …" if len(unreadable) > 5 else "")
        log.warn(
            f"could not read the events of {len(unreadable)} build(s) ({shown}): their jobs are "
            "private to teams these credentials hold no role in, or they were deleted; give the "
            "user the viewer role there, or limit source.teams"
        )
    if listing.capped:
        log.warn(
            f"stopped listing builds at source.max_builds ({config.max_builds}) before the "
            f"{config.window} window ended; raise max_builds or shorten window to see them all"
        )
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
            builds_read=len(to_read) - len(unreadable) - (cache.hits if cache else 0),
            builds_cached=cache.hits if cache else 0,
            api_calls=client.calls,
            capped=listing.capped,
            seconds=time.monotonic() - started,
        ),
        generated_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        builds=listing.builds,
    )


def _collect_evidence(
    builds: Sequence[Build],
    client: ConcourseClient,
    matcher: EvidenceMatcher,
    cache: EvidenceCache | None,
    log: Log,
) -> tuple[list[Evidence], list[int]]:
    """Evidence from each build (cached, else streamed), and the builds we may not read."""
    evidence: list[Evidence] = []
    unreadable: list[int] = []
    for build in builds:
        found = cache.lookup(build) if cache else None
        if found is None:
            stream = client.build_events(build.id)
            try:
                found = matcher.match_build(build, stream)
            except ConcourseError as error:
                if error.status not in _SKIPPABLE:
                    raise
                # A public pipeline's private job (403), or a build deleted meanwhile (404):
                # one build we may not read must not blind the whole scan.
                log.debug(error.message)
                unreadable.append(build.id)
                continue
            if cache and stream.complete:
                cache.store(build, found)
        for item in found:
            log.debug(f"build {build.id}: {item.advisory} on {item.worker or 'unknown worker'}")
        evidence += found
    return evidence, unreadable


def summary_line(report: Report) -> str:
    """The one line every check prints on stderr."""
    s = report.scanned
    affecting = len(report.affecting)
    return (
        f"fleet-guard: {report.status}"
        + (f" ({', '.join(report.advisory_ids)})" if report.advisory_ids else "")
        + f"; {len(report.workers)} workers, {s.builds_listed} builds listed, "
        f"{s.builds_read} read"
        + (f" ({s.builds_cached} more from cache)" if s.builds_cached else "")
        + f", {len(report.findings)} findings ({affecting} affecting), "
        f"{s.api_calls} API calls, {s.seconds:.1f}s"
    )

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
from fleet_guard.advisories.releases import ReleaseTable
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import SourceConfig
from fleet_guard.evidence import Evidence, EvidenceMatcher, builds_to_read
from fleet_guard.facts import gather_facts
from fleet_guard.log import Log
from fleet_guard.report import Report, Scanned


def scan_fleet(
    config: SourceConfig,
    client: ConcourseClient,
    log: Log,
    *,
    advisories: Sequence[Advisory] | None = None,
    clock: Callable[[], float] = time.time,
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
    evidence: list[Evidence] = []
    for build in to_read:
        found = matcher.match_build(build, client.build_events(build.id))
        for item in found:
            log.debug(f"build {build.id}: {item.advisory} on {item.worker or 'unknown worker'}")
        evidence += found

    fleet = gather_facts(workers, info, config, evidence, ReleaseTable.load())
    for conflict in fleet.conflicts:
        # Usually a declared fact that is out of date: worth a line on every check.
        log.warn(conflict.describe())
    facts = fleet.workers
    web = {"web.worker_version": info.worker_version, "web.concourse": info.version}
    findings = evaluate(rules, facts, evidence, web)
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
            builds_read=len(to_read),
            api_calls=client.calls,
            capped=listing.capped,
            seconds=time.monotonic() - started,
        ),
        generated_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        builds=listing.builds,
    )


def summary_line(report: Report) -> str:
    """The one line every check prints on stderr."""
    s = report.scanned
    affecting = len(report.affecting)
    return (
        f"fleet-guard: {report.status}"
        + (f" ({', '.join(report.advisory_ids)})" if report.advisory_ids else "")
        + f"; {len(report.workers)} workers, {s.builds_listed} builds listed, "
        f"{s.builds_read} read, {len(report.findings)} findings ({affecting} affecting), "
        f"{s.api_calls} API calls, {s.seconds:.1f}s"
    )

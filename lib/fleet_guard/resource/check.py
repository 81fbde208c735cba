"""`check`: scan the fleet and turn its state into resource versions."""

from __future__ import annotations

from fleet_guard.advisories.loader import load_advisories
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import load_source
from fleet_guard.evidence_cache import EvidenceCache
from fleet_guard.log import Log
from fleet_guard.resource.protocol import Request
from fleet_guard.scan import scan_fleet, summary_line
from fleet_guard.version import check_versions


def check(request: Request, log: Log) -> list[dict[str, str]]:
    config = load_source(request.source)
    advisories = load_advisories(config)
    # Only check reuses its container from run to run, so only check keeps a cache.
    cache = EvidenceCache.for_check(config.url, advisories, log)
    with ConcourseClient(config, log) as client:
        report = scan_fleet(config, client, log, advisories=advisories, cache=cache)
    log.info(summary_line(report))
    return check_versions(request.version, report.version(), emit=config.emit)

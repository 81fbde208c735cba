"""`metrics.prom`: the report as OpenMetrics text, for node_exporter's textfile collector or a
Pushgateway.

Written with prometheus_client's own exposition code, not by hand: escaping of label values
(worker names, URLs), metric naming and the `# EOF` terminator are its job. Every metric is a
gauge, since each file is one scan's snapshot, which also keeps the text readable by the
classic Prometheus text parser that the textfile collector uses.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest

from fleet_guard.report import Report
from fleet_guard.version import AFFECTED, HEALTHY, INCOMPLETE

# Every status a report can have, so a dashboard sees 0 for the others rather than no series.
KNOWN_STATUSES: tuple[str, ...] = (HEALTHY, AFFECTED, INCOMPLETE)


class _ReportCollector:
    """A prometheus_client collector over one finished report (no live state)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        report = self.report
        info = GaugeMetricFamily(
            "fleet_guard_concourse", "The Concourse scanned (always 1).", labels=["url", "version"]
        )
        info.add_metric([report.url, report.info.version or "unknown"], 1)
        yield info

        status = GaugeMetricFamily(
            "fleet_guard_status", "1 for the fleet's status, 0 for the others.", labels=["status"]
        )
        for name in dict.fromkeys((*KNOWN_STATUSES, report.status)):
            status.add_metric([name], 1 if name == report.status else 0)
        yield status

        findings = GaugeMetricFamily(
            "fleet_guard_finding_workers",
            "Workers with this outcome for this advisory.",
            labels=["advisory", "outcome", "severity", "affects_status"],
        )
        deciding = {id(f) for f in report.affecting}
        for finding in report.findings:
            findings.add_metric(
                [
                    finding.advisory.id,
                    finding.outcome.value,
                    str(finding.advisory.severity),
                    "true" if id(finding) in deciding else "false",
                ],
                len(finding.workers),
            )
        yield findings

        yield _gauge("fleet_guard_workers", "Workers registered.", len(report.workers))
        yield _gauge(
            "fleet_guard_affected_workers",
            "Workers that make the fleet affected.",
            len(report.affected_workers),
        )

        evidence = GaugeMetricFamily(
            "fleet_guard_evidence_builds",
            "Builds whose errors match the advisory, per worker (empty: no worker named).",
            labels=["advisory", "worker"],
        )
        counts: dict[tuple[str, str], int] = {}
        for finding in report.findings:
            for item in finding.evidence:
                key = (item.advisory, item.worker or "")
                counts[key] = counts.get(key, 0) + 1
        for (advisory, worker), count in sorted(counts.items()):
            evidence.add_metric([advisory, worker], count)
        yield evidence

        yield _gauge(
            "fleet_guard_emerging_signatures",
            "Emerging signatures: unexplained error templates concentrated on a few workers.",
            len(report.emerging),
        )
        emerging = GaugeMetricFamily(
            "fleet_guard_emerging_builds",
            "Builds showing the emerging signature on each worker it concentrates on.",
            labels=["signature", "worker", "affects_status"],
        )
        deciding_signatures = {s.id for s in report.emerging_affecting}
        for signature in report.emerging:
            affects = "true" if signature.id in deciding_signatures else "false"
            for on in signature.workers:
                emerging.add_metric([signature.id, on.worker, affects], on.observed)
        yield emerging

        s = report.scanned
        yield _gauge("fleet_guard_builds_listed", "Builds listed in the window.", s.builds_listed)
        yield _gauge("fleet_guard_builds_read", "Build event streams read.", s.builds_read)
        yield _gauge(
            "fleet_guard_builds_cached", "Builds whose evidence came from cache.", s.builds_cached
        )
        yield _gauge(
            "fleet_guard_builds_sampled",
            "Other builds read for the base rate of emerging signatures.",
            s.builds_sampled,
        )
        yield _gauge(
            "fleet_guard_listing_capped",
            "1 when the listing stopped at source.max_builds before the window ended.",
            1 if s.capped else 0,
        )
        coverage = report.coverage
        yield _gauge(
            "fleet_guard_coverage_complete",
            "1 when the scan saw everything in scope; 0 makes a fleet without findings incomplete.",
            1 if coverage.complete else 0,
        )
        unread = GaugeMetricFamily(
            "fleet_guard_builds_not_read",
            "Listed builds whose log was not read whole, per reason.",
            labels=["reason"],
        )
        for reason, count in coverage.counts().items():
            unread.add_metric([reason], count)
        yield unread
        yield _gauge(
            "fleet_guard_teams_not_visible",
            "Teams in source.teams whose builds could not be listed.",
            len(coverage.teams_not_visible),
        )
        yield _gauge("fleet_guard_api_calls", "ATC API calls the scan made.", s.api_calls)
        seconds = GaugeMetricFamily(
            "fleet_guard_scan_seconds", "How long the scan took.", unit="seconds"
        )
        seconds.add_metric([], round(s.seconds, 3))
        yield seconds


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def render_metrics(report: Report) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    # prometheus_client's OpenMetrics module has no annotations; it returns bytes.
    text: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return text.decode("utf-8")

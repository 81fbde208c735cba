"""`in` (get): scan the fleet now and write the report a job can read, for machines and people.

The version Concourse asks for only names a state; what a job needs is the fleet as it is when
the job runs. So `in` scans again, writes what it found, and says in `report.json` whether the
live state is still the one the version names (`current`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import load_source
from fleet_guard.errors import UserError
from fleet_guard.log import Log
from fleet_guard.params import load_get_params
from fleet_guard.render import (
    render_headline,
    render_markdown,
    render_message,
    render_metrics,
    render_text,
)
from fleet_guard.report import Report, report_json
from fleet_guard.resource.metadata import Metadata, as_version, metadata, shorten, state_pairs
from fleet_guard.resource.protocol import Request
from fleet_guard.scan import scan_fleet, summary_line
from fleet_guard.version import Version

# The directory layout is a contract with tasks and with `put ... from:`.
REPORT_FILE = "report.json"
SUMMARY_FILE = "summary.md"
AFFECTED_FILE = "affected_workers"
VERSION_FILE = "version.json"
HEADLINE_FILE = "headline"
MESSAGE_FILE = "message.md"
METRICS_FILE = "metrics.prom"


def get(request: Request, log: Log) -> dict[str, Any]:
    params = load_get_params(request.params)
    config = load_source(request.source)
    directory = Path(request.directory or ".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot write the report into {directory} ({error.strerror or error}): Concourse "
            "passes the get's output directory as the first argument; it must be a directory."
        ) from None
    if not params.scan:
        given = as_version(request.version or {})
        _write(directory / VERSION_FILE, _json_text(given))
        log.info("fleet-guard: scan: false; wrote version.json only")
        return {"version": given, "metadata": metadata(state_pairs(Version.from_json(given)))}

    with ConcourseClient(config, log) as client:
        report = scan_fleet(config, client, log)
    log.info(summary_line(report))
    # Concourse always names a version; without one (a manual run) the live state stands in.
    given = as_version(request.version) if request.version else report.version().to_json()
    current = Version.from_json(given).fingerprint == report.fingerprint
    document = {**report_json(report), "version": given, "current": current}
    _write(directory / REPORT_FILE, _json_text(document))
    _write(directory / SUMMARY_FILE, render_markdown(report))
    _write(directory / AFFECTED_FILE, "".join(f"{name}\n" for name in report.affected_workers))
    _write(directory / VERSION_FILE, _json_text(given))
    _write(directory / HEADLINE_FILE, render_headline(report))
    _write(directory / MESSAGE_FILE, render_message(report))
    _write(directory / METRICS_FILE, render_metrics(report))
    log.info(render_text(report, files=f"{SUMMARY_FILE} and {REPORT_FILE} in this get's directory"))
    if not current:
        log.info(
            "fleet-guard: the fleet has changed since this version was checked; "
            "the files describe it as it is now (report.json: current = false)"
        )
    return {"version": given, "metadata": _metadata(report, current)}


def _metadata(report: Report, current: bool) -> Metadata:
    affected = report.affected_workers
    return metadata(
        [
            *state_pairs(report.version()),
            ("affected", len(affected)),
            ("affected_workers", shorten(affected)),
            ("concourse", report.info.version or "unknown"),
            ("builds_read", report.scanned.builds_read),
            ("coverage", report.coverage.summary()),
            ("current", str(current).lower()),
        ]
    )


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")

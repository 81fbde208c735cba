"""`assets/in DEST` against the simulator: the four files, the metadata, and `scan: false`."""

from __future__ import annotations

import json
from pathlib import Path

from fleet_guard.schema import problems
from tests.contract.helpers import run_asset, source_for

EINTR = "cni-netlink-eintr"
STALE = {"fingerprint": "0123456789abcdef", "seq": "4", "status": "affected", "advisories": EINTR}


def check_version(sim) -> dict[str, str]:
    result = run_asset("check", {"source": source_for(sim)})
    assert result.code == 0, result.stderr
    [version] = result.json
    return version


def fetch(sim, dest: Path, version, params=None):
    payload = {"source": source_for(sim), "version": version}
    if params is not None:
        payload["params"] = params
    return run_asset("in", payload, str(dest))


def metadata_of(result) -> dict[str, str]:
    items = result.json["metadata"]
    assert all(set(m) == {"name", "value"} for m in items)
    assert all(isinstance(m["value"], str) for m in items), "Concourse needs string values"
    return {m["name"]: m["value"] for m in items}


def test_incident_writes_the_report_files(incident, tmp_path):
    version = check_version(incident)
    result = fetch(incident, tmp_path, version)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "affected_workers",
        "headline",
        "message.md",
        "metrics.prom",
        "report.json",
        "summary.md",
        "version.json",
    ]
    assert result.json["version"] == version, "in must echo the version it was given"

    report = json.loads((tmp_path / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    assert report["status"] == "affected"
    assert report["fingerprint"] == version["fingerprint"]
    assert report["version"] == version and report["current"] is True
    assert report["concourse"]["version"] == "7.12.0"
    assert report["concourse"]["worker_version"] == "2.5"
    assert {w["name"] for w in report["workers"]} == {f"w-{i}" for i in range(5)}
    w1 = next(w for w in report["workers"] if w["name"] == "w-1")
    assert w1["facts"]["runtime"]["source"] == "observed"
    matched = next(
        f for f in report["findings"] if f["advisory"] == EINTR and f["outcome"] == "matched"
    )
    assert matched["severity"] == "high" and matched["summary"]
    assert sorted(matched["workers"]) == ["w-1", "w-3"]
    assert matched["remediation"]["fix"]
    first = matched["evidence"][0]
    assert {"build_id", "team", "pipeline", "job", "build", "worker", "message", "url"} <= set(
        first
    )
    assert report["scanned"]["builds_read"] > 0 and report["scanned"]["api_calls"] > 0

    assert (tmp_path / "affected_workers").read_text() == "w-1\nw-3\n"
    assert json.loads((tmp_path / "version.json").read_text()) == version
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# Fleet Guard: AFFECTED")
    assert f"## {EINTR} [high]: affects the status" in summary
    assert "### Matched (2 workers)" in summary
    assert f"]({first['url']})" in summary, "evidence builds are links"
    assert "**Fix:**" in summary
    headline = (tmp_path / "headline").read_text()
    assert (
        headline.startswith("Fleet Guard: AFFECTED by cni-netlink-eintr")
        and headline.count("\n") == 1
    )
    assert f"<{first['url']}|build {first['build_id']}>" in (tmp_path / "message.md").read_text()
    assert (tmp_path / "metrics.prom").read_text().endswith("# EOF\n")


def test_incident_build_log_is_plain_text_naming_workers_and_the_fix(incident, tmp_path):
    result = fetch(incident, tmp_path, check_version(incident))
    assert result.code == 0, result.stderr
    assert "fleet-guard: affected: cni-netlink-eintr on 2 of 5 workers (w-1, w-3)" in result.stderr
    assert "    fix: " in result.stderr
    assert "**" not in result.stderr and "](" not in result.stderr


def test_incident_metadata_says_what_a_person_scans_for(incident, tmp_path):
    result = fetch(incident, tmp_path, check_version(incident))
    assert result.code == 0, result.stderr
    assert metadata_of(result) == {
        "status": "affected",
        "advisories": EINTR,
        "affected": "2",
        "affected_workers": "w-1, w-3",
        "concourse": "7.12.0",
        "builds_read": metadata_of(result)["builds_read"],
        "coverage": "complete",
        "current": "true",
    }
    assert int(metadata_of(result)["builds_read"]) > 0


def test_a_version_the_fleet_has_moved_on_from_is_marked_not_current(incident, tmp_path):
    result = fetch(incident, tmp_path, STALE)
    assert result.code == 0, result.stderr
    assert result.json["version"] == STALE
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["current"] is False and report["version"] == STALE
    assert metadata_of(result)["current"] == "false"
    assert "changed since" in result.stderr


def test_healthy_fleet_leaves_affected_workers_empty(healthy, tmp_path):
    given = {**STALE, "status": "healthy", "advisories": ""}
    result = fetch(healthy, tmp_path, given)
    assert result.code == 0, result.stderr
    assert (tmp_path / "affected_workers").read_text() == ""
    report = json.loads((tmp_path / "report.json").read_text())
    assert problems(report, "report", where="report.json") == []
    assert report["status"] == "healthy" and report["findings"] == []
    assert metadata_of(result)["affected_workers"] == "none"
    assert (tmp_path / "summary.md").read_text().startswith("# Fleet Guard: HEALTHY")


def test_scan_false_writes_only_the_version_and_calls_nothing(incident, tmp_path):
    incident.clear_requests()
    result = fetch(incident, tmp_path, STALE, params={"scan": False})
    assert result.code == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["version.json"]
    assert json.loads((tmp_path / "version.json").read_text()) == STALE
    assert result.json["version"] == STALE
    assert metadata_of(result) == {"status": "affected", "advisories": EINTR}
    assert incident.requests == []


def test_get_never_changes_anything(incident, tmp_path):
    incident.clear_requests()
    assert fetch(incident, tmp_path, STALE).code == 0
    assert incident.mutations == []


def test_invalid_params_are_a_clear_message(incident, tmp_path):
    result = fetch(incident, tmp_path, STALE, params={"scan": "yes", "sacn": True})
    assert result.code == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "params.scan" in result.stderr and "did you mean 'scan'" in result.stderr


def test_in_needs_its_directory(incident):
    result = run_asset("in", {"source": source_for(incident), "version": STALE})
    assert result.code == 1
    assert "DIRECTORY" in result.stderr

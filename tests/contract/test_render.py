"""What a person reads, rendered from a real scan of the incident scenario over HTTP."""

from __future__ import annotations

import re
import sys
from dataclasses import replace

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as classic_families

from fleet_guard.advisories.model import Outcome
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import load_source
from fleet_guard.log import Log
from fleet_guard.redact import Redactor
from fleet_guard.render import (
    render_headline,
    render_markdown,
    render_message,
    render_metrics,
    render_text,
)
from fleet_guard.report import Report
from fleet_guard.scan import scan_fleet
from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import PASSWORD, source_for

EINTR = "cni-netlink-eintr"
MARKDOWN = re.compile(r"\*\*|\]\(|^#+ |^\|", re.MULTILINE)


def scan(sim, **extra) -> Report:
    config = load_source(source_for(sim, **extra))
    log = Log(redactor=Redactor(config.secrets), stream=sys.stderr)
    with ConcourseClient(config, log) as client:
        return scan_fleet(config, client, log)


@pytest.fixture(scope="module")
def report(incident) -> Report:
    return scan(incident)


def with_many_possible(report: Report, count: int) -> Report:
    """The incident, with `count` extra `possible` workers, as on a big fleet."""
    extra = tuple(f"x-{i:02}" for i in range(count))
    findings = [
        replace(f, workers=f.workers + extra) if f.outcome is Outcome.POSSIBLE else f
        for f in report.findings
    ]
    return replace(report, findings=findings)


def test_summary_puts_verdict_and_coverage_before_the_findings(report):
    summary = render_markdown(report)
    lines = summary.splitlines()
    assert lines[0] == "# Fleet Guard: AFFECTED"
    verdict = next(i for i, line in enumerate(lines) if line.startswith("**Verdict:**"))
    coverage = next(i for i, line in enumerate(lines) if line.startswith("**Coverage:**"))
    first_section = next(i for i, line in enumerate(lines) if line.startswith("## "))
    assert verdict < coverage < first_section
    assert "w-1, w-3" in lines[verdict] and "2 of 5 workers" in lines[verdict]
    assert "builds listed" in lines[coverage] and "build logs read" in lines[coverage]


def test_summary_has_one_section_per_advisory_with_outcomes_grouped(report):
    summary = render_markdown(report)
    assert summary.count(f"## {EINTR} ") == 1, "matched and possible share one section"
    section = summary.split(f"## {EINTR} ")[1].split("\n## ")[0]
    assert "Workers by outcome: Matched 2, Possible 3." in section
    assert section.index("### Matched (2 workers)") < section.index("### Possible (3 workers)")
    assert "**Fix:**" in section


def test_summary_tables_the_affected_workers_with_sources_uptime_and_errors(report):
    summary = render_markdown(report)
    table = summary.split("## Affected workers (2)")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| w-")]
    assert [r.split("|")[1].strip() for r in rows] == ["w-1", "w-3"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        _name, state, release, runtime, uptime, errors, last = cells
        assert state == "running"
        assert release == "7.12.0 (observed)" and runtime == "containerd (observed)"
        assert re.fullmatch(r"\d+ d( \d+ h)?", uptime), uptime
        assert errors == "5"
        assert re.search(r"\d\d:\d\d UTC, .* ago$", last), last


def test_summary_evidence_lines_carry_utc_time_and_age(report):
    summary = render_markdown(report)
    evidence = [line for line in summary.splitlines() if "[build " in line]
    assert evidence
    for line in evidence:
        assert re.match(r"- \d{4}-\d\d-\d\d \d\d:\d\d UTC \(.+ ago\): \[build \d+\]\(http", line)


def test_summary_links_the_references_and_explains_only_outcomes_present(report):
    summary = render_markdown(report)
    assert (
        "[report: concourse/concourse#9027](https://github.com/concourse/concourse/issues/9027)"
        in summary
    )
    meanings = summary.split("## What the outcomes mean")[1]
    assert "**Matched:**" in meanings and "**Possible:**" in meanings
    assert "**Evidence only:**" not in meanings and "**Resolved:**" not in meanings


def test_summary_caps_long_lists_so_affected_workers_stay_visible(report):
    big = with_many_possible(report, 40)
    summary = render_markdown(big)
    section = summary.split(f"## {EINTR} ")[1].split("\n## ")[0]
    assert "### Possible (43 workers)" in section
    assert "- … and 33 more in report.json" in section
    assert section.count("- x-") == 7
    assert summary.index("## Affected workers") < summary.index("x-00")


def test_build_log_text_is_plain_and_names_verdict_workers_and_fix(report):
    text = render_text(report)
    assert not MARKDOWN.search(text), text
    first = text.splitlines()[0]
    assert first.startswith("fleet-guard: affected: cni-netlink-eintr on 2 of 5 workers")
    assert "    matched: w-1, w-3" in text
    assert "    fix: Upgrade Concourse" in text
    assert re.search(r"error \d\d:\d\d UTC, .* ago on w-3: http://", text)


def test_headline_is_one_line_and_message_uses_chat_links(report):
    headline = render_headline(report)
    assert headline.endswith("\n") and headline.count("\n") == 1
    assert headline.startswith("Fleet Guard: AFFECTED by cni-netlink-eintr on 2 of 5 workers")
    message = render_message(report)
    first = report.affecting[0].evidence[0]
    assert f"<{first.url}|build {first.build_id}>" in message
    assert "](" not in message and "|---" not in message and "\n#" not in message
    assert "• Matched: w-1, w-3" in message


def test_healthy_headline_and_text(healthy):
    report = scan(healthy)
    assert render_headline(report).startswith("Fleet Guard: HEALTHY, ")
    assert render_text(report).startswith("fleet-guard: healthy: no advisory at high")


def test_metrics_parse_back_with_the_openmetrics_and_the_classic_parser(report):
    text = render_metrics(report)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    status = {s.labels["status"]: s.value for s in families["fleet_guard_status"].samples}
    assert status == {"healthy": 0, "affected": 1, "incomplete": 0}
    found = {
        (s.labels["advisory"], s.labels["outcome"]): s.value
        for s in families["fleet_guard_finding_workers"].samples
    }
    assert found[(EINTR, "matched")] == 2 and found[(EINTR, "possible")] == 3
    evidence = {
        s.labels["worker"]: s.value for s in families["fleet_guard_evidence_builds"].samples
    }
    # w-2: the scenario's one-off that failed to create a volume (worker-volume-create-failed)
    assert evidence == {"w-1": 5, "w-3": 5, "w-2": 1}
    assert families["fleet_guard_affected_workers"].samples[0].value == 2
    assert families["fleet_guard_api_calls"].samples[0].value == report.scanned.api_calls
    assert families["fleet_guard_scan_seconds"].unit == "seconds"
    # node_exporter's textfile collector reads the classic text format: it must parse too.
    classic = {f.name for f in classic_families(text)}
    assert {"fleet_guard_status", "fleet_guard_builds_read"} <= classic


def test_nothing_rendered_holds_the_password(report):
    for text in (
        render_markdown(report),
        render_text(report),
        render_headline(report),
        render_message(report),
        render_metrics(report),
    ):
        assert PASSWORD not in text


def test_an_incomplete_scan_says_what_it_missed_in_every_medium():
    with Simulator(load_scenario("healthy")) as sim:
        sim.add_fault({"path": "/api/v1/builds/*/events", "status": 403, "times": -1})
        report = scan(sim, scan_statuses=["succeeded", "failed", "errored"])
    assert report.status == "incomplete"
    assert render_headline(report).startswith("Fleet Guard: INCOMPLETE")
    text = render_text(report)
    assert text.startswith("fleet-guard: incomplete: ")
    assert "  not seen: " in text and "not read whole" in text
    summary = render_markdown(report)
    top = summary.split("\n## ")[0]
    assert top.index("**Verdict:**") < top.index("not read whole")
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(report))}
    assert families["fleet_guard_coverage_complete"].samples[0].value == 0
    unread = {s.labels["reason"]: s.value for s in families["fleet_guard_builds_not_read"].samples}
    assert unread["forbidden"] > 0 and unread["gone"] == 0
    status = {s.labels["status"]: s.value for s in families["fleet_guard_status"].samples}
    assert status["incomplete"] == 1 and status["healthy"] == 0

"""capture → replay: a file that reproduces a scan, with no credential in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import PASSWORD

TOKEN = "static-token-for-tests"
# Differ between a live scan and its replay by nature: when, how long, where (a worker's
# uptime fact is as of the scan); and the replay logs in with a password where the fly target
# had a token, one API call more.
_VOLATILE = {"generated_at", "seconds", "time", "url", "api_calls", "uptime"}


def cli(*args: str, home: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "fleet_guard.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(home), **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def comparable(report: dict[str, Any], base_url: str) -> Any:
    """The report without what a replay cannot keep: clock times, durations and the host."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return value.replace(base_url, "URL")
        return value

    return clean(report)


def capture(sim: Simulator, home: Path, *extra: str) -> tuple[Path, dict[str, Any], str]:
    (home / ".flyrc").write_text(
        f"targets:\n  sim:\n    api: {sim.url}\n    team: main\n"
        f"    token:\n      type: bearer\n      value: {TOKEN}\n"
    )
    out = home / "capture.json"
    done = cli("capture", "-t", "sim", "-o", str(out), *extra, home=home)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    return out, json.loads(text), text


@pytest.fixture(scope="module")
def captured(tmp_path_factory, incident):
    home = tmp_path_factory.mktemp("home")
    path, document, text = capture(incident, home)
    return home, path, document, text


def test_capture_then_replay_gives_the_same_report_as_the_live_scan(incident, captured):
    home, path, _, _ = captured
    live = cli("scan", "-t", "sim", "--format", "json", home=home)
    replayed = cli("scan", "--replay", str(path), "--format", "json", home=home)
    assert live.returncode == replayed.returncode == 2, replayed.stderr
    live_report, replay_report = json.loads(live.stdout), json.loads(replayed.stdout)
    replay_url = replay_report["concourse"]["url"]
    assert replay_url.startswith("http://127.0.0.1:") and replay_url != incident.url
    assert replay_report["fingerprint"] == live_report["fingerprint"]
    assert comparable(replay_report, replay_url) == comparable(live_report, incident.url)


def test_evidence_times_survive_the_replay_relative_to_the_build(incident, captured):
    home, path, _, _ = captured
    live = json.loads(cli("scan", "-t", "sim", "--format", "json", home=home).stdout)
    replay = json.loads(cli("scan", "--replay", str(path), "--format", "json", home=home).stdout)

    def ages(report: dict[str, Any]) -> list[int]:
        now = max(e["time"] for f in report["findings"] for e in f["evidence"])
        return sorted(now - e["time"] for f in report["findings"] for e in f["evidence"])

    assert ages(live) == ages(replay)


def test_the_capture_is_a_scenario_without_credentials(captured):
    _, _, document, text = captured
    assert TOKEN not in text and PASSWORD not in text
    assert "external_url" not in document["info"], "a replay must never link to the real ATC"
    assert [u["username"] for u in document["users"]] == ["replay"]
    assert {w["name"] for w in document["workers"]} == {f"w-{i}" for i in range(5)}
    read = [b for b in document["builds"] if b.get("steps")]
    assert read and all(all("raw" in s for s in b["steps"]) for b in read)


def leaky_build(password: str) -> dict[str, Any]:
    """A failed build whose task log prints the password, as careless scripts do."""
    return {
        "id": 5001,
        "team": "main",
        "pipeline": "leaky",
        "job": "deploy",
        "status": "failed",
        "started_ago": 600,
        "worker": "w-1",
        "steps": [{"task": "deploy", "logs": [f"logging in with {password}\n"], "exit_status": 1}],
    }


def test_the_source_secrets_are_redacted_from_captured_logs(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        sim.add_builds([leaky_build(PASSWORD)])
        out = tmp_path / "c.json"
        done = cli(
            "capture", "--url", sim.url, "-u", "admin", "-o", str(out),
            "--source", str(write_statuses(tmp_path)),
            home=tmp_path, env={"FLEET_GUARD_PASSWORD": PASSWORD},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "logging in with " in text, "the leaky build's log was captured"
    assert PASSWORD not in text


def write_statuses(tmp_path: Path) -> Path:
    """A --source that reads failed builds' logs too, so the leaky one is streamed."""
    path = tmp_path / "statuses.yml"
    path.write_text("scan_statuses: [failed, errored]\n")
    return path


def test_blank_logs_empties_every_payload_and_keeps_the_errors(tmp_path):
    with Simulator(load_scenario("incident")) as sim:
        sim.add_builds([leaky_build(PASSWORD)])
        out = tmp_path / "c.json"
        done = cli(
            "capture", "--url", sim.url, "-u", "admin", "-o", str(out), "--blank-logs",
            "--source", str(write_statuses(tmp_path)),
            home=tmp_path, env={"FLEET_GUARD_PASSWORD": PASSWORD},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    payloads = [
        s["raw"]["data"].get("payload")
        for b in document["builds"]
        for s in b.get("steps", ())
        if s["raw"]["event"] == "log"
    ]
    assert payloads and set(payloads) == {""}, "--blank-logs empties every log payload"
    assert load_scenario(out).workers, "the file loads as a scenario"
    replay = cli("scan", "--replay", str(out), home=tmp_path)
    assert replay.returncode == 2, "error events are kept when logs are blanked"


def test_rules_test_shows_what_a_new_rule_finds_in_a_capture(captured, tmp_path):
    home, path, _, _ = captured
    rule = {
        "id": "our-loopback-eintr",
        "summary": "loopback plugin interrupted",
        "details": "A test rule over the captured history.",
        "severity": "high",
        "conditions": {},
        "evidence": {
            "required": True,
            "patterns": [{"event": "error", "regex": 'plugin type="loopback" failed'}],
        },
        "remediation": {"fix": "Upgrade the CNI plugins."},
        "references": [{"type": "WEB", "url": "https://example.com/our-runbook"}],
    }
    rule_file = tmp_path / "rule.json"
    rule_file.write_text(json.dumps(rule))
    done = cli("rules", "test", str(rule_file), "--replay", str(path), home=home)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("rule our-loopback-eintr:"), done.stderr
    assert "our-loopback-eintr [high]" in done.stdout and "w-1" in done.stdout
    assert "cni-netlink-eintr" not in done.stdout, "only the tested rule's findings"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**rule, "severity": "dire"}))
    refused = cli("rules", "test", str(bad), "--replay", str(path), home=home)
    assert refused.returncode == 1 and "not a valid rule" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_replay_file_that_is_not_a_scenario_is_one_message(tmp_path):
    path = tmp_path / "nope.json"
    path.write_text('{"workers": 3}')
    done = cli("scan", "--replay", str(path), home=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("fleet-guard: ")


def test_simulate_serves_a_capture_until_stopped(captured):
    import requests

    home, path, _, _ = captured
    server = subprocess.Popen(
        [sys.executable, "-m", "fleet_guard.cli", "simulate", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(home)},
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        info = requests.get(f"{url}/api/v1/info", timeout=10).json()
        assert info["version"] == "7.12.0"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0


def test_simulate_refuses_a_file_that_is_not_a_scenario(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[]")
    done = cli("simulate", str(path), home=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_simulate_on_a_port_in_use_is_one_message(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = cli("simulate", "incident", "--port", port, home=tmp_path)
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_capture_to_a_missing_directory_fails_before_scanning(incident, tmp_path):
    incident.clear_requests()
    done = cli(
        "capture", "--url", incident.url, "-u", "admin", "-o", str(tmp_path / "no" / "x.json"),
        home=tmp_path, env={"FLEET_GUARD_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert done.returncode == 1 and "is no directory" in done.stderr
    assert incident.requests == []

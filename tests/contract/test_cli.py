"""The operator CLI as a person runs it: the demo, the rule list and `explain`."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.contract.helpers import source_for


def fleet_guard(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_guard.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_shows_the_incident_finding_with_its_workers_and_builds():
    done = fleet_guard("demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"status": "affected"' in out and '"advisories": "cni-netlink-eintr"' in out
    assert "## cni-netlink-eintr [high]: affects the status" in out
    assert "- w-1: runtime containerd (observed), cni_plugins 1.6.0 (inferred)" in out
    assert "- w-3: runtime containerd (observed)" in out
    assert "### Possible (3 workers)" in out
    assert "[build 1241](" in out, "evidence builds are listed as links"


def test_demo_prints_the_exact_json_it_sent_to_check():
    done = fleet_guard("demo")
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stdout.splitlines() if x.startswith("$ echo '")]
    sent = json.loads(line.removeprefix("$ echo '").removesuffix("' | /opt/resource/check"))
    assert set(sent["source"]) == {"url", "username", "password"}
    assert sent["source"]["url"].startswith("http://127.0.0.1:")
    # The simulator's own demo user (README: The simulator), not a real credential.
    assert sent["source"]["username"] == "admin"


def test_rules_lists_every_builtin_advisory_worst_first():
    done = fleet_guard("rules")
    assert done.returncode == 0, done.stderr
    ids = [line.split()[0] for line in done.stdout.splitlines()]
    assert ids[0] == "runc-cve-2024-21626"
    assert set(ids) >= {
        "cni-netlink-eintr",
        "netlink-dump-interrupted",
        "guardian-cgroup-v2",
        "worker-version-skew",
        "stalled-worker",
    }


def test_explain_shows_which_fact_keeps_a_worker_possible(incident, tmp_path):
    path = tmp_path / "source.json"
    path.write_text(json.dumps(source_for(incident)))
    done = fleet_guard("explain", "cni-netlink-eintr", "--source", str(path), "--worker", "w-0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "w-0: possible" in lines
    runtime = next(line for line in lines if line.strip().startswith("runtime"))
    assert "unknown" in runtime
    assert "0 matching error(s)" in done.stdout

    typo = fleet_guard("explain", "cni-netlnk", "--source", str(path))
    assert typo.returncode == 1
    assert "did you mean 'cni-netlink-eintr'" in typo.stderr

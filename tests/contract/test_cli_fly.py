"""`fleet-guard scan` and `workers` as an operator runs them: fly targets, exit codes, pipes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_guard.simulator import Simulator, load_scenario
from tests.contract.helpers import PASSWORD, source_for

TOKEN = "static-token-for-tests"  # the simulator's static token for admin
ANSI = re.compile(r"\x1b\[")


def flyrc(home: Path, url: str, *, token: str | None = TOKEN, name: str = "sim") -> None:
    """~/.flyrc as fly writes it after `fly -t sim login -c URL` (sorted keys, team main)."""
    lines = ["targets:", f"  {name}:", f"    api: {url}", "    team: main"]
    if token is not None:
        lines += ["    token:", "      type: bearer", f"      value: {token}"]
    (home / ".flyrc").write_text("\n".join(lines) + "\n")


def run(*args: str, home: Path, env: dict[str, str] | None = None):
    environment = {**os.environ, "HOME": str(home), **(env or {})}
    if not env:
        environment.pop("FLEET_GUARD_PASSWORD", None)
    command = [sys.executable, "-m", "fleet_guard.cli", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_scan_with_a_fly_target_exits_2_on_the_incident(incident, tmp_path):
    flyrc(tmp_path, incident.url)
    done = run("scan", "--target", "sim", home=tmp_path)
    assert done.returncode == 2, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == "fleet-guard: affected: cni-netlink-eintr on 2 of 5 workers (w-1, w-3)"
    assert re.search(r"^cni-netlink-eintr +high +matched +2 +10 +yes$", done.stdout, re.M)
    assert all(len(line) <= 80 for line in done.stdout.splitlines())
    assert not ANSI.search(done.stdout), "no colour in a pipe"
    assert TOKEN not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_scan_exits_0_on_a_healthy_fleet_and_json_is_the_report(healthy, tmp_path):
    flyrc(tmp_path, healthy.url)
    done = run("scan", "-t", "sim", "--format", "json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "healthy"


def test_scan_exits_3_when_the_scan_could_not_see_everything(tmp_path):
    source = tmp_path / "source.yml"
    with Simulator(load_scenario("healthy")) as sim:
        sim.add_fault({"path": "/api/v1/builds/*/events", "status": 403, "times": -1})
        source.write_text(
            f"url: {sim.url}\nusername: admin\npassword: {PASSWORD}\n"
            "scan_statuses: [succeeded, failed, errored]\n"
        )
        done = run("scan", "--source", str(source), home=tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("fleet-guard: incomplete:")
    assert "not seen: " in done.stdout


def test_scan_exits_1_with_one_paragraph_for_an_unknown_target(incident, tmp_path):
    flyrc(tmp_path, incident.url)
    done = run("scan", "-t", "simm", home=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "unknown fly target 'simm'" in done.stderr and "did you mean 'sim'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_target_without_a_token_says_to_log_in(incident, tmp_path):
    flyrc(tmp_path, incident.url, token=None)
    done = run("scan", "-t", "sim", home=tmp_path)
    assert done.returncode == 1
    assert "fly -t sim login" in done.stderr


def test_an_expired_target_token_says_to_log_in_again(incident, tmp_path):
    flyrc(tmp_path, incident.url, token="not-a-token")
    done = run("scan", "-t", "sim", home=tmp_path)
    assert done.returncode == 1
    assert "401" in done.stderr and "fly -t TARGET login" in done.stderr
    assert "not-a-token" not in done.stderr


def test_url_and_username_take_the_password_from_the_environment(incident, tmp_path):
    env = {"FLEET_GUARD_PASSWORD": PASSWORD}
    done = run("scan", "--url", incident.url, "-u", "admin", home=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_url_without_a_password_and_no_terminal_is_an_error_not_a_hang(incident, tmp_path):
    done = run("scan", "--url", incident.url, "-u", "admin", home=tmp_path)
    assert done.returncode == 1
    assert "FLEET_GUARD_PASSWORD" in done.stderr


def test_there_is_no_password_argument(tmp_path):
    done = run("scan", "--url", "http://x", "-u", "admin", "--password", "p", home=tmp_path)
    assert done.returncode == 1
    assert "unrecognized arguments: --password" in done.stderr


@pytest.mark.parametrize("shape", ["json-source", "yaml-wrapped"])
def test_source_file_is_yaml_or_json_bare_or_as_check_reads_it(incident, tmp_path, shape):
    source = source_for(incident)
    path = tmp_path / "source"
    if shape == "json-source":
        path.write_text(json.dumps(source))
    else:
        body = "\n".join(f"  {k}: {v}" for k, v in source.items())
        path.write_text(f"source:\n{body}\nversion: null\n")
    done = run("scan", "--source", str(path), "--format", "markdown", home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("# Fleet Guard: AFFECTED")


def test_a_pipeline_var_in_the_source_file_is_explained(tmp_path):
    path = tmp_path / "source.yml"
    path.write_text("url: https://ci.example.com\nusername: u\npassword: ((pw))\n")
    done = run("scan", "--source", str(path), home=tmp_path)
    assert done.returncode == 1
    assert "pipeline var ((pw))" in done.stderr


def test_workers_prints_every_worker_with_fact_sources_in_80_columns(incident, tmp_path):
    flyrc(tmp_path, incident.url)
    done = run("workers", "-t", "sim", home=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "WORKER", "STATE", "RELEASE", "RUNTIME", "CNI", "UPTIME", "ERRORS", "LAST", "ERR",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:6]}
    assert list(rows) == ["w-1", "w-3", "w-0", "w-2", "w-4"], "affected first"
    assert rows["w-1"][1:6] == ["running", "7.12.0", "obs", "containerd", "obs"]
    assert rows["w-0"][4] == "?", "an unknown runtime is shown as unknown"
    assert rows["w-1"][-4] == "5" and rows["w-1"][-1] == "ago"
    assert rows["w-0"][-2:] == ["0", "-"]
    assert all(len(line) <= 80 for line in lines)
    as_json = json.loads(run("workers", "-t", "sim", "--format", "json", home=tmp_path).stdout)
    assert [w["name"] for w in as_json][:2] == ["w-1", "w-3"]
    assert as_json[0]["facts"]["runtime"] == {
        "value": "containerd",
        "source": "observed",
        "detail": as_json[0]["facts"]["runtime"]["detail"],
    }
    assert as_json[0]["errors"] == 5


def test_explain_checks_the_advisory_id_before_scanning(incident, tmp_path):
    flyrc(tmp_path, incident.url)
    incident.clear_requests()
    done = run("explain", "cni-netlnk", "-t", "sim", home=tmp_path)
    assert done.returncode == 1
    assert "did you mean 'cni-netlink-eintr'" in done.stderr
    assert incident.requests == [], "a typo must not cost a scan"


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--scenario", "nope"],
        ["scan", "--format", "nope"],
        ["nope"],
        [],
        ["scan"],
        ["scan", "--source", "/no/such/file"],
        ["scan", "--url", "http://127.0.0.1:9", "-u", "admin"],
    ],
)
def test_bad_arguments_exit_1_with_a_message_and_no_traceback(args, tmp_path):
    done = run(*args, home=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stderr.startswith("fleet-guard")
    assert "Traceback" not in done.stderr


def test_demo_names_the_scenarios_when_one_is_unknown(tmp_path):
    done = run("demo", "--scenario", "incidnet", home=tmp_path)
    assert "did you mean 'incident'" in done.stderr and "healthy" in done.stderr


def test_version(tmp_path):
    from fleet_guard import __version__

    done = run("--version", home=tmp_path)
    assert done.returncode == 0
    assert done.stdout == f"fleet-guard {__version__}\n"


def test_a_closed_pipe_ends_quietly_with_the_status_kept(incident, tmp_path):
    """`| true` exits before the scan ends, so every write meets a closed pipe."""
    flyrc(tmp_path, incident.url)
    script = (
        f"{sys.executable} -m fleet_guard.cli scan -t sim --format json | true; "
        'echo "status=${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.stdout.strip() == "status=2"


def on_a_terminal(*args: str, home: Path, env: dict[str, str]) -> str:
    """stdout on a pseudo-terminal, as a person at a shell sees it."""
    import pty

    leader, follower = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "fleet_guard.cli", *args],
            stdout=follower,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            timeout=120,
            env={**os.environ, "HOME": str(home), "TERM": "xterm", **env},
            check=False,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_not_with_no_color(incident, tmp_path):
    flyrc(tmp_path, incident.url)
    coloured = on_a_terminal("workers", "-t", "sim", home=tmp_path, env={"NO_COLOR": ""})
    assert ANSI.search(coloured) and "w-1" in coloured
    plain = on_a_terminal("workers", "-t", "sim", home=tmp_path, env={"NO_COLOR": "1"})
    assert not ANSI.search(plain) and "w-1" in plain

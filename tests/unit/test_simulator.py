"""The simulator must behave like the ATC where clients go wrong; these tests pin that down.

Everything goes over real HTTP on loopback (requests, or raw sockets where the bytes on the
wire are the point). Every network call has a timeout so a regression fails instead of hanging.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fleet_guard.simulator import SCENARIO_NAMES, Simulator, load_scenario
from fleet_guard.simulator.errors import ScenarioError

TIMEOUT = 5
SCOPE = "openid profile email federated:id groups"
EINTR = "interrupted system call"


def login(url: str, username: str, password: str) -> str:
    response = requests.post(
        f"{url}/sky/issuer/token",
        auth=("fly", "Zmx5"),
        data={"grant_type": "password", "username": username, "password": password, "scope": SCOPE},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def incident() -> Iterator[Simulator]:
    """Read-only tests share one simulator; tests that change state start their own."""
    with Simulator(load_scenario("incident"), hold_seconds=10) as sim:
        yield sim


@pytest.fixture(scope="module")
def admin(incident: Simulator) -> dict[str, str]:
    return bearer(login(incident.url, "admin", "admin-pass"))


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    with Simulator(load_scenario("incident"), hold_seconds=10) as sim:
        yield sim


def write_scenario(tmp_path: Path, extra: dict[str, Any]) -> Path:
    base: dict[str, Any] = {
        "info": {"version": "7.13.2", "worker_version": "2.5", "external_url": "https://ci.test"},
        "users": [
            {"username": "admin", "password": "pw", "teams": {"main": ["owner"]}},
            {"username": "dev", "password": "pw", "teams": {"platform": ["member"]}},
        ],
        "workers": [
            {"name": "g-1"},
            {"name": "p-1", "team": "platform"},
            {"name": "o-1", "team": "oss"},
        ],
    }
    base.update(extra)
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(base))
    return path


# -- raw HTTP, for the bytes on the wire -------------------------------------------------------


class RawResponse:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def chunk(self) -> bytes:
        """One transfer chunk; b"" for the terminating chunk or EOF."""
        size_line = self.file.readline()
        if not size_line:
            return b""
        size = int(size_line.strip() or b"0", 16)
        data = self.file.read(size) if size else b""
        self.file.readline()
        return data

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def raw_get(url: str, path: str, headers: dict[str, str] | None = None) -> RawResponse:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return RawResponse(sock)


def read_until_end(response: RawResponse, *, gzipped: bool) -> str:
    """Decodes chunks as they come until the SSE `end` event; never waits for EOF."""
    decoder = zlib.decompressobj(31) if gzipped else None
    text = ""
    while "event: end\ndata\n\n" not in text:
        data = response.chunk()
        assert data, f"stream stopped before `end`: {text[-200:]!r}"
        text += (decoder.decompress(data) if decoder else data).decode()
    return text


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.strip("\n").split("\n\n"):
        event: dict[str, str] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            event[key] = value
        events.append(event)
    return events


# -- scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_every_shipped_scenario_loads_and_serves(name: str) -> None:
    scenario = load_scenario(name)
    assert set(scenario.users) == {"admin", "operator", "viewer"}
    assert scenario.users["admin"].is_admin and not scenario.users["operator"].is_admin
    assert [t.token for t in scenario.tokens] == ["static-token-for-tests"]
    assert scenario.workers and scenario.builds
    with Simulator(scenario) as sim:
        info = requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)
        assert info.status_code == 200
        assert info.json()["version"] == scenario.version
        workers = requests.get(
            f"{sim.url}/api/v1/workers", headers=bearer("static-token-for-tests"), timeout=TIMEOUT
        )
        assert {w["name"] for w in workers.json()} == set(scenario.workers)


def test_shipped_scenario_names() -> None:
    assert set(SCENARIO_NAMES) == {
        "incident",
        "healthy",
        "false-alarms",
        "mixed-states",
        "upgrade-in-progress",
        "after-the-fix",
        "eintr-after-fix",
        "external-workers",
        "custom-bundles",
    }


def _eintr_workers(scenario_name: str, window: int = 86400) -> dict[int, str]:
    """Build id -> worker for CNI EINTR errors in the window, attributed by origin id."""
    scenario = load_scenario(scenario_name)
    found = {}
    for build in scenario.builds.values():
        if not build.start_time or build.start_time < scenario.now - window:
            continue
        selected: dict[str, str] = {}
        for event in build.events:
            assert isinstance(event, dict)
            data = event["data"]
            if event["event"] == "selected-worker":
                selected[data["origin"]["id"]] = data["selected_worker"]
            message = data.get("message", "")
            if event["event"] == "error" and "cni net setup" in message and EINTR in message:
                found[build.id] = selected[data["origin"]["id"]]
    return found


def test_incident_facts() -> None:
    scenario = load_scenario("incident")
    assert scenario.version == "7.12.0" and scenario.external_url == "https://ci.example.com"
    assert list(scenario.workers) == ["w-0", "w-1", "w-2", "w-3", "w-4"]
    assert {w.state for w in scenario.workers.values()} == {"running"}
    assert scenario.workers["w-3"].team == "platform"
    eintr = _eintr_workers("incident")
    assert set(eintr.values()) == {"w-1", "w-3"}
    assert len(eintr) == 10
    assert {scenario.builds[i].team for i in eintr} == {"platform", "oss"}
    assert all(scenario.builds[i].status == "errored" for i in eintr)
    # The old EINTR build on w-0 only shows up with a too-wide window.
    assert _eintr_workers("incident", window=2 * 86400)[979] == "w-0"
    rerun = scenario.builds[1043]
    assert rerun.rerun_of is scenario.builds[1041] and rerun.name == "14.1"
    assert len(scenario.builds) == 214


def test_look_alike_scenarios_have_no_cni_eintr() -> None:
    assert _eintr_workers("healthy") == {}
    assert _eintr_workers("false-alarms") == {}


def test_loader_rejects_typos(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown keys"):
        load_scenario(write_scenario(tmp_path, {"wrokers": []}))
    bad_worker = {"builds": [{"id": 1, "team": "main", "steps": [{"task": "t", "worker": "nope"}]}]}
    with pytest.raises(ScenarioError, match="unknown worker"):
        load_scenario(write_scenario(tmp_path, bad_worker))
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario("no-such-scenario")


# -- token endpoint ----------------------------------------------------------------------------


def test_token_grant_success_gives_opaque_token(incident: Simulator) -> None:
    before = int(time.time())
    response = requests.post(
        f"{incident.url}/sky/issuer/token",
        data={
            "grant_type": "password",
            "username": "viewer",
            "password": "viewer-pass",
            "scope": SCOPE,
            "client_id": "fly",
            "client_secret": "Zmx5",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    token = body["access_token"]
    assert len(token) == 38 and "=" not in token
    expiry = struct.unpack("<Q", base64.b64decode(token + "==")[20:28])[0]
    assert before + 86399 <= expiry <= int(time.time()) + 86399
    assert body["id_token"].count(".") == 2
    ok = requests.get(f"{incident.url}/api/v1/user", headers=bearer(token), timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.json()["user_id"] == "viewer"
    rejected = requests.get(
        f"{incident.url}/api/v1/user", headers=bearer(body["id_token"]), timeout=TIMEOUT
    )
    assert rejected.status_code == 401 and rejected.text == "not authorized"


@pytest.mark.parametrize(
    ("changes", "auth", "status", "expected"),
    [
        ({"scope": "profile email"}, ("fly", "Zmx5"), 400, "invalid_request"),
        ({"password": "wrong"}, ("fly", "Zmx5"), 401, "access_denied"),
        ({"username": "nobody"}, ("fly", "Zmx5"), 401, "access_denied"),
        ({}, ("fly", "wrong"), 401, "invalid_client"),
        ({}, None, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("fly", "Zmx5"), 400, "unsupported_grant_type"),
    ],
)
def test_token_grant_errors(
    incident: Simulator,
    changes: dict[str, str],
    auth: tuple[str, str] | None,
    status: int,
    expected: str,
) -> None:
    form = {"grant_type": "password", "username": "admin", "password": "admin-pass"}
    form["scope"] = SCOPE
    form.update(changes)
    response = requests.post(
        f"{incident.url}/sky/issuer/token", auth=auth, data=form, timeout=TIMEOUT
    )
    assert response.status_code == status
    assert response.json()["error"] == expected
    if expected == "access_denied":
        assert response.json() == {
            "error": "access_denied",
            "error_description": "Invalid username or password",
        }
    if expected == "invalid_request":
        assert response.json()["error_description"] == 'Missing required scope(s) ["openid"].'


# -- authentication and authorization ----------------------------------------------------------


def test_info_is_public_but_a_bad_token_is_401(incident: Simulator) -> None:
    url = f"{incident.url}/api/v1/info"
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    bad = requests.get(url, headers=bearer("not-a-token"), timeout=TIMEOUT)
    assert (bad.status_code, bad.text) == (401, "not authorized")
    assert bad.headers["Content-Type"].startswith("text/plain")
    assert bad.headers["X-Concourse-Version"] == "7.12.0"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer  static-token-for-tests",
        "Bearer static-token-for-tests ",
        "Basic YWRtaW46YWRtaW4tcGFzcw==",
        "Token static-token-for-tests",
    ],
)
def test_malformed_authorization_is_401(incident: Simulator, header: str) -> None:
    response = requests.get(
        f"{incident.url}/api/v1/workers", headers={"Authorization": header}, timeout=TIMEOUT
    )
    assert (response.status_code, response.text) == (401, "not authorized")


def test_scheme_is_case_insensitive(incident: Simulator) -> None:
    response = requests.get(
        f"{incident.url}/api/v1/workers",
        headers={"Authorization": "bEaReR static-token-for-tests"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200


def test_workers_need_a_token(incident: Simulator) -> None:
    response = requests.get(f"{incident.url}/api/v1/workers", timeout=TIMEOUT)
    assert (response.status_code, response.text) == (401, "not authorized")


def test_user_endpoint(incident: Simulator, admin: dict[str, str]) -> None:
    me = requests.get(f"{incident.url}/api/v1/user", headers=admin, timeout=TIMEOUT).json()
    assert me["is_admin"] is True and me["teams"] == {"main": ["owner"]}
    assert list(me) == [
        "sub",
        "name",
        "user_id",
        "user_name",
        "email",
        "is_admin",
        "is_system",
        "teams",
        "connector",
        "display_user_id",
    ]
    operator = bearer(login(incident.url, "operator", "operator-pass"))
    other = requests.get(f"{incident.url}/api/v1/user", headers=operator, timeout=TIMEOUT).json()
    assert other["is_admin"] is False
    assert other["teams"] == {"platform": ["member"], "oss": ["pipeline-operator"]}


def test_non_admins_see_global_and_own_team_workers(tmp_path: Path) -> None:
    with Simulator(load_scenario(write_scenario(tmp_path, {}))) as sim:
        dev = bearer(login(sim.url, "dev", "pw"))
        names = {w["name"] for w in get_json(sim.url + "/api/v1/workers", dev)}
        assert names == {"g-1", "p-1"}
        admin = bearer(login(sim.url, "admin", "pw"))
        assert len(get_json(sim.url + "/api/v1/workers", admin)) == 3


def get_json(url: str, headers: dict[str, str]) -> Any:
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_expired_tokens_get_401(fresh: Simulator) -> None:
    token = login(fresh.url, "admin", "admin-pass")
    assert requests.get(f"{fresh.url}/api/v1/workers", headers=bearer(token), timeout=5).ok
    fresh.expire_tokens()
    for value in (token, "static-token-for-tests"):
        response = requests.get(f"{fresh.url}/api/v1/workers", headers=bearer(value), timeout=5)
        assert response.status_code == 401
    assert (
        requests.get(f"{fresh.url}/api/v1/info", headers=bearer(token), timeout=5).status_code
        == 401
    )
    again = login(fresh.url, "admin", "admin-pass")
    assert requests.get(f"{fresh.url}/api/v1/workers", headers=bearer(again), timeout=5).ok


def test_short_token_ttl_and_expired_static_token(tmp_path: Path) -> None:
    extra = {
        "auth": {"token_ttl": 1},
        "tokens": [{"token": "old", "user": "admin", "expires_in": -5}],
    }
    with Simulator(load_scenario(write_scenario(tmp_path, extra))) as sim:
        assert (
            requests.get(f"{sim.url}/api/v1/user", headers=bearer("old"), timeout=5).status_code
            == 401
        )
        response = requests.post(
            f"{sim.url}/sky/issuer/token",
            auth=("fly", "Zmx5"),
            data={"grant_type": "password", "username": "dev", "password": "pw", "scope": "openid"},
            timeout=TIMEOUT,
        )
        assert response.json()["expires_in"] == 1
        token = response.json()["access_token"]
        time.sleep(1.1)
        assert (
            requests.get(f"{sim.url}/api/v1/user", headers=bearer(token), timeout=5).status_code
            == 401
        )


# -- build lists and paging --------------------------------------------------------------------


def follow_pages(url: str, path: str, headers: dict[str, str], limit: int) -> list[list[int]]:
    """Pages of build IDs, re-reading only `to`/`limit` from each Link as fly does."""
    pages: list[list[int]] = []
    params: dict[str, str] = {"limit": str(limit)}
    while True:
        response = requests.get(url + path, params=params, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 200
        pages.append([b["id"] for b in response.json()])
        if "next" not in response.links:
            return pages
        link = urlsplit(response.links["next"]["url"])
        assert f"{link.scheme}://{link.netloc}" == "https://ci.example.com"
        assert link.path == path
        query = parse_qs(link.query)
        assert set(query) == {"to", "limit"}
        params = {"to": query["to"][0], "limit": query["limit"][0]}


def test_paging_follows_next_links_over_every_build(
    incident: Simulator, admin: dict[str, str]
) -> None:
    pages = follow_pages(incident.url, "/api/v1/builds", admin, 100)
    assert [len(p) for p in pages] == [100, 100, 14]
    ids = [i for page in pages for i in page]
    assert len(ids) == len(set(ids)) == 214
    # The rerun sorts right before the build it reran, not by its own id.
    assert ids.index(1043) + 1 == ids.index(1041)
    assert ids[0] == 1303 and pages[0][-1] == 1122 and pages[1][0] == 1121


def test_link_headers_and_rel_names(incident: Simulator, admin: dict[str, str]) -> None:
    first = requests.get(f"{incident.url}/api/v1/builds", headers=admin, timeout=TIMEOUT)
    assert len(first.json()) == 100  # default limit
    assert (
        first.headers["Link"]
        == '<https://ci.example.com/api/v1/builds?to=1121&limit=100>; rel="next"'
    )
    second = requests.get(
        f"{incident.url}/api/v1/builds", params={"to": 1121, "limit": 5}, headers=admin, timeout=5
    )
    assert (
        second.links["previous"]["url"] == "https://ci.example.com/api/v1/builds?from=1122&limit=5"
    )
    # `to` is the next existing older build (IDs have gaps), not oldest - 1.
    assert [b["id"] for b in second.json()] == [1121, 1120, 1118, 1116, 1114]
    assert second.links["next"]["url"] == "https://ci.example.com/api/v1/builds?to=1112&limit=5"
    assert "prev" not in second.links
    newer = requests.get(
        f"{incident.url}/api/v1/builds", params={"from": 1122, "limit": 3}, headers=admin, timeout=5
    )
    assert [b["id"] for b in newer.json()] == [1126, 1124, 1122]


def test_from_and_to_together_come_back_oldest_first(
    incident: Simulator, admin: dict[str, str]
) -> None:
    params = {"from": 1040, "to": 1044}
    response = requests.get(
        f"{incident.url}/api/v1/builds", params=params, headers=admin, timeout=5
    )
    assert [b["id"] for b in response.json()] == [1040, 1041, 1043, 1042, 1044]
    bad = {"from": 10, "to": 5}
    assert (
        requests.get(
            f"{incident.url}/api/v1/builds", params=bad, headers=admin, timeout=5
        ).status_code
        == 500
    )
    team = f"{incident.url}/api/v1/teams/platform/builds"
    assert requests.get(team, params=bad, headers=admin, timeout=5).status_code == 404


def test_build_visibility(incident: Simulator) -> None:
    anonymous = requests.get(f"{incident.url}/api/v1/builds", params={"limit": 300}, timeout=5)
    assert {b["pipeline_name"] for b in anonymous.json()} == {"oss-lib"}  # the public pipeline
    team = requests.get(f"{incident.url}/api/v1/teams/oss/builds", timeout=TIMEOUT)
    assert team.status_code == 401
    unknown = requests.get(
        f"{incident.url}/api/v1/teams/nope/builds",
        headers=bearer("static-token-for-tests"),
        timeout=5,
    )
    assert (unknown.status_code, unknown.text) == (404, "")


def test_build_json_matches_the_presenter(incident: Simulator, admin: dict[str, str]) -> None:
    builds = requests.get(
        f"{incident.url}/api/v1/builds", params={"limit": 300}, headers=admin, timeout=5
    ).json()
    by_id = {b["id"]: b for b in builds}
    assert list(by_id[1043]) == [
        "id", "team_name", "name", "status", "api_url", "job_name", "pipeline_id",
        "pipeline_name", "start_time", "end_time", "rerun_number", "rerun_of", "created_by",
    ]  # fmt: skip
    assert by_id[1043]["rerun_of"] == {"id": 1041, "name": "14"}
    assert by_id[1251]["name"] == "check" and "job_name" not in by_id[1251]
    assert "start_time" not in by_id[1301] and by_id[1301]["status"] == "pending"
    assert by_id[1061]["pipeline_instance_vars"] == {"env": "prod"}
    assert "reap_time" in by_id[1001]
    assert "job_name" not in by_id[1211] and "pipeline_id" not in by_id[1211]
    window = [b for b in builds if b.get("start_time", 0) >= time.time() - 86400]
    assert len(window) == 171


# -- event streams -----------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [True, False])
def test_event_stream_wire_format_and_connection_stays_open(
    incident: Simulator, gzipped: bool
) -> None:
    headers = {"Authorization": "Bearer static-token-for-tests"}
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    response = raw_get(incident.url, "/api/v1/builds/1041/events", headers)
    try:
        assert response.status == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-atc-stream-version"] == "2.0"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers.get("content-encoding") == ("gzip" if gzipped else None)
        text = read_until_end(response, gzipped=gzipped)
        assert text.endswith("\n\nid: 20\nevent: end\ndata\n\n")
        events = parse_sse(text)
        assert events[0]["id"] == "0" and events[0]["event"] == "event"
        envelope = json.loads(events[-3]["data"])
        assert envelope["event"] == "error" and list(envelope) == [
            "data",
            "event",
            "version",
            "event_id",
        ]
        assert envelope["event_id"] == "18" and EINTR in envelope["data"]["message"]
        # The server keeps the socket open after `end`: a read times out instead of EOF.
        response.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            response.file.read1(1)
    finally:
        response.close()


def test_requests_client_stopping_at_end_works(incident: Simulator) -> None:
    started = time.monotonic()
    with requests.get(
        f"{incident.url}/api/v1/builds/1101/events",
        headers=bearer("static-token-for-tests"),
        stream=True,
        timeout=TIMEOUT,
    ) as response:
        assert response.headers["Content-Encoding"] == "gzip"  # requests asks for gzip
        lines = []
        for line in response.iter_lines():
            lines.append(line.decode())
            if line == b"event: end":
                break
    assert time.monotonic() - started < 2
    messages = [json.loads(x[6:])["data"] for x in lines if x.startswith("data: {")]
    error = next(m for m in messages if "message" in m)
    assert error["message"].startswith("starting task: network add")  # no worker prefix
    selected = [
        m for m in messages if m.get("origin") == error["origin"] and "selected_worker" in m
    ]
    assert selected[-1]["selected_worker"] == "w-3"


def test_stream_is_cut_without_terminating_chunk_after_hold() -> None:
    with Simulator(load_scenario("incident"), hold_seconds=0.3) as sim:
        response = raw_get(
            sim.url,
            "/api/v1/builds/1021/events",
            {"Authorization": "Bearer static-token-for-tests"},
        )
        try:
            read_until_end(response, gzipped=False)
            started = time.monotonic()
            assert response.file.readline() == b""  # EOF, not "0\r\n"
            assert time.monotonic() - started < 3
        finally:
            response.close()


def test_running_build_never_sends_end(incident: Simulator) -> None:
    response = raw_get(
        incident.url,
        "/api/v1/builds/1303/events",
        {"Authorization": "Bearer static-token-for-tests"},
    )
    try:
        text = response.chunk().decode()
        response.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            while True:
                text += response.chunk().decode()
        assert "event: end" not in text and '"status":"started"' in text
    finally:
        response.close()


def test_reaped_unknown_and_resumed_streams(incident: Simulator) -> None:
    auth = {"Authorization": "Bearer static-token-for-tests"}
    reaped = raw_get(incident.url, "/api/v1/builds/1001/events", auth)
    try:
        assert read_until_end(reaped, gzipped=False) == "id: 0\nevent: end\ndata\n\n"
    finally:
        reaped.close()
    resumed = raw_get(incident.url, "/api/v1/builds/1041/events", {**auth, "Last-Event-ID": "17"})
    try:
        events = parse_sse(read_until_end(resumed, gzipped=False))
        assert [e["id"] for e in events] == ["18", "19", "20"]
    finally:
        resumed.close()
    unknown = requests.get(f"{incident.url}/api/v1/builds/999999/events", headers=auth, timeout=5)
    assert (unknown.status_code, unknown.text) == (404, "")
    assert (
        requests.get(f"{incident.url}/api/v1/builds/x/events", headers=auth, timeout=5).status_code
        == 400
    )
    private = requests.get(f"{incident.url}/api/v1/builds/1041/events", timeout=TIMEOUT)
    assert (private.status_code, private.text) == (401, "not authorized")


def test_event_json_is_go_encoded(incident: Simulator) -> None:
    response = raw_get(
        incident.url,
        "/api/v1/builds/1221/events",
        {"Authorization": "Bearer static-token-for-tests"},
    )
    try:
        text = read_until_end(response, gzipped=False)
    finally:
        response.close()
    assert "45622-\\u003e10.0.3.7" in text and "->" not in text


def test_huge_log_and_event_delay(tmp_path: Path) -> None:
    extra = {
        "builds": [
            {"id": 1, "team": "main", "started_ago": 60, "worker": "g-1",
             "steps": [{"task": "spam", "log_bytes": 2_000_000}]},
            {"id": 2, "team": "main", "started_ago": 60, "worker": "g-1", "event_delay": 0.3,
             "steps": [{"task": "slow", "logs": ["a\n", "b\n", "c\n"]}]},
        ]
    }  # fmt: skip
    with Simulator(load_scenario(write_scenario(tmp_path, extra)), hold_seconds=5) as sim:
        token = login(sim.url, "admin", "pw")
        with requests.get(
            f"{sim.url}/api/v1/builds/1/events", headers=bearer(token), stream=True, timeout=5
        ) as response:
            payload = 0
            for line in response.iter_lines():
                if line.startswith(b"data: {"):
                    data = json.loads(line[6:])
                    if data["event"] == "log":
                        payload += len(data["data"]["payload"])
                if line == b"event: end":
                    break
        assert payload == 2_000_000
        response2 = raw_get(
            sim.url, "/api/v1/builds/2/events", {**bearer(token), "Accept-Encoding": "gzip"}
        )
        try:
            decoder = zlib.decompressobj(31)
            # Z_SYNC_FLUSH per event: each chunk decompresses to whole events on its own.
            first = decoder.decompress(response2.chunk()).decode()
            started = time.monotonic()
            second = decoder.decompress(response2.chunk()).decode()
            assert first.startswith("id: 0\n") and first.endswith("\n\n")
            assert second.startswith("id: 1\n") and second.endswith("\n\n")
            assert time.monotonic() - started >= 0.2  # paced by event_delay
        finally:
            response2.close()


# -- remediation -------------------------------------------------------------------------------


def put(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.put(url, headers=headers or {}, timeout=TIMEOUT)


def test_land_retire_prune_effects(fresh: Simulator) -> None:
    admin = bearer("static-token-for-tests")
    workers = fresh.scenario.workers
    base = f"{fresh.url}/api/v1/workers"
    pruned = put(f"{base}/w-0/prune", admin)
    assert pruned.status_code == 400
    assert pruned.json() == {"stderr": "cannot prune running worker"}
    assert put(f"{base}/w-1/land", admin).status_code == 200
    assert workers["w-1"].state == "landing"
    assert put(f"{base}/w-2/retire", admin).status_code == 200
    assert workers["w-2"].state == "retiring"
    done = put(f"{base}/w-1/prune", admin)
    assert (done.status_code, done.text) == (200, "")
    assert "w-1" not in workers
    missing = put(f"{base}/w-1/land", admin)
    assert (missing.status_code, missing.text) == (404, "")
    listed = {w["name"] for w in get_json(base, admin)}
    assert listed == {"w-0", "w-2", "w-3", "w-4"}


def test_landed_stays_landed_and_landed_has_no_addr() -> None:
    with Simulator(load_scenario("mixed-states")) as sim:
        admin = bearer("static-token-for-tests")
        assert put(f"{sim.url}/api/v1/workers/concourse-worker-5/land", admin).status_code == 200
        assert sim.scenario.workers["concourse-worker-5"].state == "landed"
        workers = {w["name"]: w for w in get_json(f"{sim.url}/api/v1/workers", admin)}
        assert workers["concourse-worker-5"]["addr"] == ""
        assert workers["win-worker-1"]["resource_types"] is None
        assert workers["old-worker-1"]["version"] == "2.4"
        assert {w["state"] for w in workers.values()} == {"running", "stalled", "landing", "landed"}
        assert put(f"{sim.url}/api/v1/workers/concourse-worker-3/prune", admin).status_code == 200


@pytest.mark.parametrize(
    ("user", "worker", "status"),
    [
        ("operator", "w-3", 200),  # member of the worker's team
        ("operator", "w-1", 403),  # global workers are admin-only
        ("operator", "w-4", 403),  # only pipeline-operator on oss
        ("viewer", "w-3", 403),
        ("operator", "nope", 404),
        (None, "w-3", 401),
    ],
)
def test_land_authorization(fresh: Simulator, user: str | None, worker: str, status: int) -> None:
    headers = bearer(login(fresh.url, user, f"{user}-pass")) if user else {}
    response = put(f"{fresh.url}/api/v1/workers/{worker}/land", headers)
    assert response.status_code == status
    assert response.text == {401: "not authorized", 403: "forbidden"}.get(status, "")
    expected = "landing" if status == 200 else "running"
    if worker in fresh.scenario.workers:
        assert fresh.scenario.workers[worker].state == expected


def test_rerun(fresh: Simulator) -> None:
    operator = bearer(login(fresh.url, "operator", "operator-pass"))
    viewer = bearer(login(fresh.url, "viewer", "viewer-pass"))
    url = f"{fresh.url}/api/v1/teams/oss/pipelines/oss-lib/jobs/unit/builds/13"
    assert requests.post(url, headers=viewer, timeout=TIMEOUT).status_code == 403
    assert requests.post(url, timeout=TIMEOUT).status_code == 401
    response = requests.post(url, headers=operator, timeout=TIMEOUT)
    assert response.status_code == 200
    build = response.json()
    assert build["name"] == "13.1" and build["status"] == "pending"
    assert build["rerun_of"] == {"id": 1021, "name": "13"} and build["rerun_number"] == 1
    assert build["created_by"] == "operator" and build["id"] == 1304
    second = requests.post(url, headers=operator, timeout=TIMEOUT).json()
    assert second["name"] == "13.2"
    ids = [b["id"] for b in get_json(f"{fresh.url}/api/v1/teams/oss/builds?limit=300", operator)]
    assert ids.index(1305) + 2 == ids.index(1021) and ids.index(1304) + 1 == ids.index(1021)
    missing = f"{fresh.url}/api/v1/teams/oss/pipelines/oss-lib/jobs/unit/builds/9999"
    assert requests.post(missing, headers=operator, timeout=TIMEOUT).status_code == 404


def test_rerun_of_instanced_pipeline_needs_vars(fresh: Simulator) -> None:
    admin = bearer("static-token-for-tests")
    url = f"{fresh.url}/api/v1/teams/platform/pipelines/release/jobs/deploy/builds/1"
    assert requests.post(url, headers=admin, timeout=TIMEOUT).status_code == 404
    response = requests.post(url, params={"vars.env": '"prod"'}, headers=admin, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["rerun_of"]["id"] == 1061


# -- recording and faults ----------------------------------------------------------------------


def test_requests_and_mutations_are_recorded(fresh: Simulator) -> None:
    token = login(fresh.url, "operator", "operator-pass")
    get_json(f"{fresh.url}/api/v1/workers", bearer(token))
    assert fresh.mutations == []
    put(f"{fresh.url}/api/v1/workers/w-1/land", bearer(token))  # forbidden, still recorded
    [mutation] = fresh.mutations
    assert (mutation.method, mutation.path, mutation.status) == (
        "PUT",
        "/api/v1/workers/w-1/land",
        403,
    )
    assert mutation.authorized and mutation.user == "operator"
    recorded = [(r.method, r.path, r.status) for r in fresh.requests]
    assert recorded == [
        ("POST", "/sky/issuer/token", 200),
        ("GET", "/api/v1/workers", 200),
        ("PUT", "/api/v1/workers/w-1/land", 403),
    ]
    over_http = requests.get(f"{fresh.url}/_sim/mutations", timeout=TIMEOUT).json()
    assert [(m["method"], m["path"], m["status"]) for m in over_http] == [
        ("PUT", "/api/v1/workers/w-1/land", 403)
    ]
    assert len(requests.get(f"{fresh.url}/_sim/requests", timeout=TIMEOUT).json()) == 3


def test_faults_from_the_scenario(tmp_path: Path) -> None:
    extra = {
        "faults": [
            {"path": "/api/v1/workers", "status": 503, "times": 2},
            {"path": "/api/v1/info", "status": 429, "retry_after": 1, "times": 1},
        ]
    }
    with Simulator(load_scenario(write_scenario(tmp_path, extra))) as sim:
        token = bearer(login(sim.url, "admin", "pw"))
        statuses = [
            requests.get(f"{sim.url}/api/v1/workers", headers=token, timeout=5).status_code
            for _ in range(3)
        ]
        assert statuses == [503, 503, 200]
        throttled = requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        assert requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT).status_code == 200
        assert [r.fault for r in sim.requests[1:4]] == [True, True, False]
        sim.add_fault({"path": "/api/v1/builds/*/events", "close": True})
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{sim.url}/api/v1/builds/1/events", headers=token, timeout=5)


# -- TLS and the command line ------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    with Simulator(load_scenario("healthy"), tls=(str(cert), str(key))) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        response = requests.get(f"{sim.url}/api/v1/info", verify=str(cert), timeout=TIMEOUT)
        assert response.json()["version"] == "7.13.2"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sim.url}/api/v1/info", timeout=TIMEOUT)


def test_command_line(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet_guard.simulator", "healthy", "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert ready.read_text().strip() == url
        assert requests.get(f"{url}/api/v1/info", timeout=TIMEOUT).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

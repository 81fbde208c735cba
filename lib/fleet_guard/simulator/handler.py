"""The HTTP side of the simulated ATC: routing, auth checks in the ATC's order, and responses.

Each route reproduces the wrapper chain of `atc/wrappa/api_auth_wrappa.go` (401 before 403
before 404, bodies plain text or empty) because clients break on exactly those details.
Streaming lives in `stream.py`; simulator-only introspection lives under `/_sim/`.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote_plus, unquote, urlencode, urlsplit

from fleet_guard.simulator.access import Access
from fleet_guard.simulator.dex import token_endpoint
from fleet_guard.simulator.errors import ScenarioError
from fleet_guard.simulator.loader import fault_from_json
from fleet_guard.simulator.model import Build, Pipeline
from fleet_guard.simulator.paging import RangeError, Result, paginate, parse_page
from fleet_guard.simulator.recorder import TOKEN_PATH, RecordedRequest
from fleet_guard.simulator.replies import TEXT, Reply, forbidden, json_reply, unauthorized
from fleet_guard.simulator.stream import accepts_gzip, stream_events
from fleet_guard.simulator.wire import go_json

if TYPE_CHECKING:
    from fleet_guard.simulator.server import SimServer

GZIP_MIN_SIZE = 1024  # gzhttp.DefaultMinSize: smaller API responses go out uncompressed
CHUNKING_THRESHOLD = 2048  # net/http switches to chunked encoding above this unflushed size

Params = dict[str, str]


def _instance_vars(query: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """atc.InstanceVarsFromQueryParams: `vars={json}` and/or `vars.a.b=<json>` patches."""
    result: dict[str, Any] = {}
    keys = sorted(k for k in query if k == "vars" or k.startswith("vars."))
    for key in keys:
        try:
            value = json.loads(query[key][0])
        except ValueError:
            raise Reply(400) from None
        if key == "vars":
            if not isinstance(value, dict):
                raise Reply(400)
            result.update(value)
            continue
        path = key.split(".")[1:]
        target = result
        for part in path[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise Reply(400)
            target = nxt
        target[path[-1]] = value
    return result or None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection gives its thread back after this
    server: SimServer

    # -- plumbing ------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def send_response(self, code: int, message: str | None = None) -> None:
        # The ATC (Go net/http) sends no Server header; Python's would reveal the simulator.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.req_path = url.path
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self._read_body()
        self.access = self.server.tokens.verify(self.headers.get("Authorization"))
        self.recorded = False
        if self.req_path.startswith("/_sim/"):
            self._answer(self._sim_route())
            return
        latency = self.server.scenario.stream.latency
        if latency and self.server.stopping.wait(latency):
            self.close_connection = True
            return
        fault = self.server.recorder.take_fault(self.command, self.req_path, self.query)
        self.fault = fault
        if fault is not None:
            if fault.delay and self.server.stopping.wait(fault.delay):
                self.close_connection = True
                return
            if fault.close:
                self._record(0, fault=True)
                self.close_connection = True
                return
            if fault.status is not None:
                headers = [("Retry-After", fault.retry_after)] if fault.retry_after else []
                headers += list(fault.headers.items())
                reply = Reply(fault.status, fault.body.encode(), fault.content_type, headers)
                if not fault.body:
                    reply.content_type = None
                if fault.drip or fault.truncate:
                    self._answer_badly(reply, drip=fault.drip, truncate=fault.truncate)
                    return
                self._answer(reply, fault=True)
                return
        answer: Reply | None
        try:
            answer = self._route()
        except Reply as raised:
            answer = raised
        if answer is not None:
            self._answer(answer)

    def _record(self, status: int, *, fault: bool = False) -> None:
        if self.recorded or self.req_path.startswith("/_sim/"):
            return
        self.recorded = True
        user = self.access.user.username if self.access.user else None
        self.server.recorder.record(
            RecordedRequest(
                method=self.command,
                path=self.req_path,
                query={k: list(v) for k, v in self.query.items()},
                status=status,
                authorized=self.access.authenticated,
                has_token=self.access.has_token,
                user=user,
                fault=fault,
            )
        )

    def _answer(self, reply: Reply, *, fault: bool = False) -> None:
        self._record(reply.status, fault=fault)
        body = reply.body
        headers = list(reply.headers)
        if reply.content_type:
            headers.append(("Content-Type", reply.content_type))
        if self.req_path.startswith("/api/v1"):
            headers.append(("X-Concourse-Version", self.server.scenario.version))
            headers.append(("Vary", "Accept-Encoding"))
            if len(body) >= GZIP_MIN_SIZE and accepts_gzip(self.headers.get("Accept-Encoding")):
                body = gzip.compress(body, mtime=0)
                headers.append(("Content-Encoding", "gzip"))
        self.send_response(reply.status)
        for name, value in headers:
            self.send_header(name, value)
        chunked = len(body) > CHUNKING_THRESHOLD
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if chunked:
            for start in range(0, len(body), 16384):
                part = body[start : start + 16384]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def _answer_badly(self, reply: Reply, *, drip: float, truncate: bool) -> None:
        """A reply announced whole, then sent a byte at a time, or only half of it."""
        self._record(reply.status, fault=True)
        self.close_connection = True
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        body = reply.body[: len(reply.body) // 2] if truncate else reply.body
        try:
            if not drip:
                self.wfile.write(body)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # hang up, as promised
                return
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                if self.server.stopping.wait(drip):
                    return
        except OSError:  # the client gave up, as it should
            return

    # -- routing -------------------------------------------------------------------------------

    def _route(self) -> Reply | None:
        path = self.req_path
        if path == TOKEN_PATH:
            return token_endpoint(
                self.server.scenario,
                self.server.tokens,
                method=self.command,
                body=self.body,
                query=self.query,
                authorization=self.headers.get("Authorization", ""),
            )
        method = "GET" if self.command == "HEAD" else self.command
        for route_method, pattern, func in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                return func(self, params)
        return Reply(404, b"404 page not found\n", TEXT)

    # -- auth helpers ----------------------------------------------------------------------------

    def _if_provided(self) -> None:
        if self.access.has_token and not self.access.authenticated:
            raise unauthorized()

    def _authenticated(self) -> Access:
        if not self.access.authenticated:
            raise unauthorized()
        return self.access

    # -- /api/v1 -----------------------------------------------------------------------------------

    def info(self, _: Params) -> Reply:
        self._if_provided()
        return json_reply(self.server.scenario.info)

    def user(self, _: Params) -> Reply:
        access = self._authenticated()
        if access.user is None:  # a system token has claims but no local user
            return json_reply({"sub": "", "is_admin": False, "is_system": True, "teams": {}})
        return json_reply(access.user.user_info())

    def workers(self, _: Params) -> Reply:
        access = self._authenticated()
        teams = access.team_names()
        with self.server.lock:
            visible = [
                w.to_json()
                for w in self.server.scenario.workers.values()
                if access.is_admin or access.system or not w.team or w.team in teams
            ]
        return json_reply(visible)

    def worker_action(self, params: Params) -> Reply:
        """checkWorkerTeamHandler, then land.go / retire.go / prune.go."""
        access = self._authenticated()
        name, action = params["name"], params["action"]
        with self.server.lock:
            workers = self.server.scenario.workers
            worker = workers.get(name)
            if not (access.system or access.is_admin):
                if worker is None:
                    return Reply(404)
                if not (worker.team and access.authorized(worker.team, "member")):
                    return forbidden()
            if worker is None:
                return Reply(404)
            if action == "land":
                if worker.state != "landed":
                    worker.state = "landing"
            elif action == "retire":
                worker.state = "retiring"
            else:
                if worker.state == "running":
                    return json_reply({"stderr": "cannot prune running worker"}, 400)
                del workers[name]
        return Reply(200)

    def delete_worker(self, params: Params) -> Reply:
        """delete.go's trap: unknown worker is 500, and a caller without rights gets 200."""
        access = self._authenticated()
        with self.server.lock:
            workers = self.server.scenario.workers
            worker = workers.get(params["name"])
            if worker is None:
                return Reply(500)
            allowed = bool(worker.team) and access.authorized(worker.team, "member")
            if access.is_admin or access.system or allowed:
                del workers[params["name"]]
        return Reply(200)

    def _page_reply(
        self,
        builds: list[Build],
        link_base: str,
        extra: str = "",
        *,
        range_status: int,
        presorted: bool = False,
    ) -> Reply:
        page = parse_page(self.query)
        try:
            result: Result = paginate(builds, page, presorted=presorted)
        except RangeError:
            return Reply(range_status)
        headers: list[tuple[str, str]] = []
        base = self.server.scenario.external_url + link_base
        suffix = f"&{extra}" if extra else ""
        if result.older_to is not None:
            url = f"{base}?to={result.older_to}&limit={page.limit}{suffix}"
            headers.append(("Link", f'<{url}>; rel="next"'))
        if result.newer_from is not None:
            url = f"{base}?from={result.newer_from}&limit={page.limit}{suffix}"
            headers.append(("Link", f'<{url}>; rel="previous"'))
        return json_reply([b.to_json() for b in result.builds], headers=headers)

    def list_builds(self, _: Params) -> Reply:
        self._if_provided()
        access = self.access
        teams = access.team_names()
        with self.server.lock:
            every = self.server.scenario.builds_sorted()
            visible = (
                every if access.is_admin else [b for b in every if b.public or b.team in teams]
            )
            return self._page_reply(visible, "/api/v1/builds", range_status=500, presorted=True)

    def team_builds(self, params: Params) -> Reply:
        """Any authenticated user may list any team's builds in 7.13 (no membership check)."""
        self._authenticated()
        team = params["team"]
        with self.server.lock:
            if team not in self.server.scenario.teams:
                return Reply(404)
            builds = [b for b in self.server.scenario.builds_sorted() if b.team == team]
            return self._page_reply(
                builds, f"/api/v1/teams/{team}/builds", range_status=404, presorted=True
            )

    def _find_pipeline(self, team: str, name: str) -> Pipeline:
        instance_vars = _instance_vars(self.query)
        scenario = self.server.scenario
        if team not in scenario.teams:
            raise Reply(404)
        for pipeline in scenario.pipelines:
            if (pipeline.team, pipeline.name) == (team, name) and (
                pipeline.instance_vars or None
            ) == instance_vars:
                return pipeline
        raise Reply(404)

    def _job_builds_of(self, pipeline: Pipeline, job: str) -> list[Build]:
        builds = [
            b
            for b in self.server.scenario.builds.values()
            if b.pipeline is pipeline and b.job == job
        ]
        if not builds:
            raise Reply(404)
        return builds

    def job_builds(self, params: Params) -> Reply:
        """checkPipelineAccessHandler: 400 bad vars, 404 unknown, then public or authorized."""
        with self.server.lock:
            pipeline = self._find_pipeline(params["team"], params["pipeline"])
            if not (pipeline.public or self.access.authorized(pipeline.team)):
                raise forbidden() if self.access.authenticated else unauthorized()
            builds = self._job_builds_of(pipeline, params["job"])
            extra = ""
            if pipeline.instance_vars:
                # url.Values.Encode(): sorted keys, QueryEscape'd JSON values.
                extra = urlencode(
                    sorted((f"vars.{k}", go_json(v)) for k, v in pipeline.instance_vars.items()),
                    quote_via=quote_plus,
                )
            base = f"/api/v1/teams/{params['team']}/pipelines/{params['pipeline']}"
            return self._page_reply(
                builds, f"{base}/jobs/{params['job']}/builds", extra, range_status=404
            )

    def rerun(self, params: Params) -> Reply:
        """RerunJobBuild: pipeline-operator on the team, then 404s, then a pending `N.k` build."""
        access = self._authenticated()
        if not access.authorized(params["team"], "pipeline-operator"):
            return forbidden()
        with self.server.lock:
            pipeline = self._find_pipeline(params["team"], params["pipeline"])
            builds = self._job_builds_of(pipeline, params["job"])
            target = next((b for b in builds if b.name == params["name"]), None)
            if target is None:
                return Reply(404)
            if target.start_time is None:  # never started, so its inputs were never ready
                return Reply(500)
            original = target.rerun_of or target
            scenario = self.server.scenario
            number = 1 + sum(1 for b in scenario.builds.values() if b.rerun_of is original)
            build = Build(
                id=max(scenario.builds) + 1,
                team=original.team,
                name=f"{original.name}.{number}",
                status="pending",
                job=original.job,
                pipeline=original.pipeline,
                rerun_of=original,
                rerun_number=number,
                created_by=access.user.username if access.user else None,
            )
            scenario.builds[build.id] = build
            return json_reply(build.to_json())

    def _build_for_read(self, params: Params, *, allow_private_job: bool) -> Build:
        """checkBuildReadAccessHandler: 400, 404, then team role or public pipeline (and job)."""
        raw = params["id"]
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise Reply(400)
        with self.server.lock:
            build = self.server.scenario.builds.get(int(raw))
        if build is None:
            raise Reply(404)
        access = self.access
        allowed = access.authenticated and access.authorized(build.team)
        if not allowed and build.public:
            allowed = allow_private_job or build.job_public
        if not allowed:
            raise forbidden() if access.authenticated else unauthorized()
        return build

    def get_build(self, params: Params) -> Reply:
        build = self._build_for_read(params, allow_private_job=True)
        return json_reply(build.to_json(with_comment=True))

    def build_plan(self, params: Params) -> Reply:
        build = self._build_for_read(params, allow_private_job=False)
        if build.plan is None:
            return Reply(404)
        return json_reply(build.plan)

    def build_events(self, params: Params) -> Reply | None:
        build = self._build_for_read(params, allow_private_job=False)
        last = self.headers.get("Last-Event-ID")
        start = 0
        if last:
            match = re.match(r"\s*\+?(\d+)", last)
            if match is None:
                return Reply(400)
            start = int(match.group(1)) + 1
        self._record(200, fault=self.fault is not None)
        cut_after = self.fault.cut_after if self.fault is not None else None
        stream_events(self, build, start, cut_after=cut_after)
        return None

    # -- /_sim -------------------------------------------------------------------------------------

    def _sim_route(self) -> Reply:
        server = self.server
        path, method = self.req_path, self.command
        if method == "GET" and path == "/_sim/requests":
            return json_reply([r.to_json() for r in server.recorder.requests])
        if method == "GET" and path == "/_sim/mutations":
            return json_reply([r.to_json() for r in server.recorder.mutations])
        if method == "GET" and path == "/_sim/state":
            with server.lock:
                scenario = server.scenario
                return json_reply(
                    {
                        "scenario": scenario.name,
                        "now": scenario.now,
                        "workers": [w.to_json() for w in scenario.workers.values()],
                        "builds": [b.to_json() for b in scenario.builds_sorted()],
                    }
                )
        if method == "POST" and path == "/_sim/expire-tokens":
            return json_reply({"expired": server.tokens.expire_all()})
        if method == "POST" and path == "/_sim/clear-requests":
            server.recorder.clear()
            server.reset_peak()
            return json_reply({"cleared": True})
        if method == "GET" and path == "/_sim/stats":
            return json_reply(
                {
                    "requests": len(server.recorder.requests),
                    "open_connections": server.open_connections,
                    "peak_connections": server.peak_connections,
                    "cached_streams": len(server.stream_cache),
                }
            )
        if method == "POST" and path == "/_sim/network":
            return self._set_network()
        if method == "POST" and path == "/_sim/builds":
            return self._add_builds()
        if method == "POST" and path == "/_sim/faults":
            try:
                server.recorder.add_fault(fault_from_json(json.loads(self.body or b"{}")))
            except (ValueError, KeyError, ScenarioError) as exc:
                return Reply(400, str(exc).encode(), TEXT)
            return json_reply({"added": True})
        return Reply(404, b"unknown simulator endpoint\n", TEXT)

    def _set_network(self) -> Reply:
        """`{"latency": seconds, "rate": bytes per second}`: how far away the ATC seems."""
        try:
            spec = json.loads(self.body or b"{}")
            options = self.server.scenario.stream
            latency = float(spec.get("latency", options.latency))
            rate = float(spec.get("rate", options.rate))
        except (ValueError, TypeError, AttributeError) as exc:
            return Reply(400, f"{exc}\n".encode(), TEXT)
        if latency < 0 or rate < 0:
            return Reply(400, b"latency and rate must not be negative\n", TEXT)
        options.latency, options.rate = latency, rate
        return json_reply({"latency": latency, "rate": rate})

    def _add_builds(self) -> Reply:
        """`{"builds": [...]}` in scenario format: new builds, or replacements by id."""
        try:
            added = self.server.add_builds(json.loads(self.body or b"{}").get("builds") or [])
        except (ValueError, KeyError, TypeError, AttributeError, ScenarioError) as exc:
            return Reply(400, f"{exc}\n".encode(), TEXT)
        return json_reply({"added": [b.id for b in added]})


_Route = tuple[str, re.Pattern[str], Callable[[Handler, Params], Reply | None]]
_SEG = r"[^/]+"
_ROUTES: list[_Route] = [
    ("GET", re.compile(r"/api/v1/info"), Handler.info),
    ("GET", re.compile(r"/api/v1/user"), Handler.user),
    ("GET", re.compile(r"/api/v1/workers"), Handler.workers),
    (
        "PUT",
        re.compile(rf"/api/v1/workers/(?P<name>{_SEG})/(?P<action>land|retire|prune)"),
        Handler.worker_action,
    ),
    ("DELETE", re.compile(rf"/api/v1/workers/(?P<name>{_SEG})"), Handler.delete_worker),
    ("GET", re.compile(r"/api/v1/builds"), Handler.list_builds),
    ("GET", re.compile(rf"/api/v1/builds/(?P<id>{_SEG})"), Handler.get_build),
    ("GET", re.compile(rf"/api/v1/builds/(?P<id>{_SEG})/events"), Handler.build_events),
    ("GET", re.compile(rf"/api/v1/builds/(?P<id>{_SEG})/plan"), Handler.build_plan),
    ("GET", re.compile(rf"/api/v1/teams/(?P<team>{_SEG})/builds"), Handler.team_builds),
    (
        "GET",
        re.compile(
            rf"/api/v1/teams/(?P<team>{_SEG})/pipelines/(?P<pipeline>{_SEG})"
            rf"/jobs/(?P<job>{_SEG})/builds"
        ),
        Handler.job_builds,
    ),
    (
        "POST",
        re.compile(
            rf"/api/v1/teams/(?P<team>{_SEG})/pipelines/(?P<pipeline>{_SEG})"
            rf"/jobs/(?P<job>{_SEG})/builds/(?P<name>{_SEG})"
        ),
        Handler.rerun,
    ),
]

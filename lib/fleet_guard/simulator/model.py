"""The simulated ATC's database: teams, users, workers, pipelines, builds and their events.

These objects are mutable on purpose: remediation endpoints change worker state and reruns add
builds, and tests inspect `Simulator.scenario` afterwards to see what a client really did.
Each `to_json` reproduces the ATC presenter's field order and omitempty rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet_guard.simulator.steps import EventItem
from fleet_guard.simulator.wire import dex_subject

ROLE_RANK = {"viewer": 1, "pipeline-operator": 2, "member": 3, "owner": 4}
ADMIN_TEAM = "main"


@dataclass
class User:
    """A local user; roles per team decide everything, and admin means owner of `main`."""

    username: str
    password: str
    teams: dict[str, list[str]]

    @property
    def is_admin(self) -> bool:
        return "owner" in self.teams.get(ADMIN_TEAM, [])

    def rank(self, team: str) -> int:
        return max((ROLE_RANK.get(r, 0) for r in self.teams.get(team, [])), default=0)

    def user_info(self) -> dict[str, Any]:
        """`GET /api/v1/user` for a local user: `user_name` is empty, like the real connector."""
        return {
            "sub": dex_subject(self.username),
            "name": self.username,
            "user_id": self.username,
            "user_name": "",
            "email": self.username,
            "is_admin": self.is_admin,
            "is_system": False,
            "teams": {team: list(roles) for team, roles in self.teams.items()},
            "connector": "local",
            "display_user_id": self.username,
        }


@dataclass
class StaticToken:
    """A token the scenario hands out directly, for clients configured with `source.token`."""

    token: str
    username: str
    expires_at: int | None = None
    system: bool = False


@dataclass(frozen=True)
class Pipeline:
    id: int
    team: str
    name: str
    instance_vars: dict[str, Any] | None = None
    public: bool = False
    private_jobs: frozenset[str] = frozenset()


@dataclass
class Worker:
    """One worker row. `state` changes under land/retire; prune removes it from the scenario."""

    name: str
    platform: str = "linux"
    team: str = ""
    tags: list[str] | None = None
    state: str = "running"
    version: str = "2.5"
    start_time: int = 0
    ephemeral: bool = False
    addr: str = ""
    baggageclaim_url: str = ""
    active_containers: int = 0
    active_volumes: int = 0
    active_tasks: int = 0
    resource_types: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        landed = self.state == "landed"
        return {
            "addr": "" if landed else self.addr,
            "baggageclaim_url": "" if landed else self.baggageclaim_url,
            "active_containers": self.active_containers,
            "active_volumes": self.active_volumes,
            "active_tasks": self.active_tasks,
            "resource_types": self.resource_types,
            "platform": self.platform,
            "tags": self.tags,
            "team": self.team,
            "name": self.name,
            "version": self.version,
            "start_time": self.start_time,
            "ephemeral": self.ephemeral,
            "state": self.state,
        }


@dataclass
class Build:
    """A build row plus its stored events (none once reaped) and public plan."""

    id: int
    team: str
    name: str
    status: str
    job: str | None = None
    pipeline: Pipeline | None = None
    resource_name: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    reap_time: int | None = None
    rerun_of: Build | None = None
    rerun_number: int = 0
    created_by: str | None = None
    comment: str = ""
    events: list[EventItem] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    event_delay: float | None = None

    @property
    def sort_key(self) -> tuple[int, int]:
        """`COALESCE(rerun_of, id), id`: reruns sort next to the build they reran."""
        return (self.rerun_of.id if self.rerun_of else self.id, self.id)

    @property
    def running(self) -> bool:
        return self.status in ("pending", "started")

    @property
    def public(self) -> bool:
        return self.pipeline is not None and self.pipeline.public

    @property
    def job_public(self) -> bool:
        """The events endpoint also needs the job public; one-off and check builds have none."""
        if self.pipeline is None or not self.pipeline.public or self.job is None:
            return False
        return self.job not in self.pipeline.private_jobs

    def to_json(self, *, with_comment: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "team_name": self.team,
            "name": self.name,
            "status": self.status,
            "api_url": f"/api/v1/builds/{self.id}",
        }
        if with_comment and self.comment:
            out["comment"] = self.comment
        if self.job:
            out["job_name"] = self.job
        if self.resource_name:
            out["resource_name"] = self.resource_name
        if self.pipeline is not None:
            out["pipeline_id"] = self.pipeline.id
            out["pipeline_name"] = self.pipeline.name
            if self.pipeline.instance_vars:
                out["pipeline_instance_vars"] = self.pipeline.instance_vars
        for key in ("start_time", "end_time", "reap_time"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.rerun_number:
            out["rerun_number"] = self.rerun_number
        if self.rerun_of is not None:
            out["rerun_of"] = {"id": self.rerun_of.id, "name": self.rerun_of.name}
        if self.created_by:
            out["created_by"] = self.created_by
        return out


@dataclass
class Fault:
    """An injected failure for retry tests: matching requests get `status` instead of an answer.

    `after` lets the first N matching requests through; `times` then limits how many fail
    (-1 = forever). `close` drops the connection without a response; `delay` sleeps first
    (with no `status` and no `close` the request is then served normally: a slow server).
    `cut_after` ends an event stream cleanly after that many events, before `end`. With a
    `status`: `drip` sends the body a byte at a time, this many seconds apart; `truncate`
    announces the whole body but sends half and hangs up; `headers` are added as they are.
    """

    path: str
    status: int | None = None
    times: int = 1
    method: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    delay: float = 0.0
    close: bool = False
    after: int = 0
    cut_after: int | None = None
    drip: float = 0.0
    truncate: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0


@dataclass
class StreamOptions:
    """How long a finished event stream is held open, pacing, and the network a client sees.

    `latency` is added before every API answer and `rate` caps each event stream's bytes per
    second (0: no cap), so a benchmark on loopback can behave like a remote ATC. `cache`
    keeps the wire bytes of finished builds' streams after the first read, so a benchmark
    measures the client, not the simulator rendering and compressing events.
    """

    hold_seconds: float = 60.0
    event_delay: float = 0.0
    latency: float = 0.0
    rate: float = 0.0
    cache: bool = False


@dataclass
class Scenario:
    """Everything the simulator serves. Times are absolute, resolved from `now` at load."""

    name: str
    description: str
    now: int
    info: dict[str, Any]
    teams: list[str]
    users: dict[str, User]
    tokens: list[StaticToken]
    pipelines: list[Pipeline]
    workers: dict[str, Worker]
    builds: dict[int, Build]
    faults: list[Fault]
    token_ttl: int = 86399
    stream: StreamOptions = field(default_factory=StreamOptions)
    client_id: str = "fly"
    client_secret: str = "Zmx5"
    generation: int = 0  # bumped when builds are replaced while running
    _order: tuple[tuple[int, int, int], list[Build]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def external_url(self) -> str:
        return str(self.info.get("external_url") or "")

    @property
    def version(self) -> str:
        return str(self.info.get("version") or "")

    def worker(self, name: str) -> Worker | None:
        return self.workers.get(name)

    def build(self, build_id: int) -> Build | None:
        return self.builds.get(build_id)

    def builds_sorted(self) -> list[Build]:
        """Server order: `COALESCE(rerun_of, id) DESC, id DESC`.

        The order is kept between requests (a 20,000-build fleet would otherwise be sorted
        for every page); any added, removed or replaced build (`generation`) re-sorts.
        """
        key = (len(self.builds), next(reversed(self.builds), 0), self.generation)
        if self._order is None or self._order[0] != key:
            ordered = sorted(self.builds.values(), key=lambda b: b.sort_key, reverse=True)
            self._order = (key, ordered)
        return self._order[1]

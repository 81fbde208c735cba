"""Reads a scenario file into the simulator's model, resolving relative times against `now`.

The format is documented in `scenarios/README.md`. The loader is strict: unknown keys, unknown
workers and duplicate build names are errors, because a typo in a scenario would otherwise
silently change what a test proves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fleet_guard.simulator.errors import ScenarioError
from fleet_guard.simulator.model import (
    Build,
    Fault,
    Pipeline,
    Scenario,
    StaticToken,
    StreamOptions,
    User,
    Worker,
)
from fleet_guard.simulator.steps import StepContext, expand_steps

_SCENARIO_DIR = resources.files("fleet_guard.simulator") / "scenarios"

SCENARIO_NAMES: tuple[str, ...] = tuple(
    sorted(
        entry.name.removesuffix(".json")
        for entry in _SCENARIO_DIR.iterdir()
        if entry.name.endswith(".json")
    )
)

_TOP_KEYS = {
    "description",
    "info",
    "auth",
    "stream",
    "plan_id_seed",
    "teams",
    "users",
    "tokens",
    "pipelines",
    "workers",
    "former_workers",
    "default_worker",
    "messages",
    "one_off_name_start",
    "builds",
    "build_series",
    "faults",
}
_BUILD_KEYS = {
    "id",
    "team",
    "pipeline",
    "instance_vars",
    "job",
    "name",
    "resource",
    "status",
    "started_ago",
    "duration",
    "worker",
    "created_by",
    "comment",
    "rerun_of",
    "reaped",
    "reaped_ago",
    "steps",
    "event_delay",
}
_STREAM_KEYS = {"hold_seconds", "event_delay", "latency", "rate", "cache"}
_SERIES_KEYS = {"count", "first_id", "id_step", "first_started_ago", "interval", "template", "vary"}
_WORKER_KEYS = {
    "name",
    "platform",
    "team",
    "tags",
    "state",
    "version",
    "started_ago",
    "start_time",
    "ephemeral",
    "addr",
    "baggageclaim_url",
    "active_containers",
    "active_volumes",
    "active_tasks",
    "resource_types",
    "release",
    "bundle_changes",
}
_FAULT_KEYS = {
    "path",
    "status",
    "times",
    "method",
    "query",
    "retry_after",
    "body",
    "content_type",
    "delay",
    "close",
    "after",
    "cut_after",
    "drip",
    "truncate",
    "headers",
}
_FEATURE_FLAGS = (
    "across_step",
    "build_rerun",
    "cache_streamed_volumes",
    "global_resources",
    "pipeline_instances",
    "redact_secrets",
    "resource_causality",
)
_STATUSES = {"pending", "started", "succeeded", "failed", "errored", "aborted"}


@cache
def bundled_types_by_release() -> dict[str, dict[str, str]]:
    """Release → `{type: version}` a linux worker of that release registers (bundles.json)."""
    text = (resources.files("fleet_guard.simulator") / "bundles.json").read_text("utf-8")
    return {str(k): dict(v) for k, v in json.loads(text)["releases"].items()}


def default_resource_types(
    release: str, changes: Mapping[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """What a linux worker of `release` registers from /usr/local/concourse/resource-types.

    `changes` customise the bundle as an operator's image would: a version adds or replaces a
    type, null removes it. A release the simulator does not know registers no types.
    """
    versions = dict(bundled_types_by_release().get(release.removeprefix("v"), {}))
    for name, version in (changes or {}).items():
        if version is None:
            versions.pop(name, None)
        else:
            versions[name] = version
    return [
        {
            "type": name,
            "image": f"/usr/local/concourse/resource-types/{name}/rootfs.tgz",
            "version": version,
            "privileged": False,
            "unique_version_history": name == "time",
        }
        for name, version in versions.items()
    ]


def load_scenario(name_or_path: str | Path, *, now: int | None = None) -> Scenario:
    """A built-in scenario by name (see SCENARIO_NAMES) or any scenario file by path."""
    text, name = _read(name_or_path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {name}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"scenario {name}: the top level must be an object")
    return _Loader(raw, name, int(time.time()) if now is None else now).load()


def _read(name_or_path: str | Path) -> tuple[str, str]:
    if isinstance(name_or_path, str) and name_or_path in SCENARIO_NAMES:
        return (_SCENARIO_DIR / f"{name_or_path}.json").read_text(), name_or_path
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(
            f"no scenario {str(name_or_path)!r}: give a path to a JSON file or one of "
            f"{', '.join(SCENARIO_NAMES)}"
        )
    return path.read_text(), path.stem


def _check_keys(obj: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ScenarioError(f"{where}: expected an object, got {obj!r}")
    unknown = set(obj) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    return obj


class _Loader:
    def __init__(self, raw: dict[str, Any], name: str, now: int) -> None:
        self.raw = raw
        self.name = name
        self.now = now
        self.pipelines: dict[tuple[str, str, str], Pipeline] = {}
        self.plan_counter = 0

    def load(self) -> Scenario:
        raw = _check_keys(self.raw, _TOP_KEYS, f"scenario {self.name}")
        info = self._info(raw.get("info") or {})
        auth = dict(raw.get("auth") or {})
        stream = _check_keys(raw.get("stream") or {}, _STREAM_KEYS, "stream")
        users = self._users(raw.get("users") or [])
        workers = self._workers(raw.get("workers") or [], info["version"])
        for spec in raw.get("pipelines") or []:
            self._declare_pipeline(spec)
        self.plan_counter = int(str(raw.get("plan_id_seed", "6829e000")), 16)
        builds = self._builds(raw, workers)
        teams = list(dict.fromkeys(raw.get("teams") or []))
        referenced = [p.team for p in self.pipelines.values()]
        referenced += [w.team for w in workers.values() if w.team]
        referenced += [b.team for b in builds.values()]
        for team in referenced:
            if team not in teams:
                teams.append(team)
        tokens = self._tokens(raw.get("tokens") or [], users)
        faults = [self._fault(spec) for spec in raw.get("faults") or []]
        return Scenario(
            name=self.name,
            description=str(raw.get("description") or ""),
            now=self.now,
            info=info,
            teams=teams,
            users=users,
            tokens=tokens,
            pipelines=sorted(self.pipelines.values(), key=lambda p: p.id),
            workers=workers,
            builds=builds,
            faults=faults,
            token_ttl=int(auth.get("token_ttl", 86399)),
            stream=StreamOptions(
                hold_seconds=float(stream.get("hold_seconds", 60.0)),
                event_delay=float(stream.get("event_delay", 0.0)),
                latency=float(stream.get("latency", 0.0)),
                rate=float(stream.get("rate", 0.0)),
                cache=bool(stream.get("cache", False)),
            ),
            client_id=str(auth.get("client_id", "fly")),
            client_secret=str(auth.get("client_secret", "Zmx5")),
        )

    def _info(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        if "version" not in spec or "worker_version" not in spec:
            raise ScenarioError(f"scenario {self.name}: info needs 'version' and 'worker_version'")
        info: dict[str, Any] = {
            "version": str(spec["version"]),
            "worker_version": str(spec["worker_version"]),
            # Go marshals map keys sorted.
            "feature_flags": dict(
                sorted((spec.get("feature_flags") or dict.fromkeys(_FEATURE_FLAGS, False)).items())
            ),
        }
        for key in ("external_url", "cluster_name"):
            if spec.get(key):
                info[key] = str(spec[key])
        return info

    def _users(self, specs: list[Any]) -> dict[str, User]:
        users: dict[str, User] = {}
        for spec in specs:
            spec = _check_keys(spec, {"username", "password", "teams"}, "users[]")
            teams = {
                str(t): [str(r) for r in roles] for t, roles in (spec.get("teams") or {}).items()
            }
            users[str(spec["username"])] = User(str(spec["username"]), str(spec["password"]), teams)
        return users

    def _tokens(self, specs: list[Any], users: dict[str, User]) -> list[StaticToken]:
        tokens = []
        for spec in specs:
            spec = _check_keys(spec, {"token", "user", "expires_in", "system"}, "tokens[]")
            if spec["user"] not in users:
                raise ScenarioError(f"tokens[]: unknown user {spec['user']!r}")
            expires = spec.get("expires_in")
            tokens.append(
                StaticToken(
                    token=str(spec["token"]),
                    username=str(spec["user"]),
                    expires_at=None if expires is None else self.now + int(expires),
                    system=bool(spec.get("system", False)),
                )
            )
        return tokens

    def _workers(self, specs: list[Any], web_release: str) -> dict[str, Worker]:
        workers: dict[str, Worker] = {}
        for index, spec in enumerate(specs):
            spec = _check_keys(spec, _WORKER_KEYS, "workers[]")
            name = str(spec["name"])
            platform = str(spec.get("platform", "linux"))
            host = f"10.0.1.{10 + index}"
            release = str(spec.get("release", web_release))
            if "release" in spec and release not in bundled_types_by_release():
                raise ScenarioError(
                    f"workers[{index}].release: no bundle known for {release!r}; known: "
                    f"{', '.join(bundled_types_by_release())}"
                )
            if "resource_types" in spec:
                types = spec["resource_types"]
            elif platform == "linux":
                types = default_resource_types(release, spec.get("bundle_changes"))
            else:
                types = None
            if "start_time" in spec:
                start_time = int(spec["start_time"])
            else:
                start_time = self.now - int(spec.get("started_ago", 14 * 86400))
            workers[name] = Worker(
                name=name,
                platform=platform,
                team=str(spec.get("team", "")),
                tags=spec.get("tags"),
                state=str(spec.get("state", "running")),
                version=str(spec.get("version", "2.5")),
                start_time=start_time,
                ephemeral=bool(spec.get("ephemeral", False)),
                addr=str(spec.get("addr", f"{host}:{41000 + index * 7}")),
                baggageclaim_url=str(spec.get("baggageclaim_url", f"http://{host}:7788")),
                active_containers=int(spec.get("active_containers", 3 + 2 * index)),
                active_volumes=int(spec.get("active_volumes", 20 + 11 * index)),
                active_tasks=int(spec.get("active_tasks", index % 3)),
                resource_types=types,
            )
        return workers

    def _declare_pipeline(self, spec: Any) -> Pipeline:
        spec = _check_keys(
            spec, {"id", "team", "name", "instance_vars", "public", "private_jobs"}, "pipelines[]"
        )
        key = self._pipeline_key(str(spec["team"]), str(spec["name"]), spec.get("instance_vars"))
        if key in self.pipelines:
            raise ScenarioError(f"pipelines[]: {spec['team']}/{spec['name']} declared twice")
        pipeline = Pipeline(
            id=int(spec["id"]) if "id" in spec else self._next_pipeline_id(),
            team=str(spec["team"]),
            name=str(spec["name"]),
            instance_vars=dict(spec["instance_vars"]) if spec.get("instance_vars") else None,
            public=bool(spec.get("public", False)),
            private_jobs=frozenset(spec.get("private_jobs") or ()),
        )
        self.pipelines[key] = pipeline
        return pipeline

    @staticmethod
    def _pipeline_key(team: str, name: str, instance_vars: Any) -> tuple[str, str, str]:
        return (team, name, json.dumps(instance_vars or None, sort_keys=True))

    def _next_pipeline_id(self) -> int:
        return max((p.id for p in self.pipelines.values()), default=0) + 1

    def _pipeline(self, team: str, name: str, instance_vars: Any) -> Pipeline:
        key = self._pipeline_key(team, name, instance_vars)
        if key not in self.pipelines:
            spec = {"team": team, "name": name, "instance_vars": instance_vars}
            return self._declare_pipeline(spec)
        return self.pipelines[key]

    def _next_plan_id(self) -> str:
        value = self.plan_counter
        self.plan_counter += 1
        return f"{value:x}"

    def _build_specs(self, raw: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for spec in raw.get("builds") or []:
            yield _check_keys(spec, _BUILD_KEYS, "builds[]")
        for series in raw.get("build_series") or []:
            series = _check_keys(series, _SERIES_KEYS, "build_series[]")
            template = _check_keys(series.get("template") or {}, _BUILD_KEYS, "template")
            vary = series.get("vary") or [{}]
            for index in range(int(series["count"])):
                spec = dict(template)
                spec.update(_check_keys(vary[index % len(vary)], _BUILD_KEYS, "vary[]"))
                spec["id"] = int(series["first_id"]) + index * int(series.get("id_step", 1))
                spec["started_ago"] = int(series["first_started_ago"]) - index * int(
                    series["interval"]
                )
                yield spec

    def _builds(self, raw: Mapping[str, Any], workers: dict[str, Worker]) -> dict[int, Build]:
        specs: dict[int, Mapping[str, Any]] = {}
        for spec in self._build_specs(raw):
            build_id = int(spec["id"])
            if build_id in specs:
                raise ScenarioError(f"build id {build_id} is used twice")
            specs[build_id] = spec
        known_workers = set(workers) | set(raw.get("former_workers") or [])
        default_worker = str(raw.get("default_worker") or next(iter(workers), ""))
        messages = {str(k): str(v) for k, v in (raw.get("messages") or {}).items()}
        one_off = int(raw.get("one_off_name_start", 1000))
        job_counters: dict[tuple[int, str], int] = {}
        names: set[tuple[int, str, str]] = set()
        builds: dict[int, Build] = {}
        for build_id in sorted(specs):
            spec = specs[build_id]
            build = self._build(spec, builds)
            if build.rerun_of is not None:
                original = build.rerun_of
                build.rerun_number = 1 + sum(1 for b in builds.values() if b.rerun_of is original)
                build.name = f"{original.name}.{build.rerun_number}"
            elif build.resource_name:
                build.name = "check"
            elif build.job is not None and build.pipeline is not None:
                counter_key = (build.pipeline.id, build.job)
                counter = job_counters.get(counter_key, 1)
                if "name" in spec:
                    build.name = str(spec["name"])
                    if build.name.isdigit():
                        counter = max(counter, int(build.name) + 1)
                else:
                    build.name = str(counter)
                    counter += 1
                job_counters[counter_key] = counter
            elif "name" in spec:
                build.name = str(spec["name"])
            else:
                build.name = str(one_off)
                one_off += 1
            if build.job is not None and build.pipeline is not None:
                name_key = (build.pipeline.id, build.job, build.name)
                if name_key in names:
                    raise ScenarioError(f"build {build_id}: name {build.name!r} used twice")
                names.add(name_key)
            worker = str(spec.get("worker") or default_worker)
            self._expand(build, spec, worker, messages, known_workers)
            builds[build_id] = build
        return builds

    def _build(self, spec: Mapping[str, Any], earlier: dict[int, Build]) -> Build:
        build_id = int(spec["id"])
        rerun_of = None
        team = spec.get("team")
        job = spec.get("job")
        pipeline_name = spec.get("pipeline")
        instance_vars = spec.get("instance_vars")
        if "rerun_of" in spec:
            rerun_of = earlier.get(int(spec["rerun_of"]))
            if rerun_of is None or rerun_of.job is None:
                raise ScenarioError(
                    f"build {build_id}: rerun_of must name an earlier job build (lower id)"
                )
            if rerun_of.rerun_of is not None:
                rerun_of = rerun_of.rerun_of
            team = team or rerun_of.team
            job = job or rerun_of.job
            pipeline = rerun_of.pipeline
        elif pipeline_name is not None:
            if not team:
                raise ScenarioError(f"build {build_id}: a pipeline build needs 'team'")
            pipeline = self._pipeline(str(team), str(pipeline_name), instance_vars)
        else:
            pipeline = None
        if not team:
            raise ScenarioError(f"build {build_id}: 'team' is required")
        if (job or spec.get("resource")) and pipeline is None:
            raise ScenarioError(f"build {build_id}: job and check builds need a 'pipeline'")
        return Build(
            id=build_id,
            team=str(team),
            name="",
            status="",
            job=str(job) if job else None,
            pipeline=pipeline,
            resource_name=str(spec["resource"]) if spec.get("resource") else None,
            rerun_of=rerun_of,
            created_by=str(spec["created_by"]) if spec.get("created_by") else None,
            comment=str(spec.get("comment", "")),
            event_delay=float(spec["event_delay"]) if "event_delay" in spec else None,
        )

    def _expand(
        self,
        build: Build,
        spec: Mapping[str, Any],
        worker: str,
        messages: dict[str, str],
        known_workers: set[str],
    ) -> None:
        status = spec.get("status")
        if status is not None and status not in _STATUSES:
            raise ScenarioError(f"build {build.id}: unknown status {status!r}")
        steps = list(spec.get("steps") or [])
        for step in steps:
            for name in _step_workers(step):
                if name not in known_workers:
                    raise ScenarioError(
                        f"build {build.id}: unknown worker {name!r} (declare it in workers "
                        "or former_workers)"
                    )
        if steps and worker not in known_workers:
            raise ScenarioError(f"build {build.id}: unknown default worker {worker!r}")
        start = None
        if status != "pending" and "started_ago" in spec:
            start = self.now - int(spec["started_ago"])
        finished = status not in ("pending", "started")
        end = self.now
        if start is not None and finished:
            end = min(start + int(spec.get("duration", 60)), self.now)
        ctx = StepContext(build.id, worker, messages, self._next_plan_id)
        events, plan, outcome = expand_steps(
            steps, ctx, start=start, end=end, finished=finished and start is not None
        )
        build.status = str(status or outcome.status)
        build.start_time = start
        build.end_time = end if start is not None and finished else None
        build.events = events
        build.plan = plan
        if spec.get("reaped") or "reaped_ago" in spec:
            if "reaped_ago" in spec:
                build.reap_time = self.now - int(spec["reaped_ago"])
            else:
                build.reap_time = min((build.end_time or self.now) + 3600, self.now)
            build.events = []

    def _fault(self, spec: Any) -> Fault:
        spec = _check_keys(spec, _FAULT_KEYS, "faults[]")
        if (
            not ({"status", "cut_after"} & set(spec))
            and not spec.get("close")
            and not spec.get("delay")
        ):
            raise ScenarioError("faults[]: a fault needs 'status', 'close', 'delay' or 'cut_after'")
        retry_after = spec.get("retry_after")
        return Fault(
            path=str(spec["path"]),
            status=int(spec["status"]) if "status" in spec else None,
            times=int(spec.get("times", 1)),
            method=str(spec["method"]).upper() if spec.get("method") else None,
            query={str(k): str(v) for k, v in (spec.get("query") or {}).items()},
            retry_after=None if retry_after is None else str(retry_after),
            body=str(spec.get("body", "")),
            content_type=str(spec.get("content_type", "text/plain; charset=utf-8")),
            delay=float(spec.get("delay", 0.0)),
            close=bool(spec.get("close", False)),
            after=int(spec.get("after", 0)),
            cut_after=int(spec["cut_after"]) if "cut_after" in spec else None,
            drip=float(spec.get("drip", 0.0)),
            truncate=bool(spec.get("truncate", False)),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
        )


def _step_workers(step: Mapping[str, Any]) -> list[str]:
    """Every worker a step names, including its image sub-step and a retried attempt."""
    names = [step.get("worker")]
    for nested in ("image", "retry_error"):
        if isinstance(step.get(nested), Mapping):
            names.append(step[nested].get("worker"))
    return [str(n) for n in names if n is not None]


def fault_from_json(spec: Mapping[str, Any]) -> Fault:
    """A fault added at run time (Simulator.add_fault) is validated like one in a file."""
    return _Loader({}, "runtime", 0)._fault(spec)


def add_builds(scenario: Scenario, specs: list[Any], *, now: int | None = None) -> list[Build]:
    """Builds added (or replaced, by id) while running: the fleet moving on between checks.

    Specs are scenario `builds[]` entries; relative times count from `now` (default: the
    current time), so a build added later is newer than the ones loaded at start. A job build
    without a `name` is numbered after the job's existing builds.
    """
    loader = _Loader({}, "runtime", int(time.time()) if now is None else now)
    for pipeline in scenario.pipelines:
        key = loader._pipeline_key(pipeline.team, pipeline.name, pipeline.instance_vars)
        loader.pipelines[key] = pipeline
    loader.plan_counter = 0x70000000 + 0x1000 * len(scenario.builds)
    known_workers = set(scenario.workers)
    added = []
    for raw_spec in specs:
        spec = _check_keys(raw_spec, _BUILD_KEYS, "builds[]")
        build = loader._build(spec, scenario.builds)
        if build.rerun_of is not None:
            original = build.rerun_of
            build.rerun_number = 1 + sum(
                1 for b in scenario.builds.values() if b.rerun_of is original and b.id != build.id
            )
            build.name = f"{original.name}.{build.rerun_number}"
        elif "name" in spec:
            build.name = str(spec["name"])
        else:
            same_job = [
                int(b.name)
                for b in scenario.builds.values()
                if b.pipeline is build.pipeline and b.job == build.job and b.name.isdigit()
            ]
            build.name = str(max(same_job, default=0) + 1)
        worker = str(spec.get("worker") or next(iter(scenario.workers), ""))
        loader._expand(build, spec, worker, {}, known_workers)
        scenario.builds[build.id] = build
        added.append(build)
    scenario.generation += 1
    if loader.pipelines:
        known = {id(p) for p in scenario.pipelines}
        scenario.pipelines += [p for p in loader.pipelines.values() if id(p) not in known]
    return added

"""Capture: what one scan read from a Concourse, written as a simulator scenario file.

A capture is a bug report anyone can reproduce and a piece of real history to try rules on:
`fleet-guard simulate FILE` serves it, `fleet-guard scan --replay FILE` and `fleet-guard rules
test RULE --replay FILE` scan it without touching the ATC. It records the client's answers as
the scan saw them (info, workers, every build listed, the events of every build read, all
types) and turns them into the scenario format of `simulator/scenarios/README.md`:

- times become relative (`started_ago`, an event's `at`), so a replay's window holds the same
  builds whenever it is served;
- no credential goes in: not the password or token of the capture, nor any URL with one; log
  payloads are redacted with the source's secrets, and `blank_logs` empties them altogether;
- the replay has one user of its own, `REPLAY_USER`, owner of `main` so it sees every team.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fleet_guard import __version__
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.events import EventStream, StreamOutcome
from fleet_guard.concourse.models import Build, Event, Info, Worker
from fleet_guard.concourse.paging import BuildListing
from fleet_guard.config import DEFAULT_MAX_LOG_BYTES
from fleet_guard.redact import Redactor

# The replay's own login: a made-up user of the simulator, never the captured Concourse's.
REPLAY_USER = ("replay", "replay-pass")

# The simulator writes these itself around a build's steps.
_GENERATED = frozenset({"status"})


class _RecordedStream(EventStream):
    """The client's stream with every event read kept; the caller still gets only its types."""

    def __init__(
        self, inner: EventStream, wanted: Collection[str] | None, keep: list[Event]
    ) -> None:
        # No super().__init__: this stream reads nothing itself, `inner` does.
        self._inner = inner
        self._wanted = None if wanted is None else frozenset(wanted)
        self._keep = keep

    @property
    def outcome(self) -> StreamOutcome:
        return self._inner.outcome

    @outcome.setter
    def outcome(self, value: StreamOutcome) -> None:
        """Only the inner stream decides how the reading ended."""

    def __next__(self) -> Event:
        while True:
            event = next(self._inner)
            self._keep.append(event)
            if self._wanted is None or event.type in self._wanted:
                return event

    def close(self) -> None:
        self._inner.close()


class RecordingClient(ConcourseClient):
    """A ConcourseClient that remembers what it answered, for `scenario()` to write out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded_info: Info | None = None
        self.recorded_workers: list[Worker] = []
        self.recorded_builds: dict[int, Build] = {}
        self.recorded_events: dict[int, list[Event]] = {}

    def info(self) -> Info:
        self.recorded_info = super().info()
        return self.recorded_info

    def workers(self) -> list[Worker]:
        self.recorded_workers = super().workers()
        return self.recorded_workers

    def list_builds(self, *, since: int, max_builds: int, **options: Any) -> BuildListing:
        # `options` (teams, the incremental listing's state) pass through untouched.
        listing = super().list_builds(since=since, max_builds=max_builds, **options)
        for build in listing.builds:
            self.recorded_builds[build.id] = build
        return listing

    def build_events(
        self,
        build_id: int,
        *,
        max_bytes: int = DEFAULT_MAX_LOG_BYTES,
        events: Collection[str] | None = None,
    ) -> EventStream:
        # Every type is read, so a replay can try rules on events this scan had no use for.
        inner = super().build_events(build_id, max_bytes=max_bytes, events=None)
        keep: list[Event] = []
        # A build read twice (evidence, then the base-rate sample) keeps its longer reading.
        if len(self.recorded_events.get(build_id, ())) == 0:
            self.recorded_events[build_id] = keep
        else:
            keep = []
        return _RecordedStream(inner, events, keep)


def scenario(
    client: RecordingClient,
    *,
    source_url: str,
    redactor: Redactor,
    blank_logs: bool = False,
    now: int | None = None,
) -> dict[str, Any]:
    """The scenario document of everything `client` answered, times relative to `now`."""
    now = int(time.time()) if now is None else now
    info = client.recorded_info or Info(version="", worker_version="")
    workers = client.recorded_workers
    builds = sorted(client.recorded_builds.values(), key=lambda b: b.id)
    named = {w.name for w in workers}
    mentioned = {
        str(e.data.get("selected_worker") or "")
        for events in client.recorded_events.values()
        for e in events
    }
    document: dict[str, Any] = {
        "description": (
            f"Captured by fleet-guard {__version__} capture from {_without_credentials(source_url)}"
            f" at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}: {len(workers)} "
            f"workers, {len(builds)} builds, {len(client.recorded_events)} event streams"
            + (", log payloads blanked" if blank_logs else "")
            + ". Times are relative to when the file is served."
        ),
        "info": _info(info),
        "users": [
            {
                "username": REPLAY_USER[0],
                "password": REPLAY_USER[1],
                "teams": {"main": ["owner"]},
            }
        ],
        "workers": [_worker(w, now) for w in workers],
    }
    former = sorted(mentioned - named - {""})
    if former:
        document["former_workers"] = former
    known = set(client.recorded_builds)
    document["builds"] = [
        _build(b, client.recorded_events.get(b.id), known, now, redactor, blank_logs)
        for b in builds
    ]
    return document


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=False) + "\n"


def _info(info: Info) -> dict[str, Any]:
    # external_url is left out on purpose: the simulator bases Link headers on it, and a replay
    # must never send the client to the real Concourse.
    out: dict[str, Any] = {"version": info.version, "worker_version": info.worker_version}
    if info.cluster_name:
        out["cluster_name"] = info.cluster_name
    if info.feature_flags:
        out["feature_flags"] = dict(info.feature_flags)
    return out


def _worker(worker: Worker, now: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": worker.name,
        "platform": worker.platform,
        "team": worker.team,
        "tags": list(worker.tags) or None,
        "state": worker.state,
        "version": worker.version,
        "ephemeral": worker.ephemeral,
        "active_containers": worker.active_containers,
        "resource_types": None
        if worker.resource_types is None
        else [{"type": t, "version": v} for t, v in worker.resource_types.items()],
    }
    if worker.start_time:
        out["started_ago"] = max(0, now - worker.start_time)
    else:
        out["start_time"] = 0
    return out


def _build(
    build: Build,
    events: Sequence[Event] | None,
    known: set[int],
    now: int,
    redactor: Redactor,
    blank_logs: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": build.id, "team": build.team_name, "status": build.status}
    if build.pipeline_name:
        out["pipeline"] = build.pipeline_name
        if build.pipeline_instance_vars:
            out["instance_vars"] = dict(build.pipeline_instance_vars)
    if build.job_name:
        out["job"] = build.job_name
    if build.resource_name:
        out["resource"] = build.resource_name
    if build.name and not build.is_check:
        out["name"] = build.name
    if build.created_by:
        out["created_by"] = build.created_by
    if build.rerun_of is not None and build.rerun_of in known:
        out["rerun_of"] = build.rerun_of
    if build.start_time:
        out["started_ago"] = max(0, now - build.start_time)
        if build.end_time:
            out["duration"] = max(0, build.end_time - build.start_time)
    steps = [
        _raw(e, build.start_time or now, redactor, blank_logs)
        for e in (events or ())
        if e.type not in _GENERATED
    ]
    if steps:
        out["steps"] = steps
    return out


def _raw(event: Event, start: int, redactor: Redactor, blank_logs: bool) -> dict[str, Any]:
    data = dict(event.data)
    if event.type == "log" and isinstance(data.get("payload"), str):
        data["payload"] = "" if blank_logs else redactor(data["payload"])
    elif isinstance(data.get("message"), str):
        data["message"] = redactor(data["message"])
    raw: dict[str, Any] = {"event": event.type, "data": data}
    if event.version:
        raw["version"] = event.version
    step: dict[str, Any] = {"raw": raw}
    stamp = data.get("time")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        step["at"] = stamp - start
    return step


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}" if sep else url

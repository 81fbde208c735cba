"""The Concourse API as Fleet Guard uses it: read the fleet, read builds, remediate workers.

This is the only code that talks HTTP to the ATC. Each method names the role its endpoint
needs, so a refusal can tell the operator exactly which grant is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from fleet_guard.concourse.auth import Credentials
from fleet_guard.concourse.events import EventStream
from fleet_guard.concourse.failures import error_for, not_json, read_error_body
from fleet_guard.concourse.models import Build, Info, UserInfo, Worker
from fleet_guard.concourse.paging import BuildListing, Series, builds_path, list_builds
from fleet_guard.concourse.retry import RetryPolicy
from fleet_guard.concourse.session import HttpSession, Params
from fleet_guard.config import DEFAULT_MAX_LOG_BYTES, SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

__all__ = ["BuildListing", "ConcourseClient"]

_T = TypeVar("_T")

PUBLIC = "none (the endpoint is public; a token, when sent, must be valid)"
LOGGED_IN = "any logged-in user"
VIEWER = "viewer on the build's team, unless its pipeline and job are public"
WORKER_MEMBER = "member of the worker's team, or admin (owner of team main) for a global worker"


class ConcourseClient:
    """One client per check/get/put run; `calls` counts every HTTP request it sent.

    Creating it does no I/O: the first call logs in (when source has a username and password)
    and builds the TLS context.
    """

    def __init__(
        self,
        config: SourceConfig,
        log: Log,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._log = log
        self._http = HttpSession(
            config,
            log,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            sleep=sleep,
        )
        self._credentials = Credentials(config, self._http, log)

    @property
    def calls(self) -> int:
        return self._http.calls

    def info(self) -> Info:
        body = self._get_json("/api/v1/info", role=PUBLIC)
        return self._parse("GET /api/v1/info", lambda: Info.from_json(_mapping(body)))

    def workers(self) -> list[Worker]:
        body = self._get_json("/api/v1/workers", role=LOGGED_IN)
        return self._parse("GET /api/v1/workers", lambda: [Worker.from_json(w) for w in body])

    def user(self) -> UserInfo:
        body = self._get_json("/api/v1/user", role=LOGGED_IN)
        return self._parse("GET /api/v1/user", lambda: UserInfo.from_json(_mapping(body)))

    def list_builds(
        self,
        *,
        since: int,
        max_builds: int,
        teams: Sequence[str] = (),
        known: Mapping[str, Series] | None = None,
        on_kept: Callable[[Build], None] | None = None,
    ) -> BuildListing:
        """Builds that ran at or after the Unix time `since`, newest first, checks left out.

        See `paging.list_builds` for where the walk stops and what it can miss. With `teams`,
        each team's endpoint is paged in turn and `max_builds` spans them all. With `known`
        (the last check's `listing.series`), each endpoint costs one request for what is new.
        `on_kept` hears of each listed build as soon as its page is in.
        """

        team_of = {builds_path(team): team for team in teams}

        def fetch(path: str, query: list[tuple[str, str]]) -> tuple[list[Build], str | None]:
            team = team_of.get(path)
            response = self._request(
                "GET",
                path,
                params=query,
                role=LOGGED_IN if team else PUBLIC,
                not_found=f"there is no team {team!r}; check source.teams" if team else "",
            )
            body = self._json(response, f"GET {path}")
            builds = self._parse(f"GET {path}", lambda: [Build.from_json(b) for b in body])
            return builds, response.links.get("next", {}).get("url")

        return list_builds(
            fetch, since=since, max_builds=max_builds, teams=teams, known=known, on_kept=on_kept
        )

    def build_events(
        self,
        build_id: int,
        *,
        max_bytes: int = DEFAULT_MAX_LOG_BYTES,
        events: Collection[str] | None = None,
    ) -> EventStream:
        """The build's events as they stream in; nothing is sent until the first is wanted.

        `events` names the types worth decoding (None: every type); the others are skipped
        without a JSON decode. Stop iterating whenever you like: the response is closed
        then, as it is at `end`.
        """
        path = f"/api/v1/builds/{int(build_id)}/events"

        def open_stream(last_event_id: str | None) -> requests.Response:
            headers = {"Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            return self._request(
                "GET",
                path,
                role=VIEWER,
                stream=True,
                headers=headers,
                not_found=f"there is no build {build_id}",
            )

        return EventStream(
            open_stream,
            max_bytes=max_bytes,
            log=self._log,
            label=f"build {build_id} events",
            events=events,
            max_seconds=max(0.0, self._http.deadline_for_stream() - time.monotonic()),
        )

    def land_worker(self, name: str) -> None:
        self._worker_action(name, "land")

    def retire_worker(self, name: str) -> None:
        self._worker_action(name, "retire")

    def prune_worker(self, name: str) -> None:
        self._worker_action(
            name,
            "prune",
            bad_request="only stalled, landing, landed or retiring workers can be pruned; "
            "land or retire a running worker first",
        )

    def rerun_build(self, build: Build) -> Build:
        """Reruns a job build with the same inputs; sent once, never replayed after a 5xx,
        because the ATC may have created the rerun before failing."""
        if not (build.job_name and build.pipeline_name):
            raise ValueError(f"build {build.id} is not a job build; only job builds can rerun")
        path = "/api/v1/teams/{}/pipelines/{}/jobs/{}/builds/{}".format(
            *(
                quote(part, safe="")
                for part in (build.team_name, build.pipeline_name, build.job_name, build.name)
            )
        )
        response = self._request(
            "POST",
            path,
            params=instance_var_params(build.pipeline_instance_vars) or None,
            role=f"pipeline-operator on team {build.team_name!r}",
            replayable=False,
            not_found=f"the job or build {build.name!r} no longer exists",
        )
        body = self._json(response, f"POST {path}")
        return self._parse(f"POST {path}", lambda: Build.from_json(_mapping(body)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConcourseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _worker_action(self, name: str, action: str, *, bad_request: str = "") -> None:
        path = f"/api/v1/workers/{quote(name, safe='')}/{action}"
        response = self._request(
            "PUT",
            path,
            role=WORKER_MEMBER,
            headers={"Content-Type": "application/json"},
            not_found=f"there is no worker {name!r} (it may be gone already)",
            bad_request=bad_request,
        )
        response.close()
        self._log.debug(f"{action} worker {name!r}: done")

    def _get_json(self, path: str, *, role: str) -> Any:
        return self._json(self._request("GET", path, role=role), f"GET {path}")

    def _json(self, response: requests.Response, endpoint: str) -> Any:
        with response:
            try:
                return response.json()
            except ValueError:
                raise not_json(endpoint, self._http.shown_url) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        role: str,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        replayable: bool = True,
        not_found: str = "",
        bad_request: str = "",
    ) -> requests.Response:
        """A 2xx response, or the exception that explains why not.

        A 401 with a password in source earns one fresh login and one more try: the token may
        simply have expired (they last 24 hours and cannot be refreshed).
        """
        endpoint = f"{method} {path}"

        def send() -> requests.Response:
            return self._http.send(
                method,
                path,
                auth=self._credentials.auth(),
                params=params,
                headers=headers,
                stream=stream,
                replayable=replayable,
            )

        response = send()
        if response.status_code == 401 and self._credentials.can_renew:
            response.close()
            self._log.debug(f"{endpoint}: 401 Unauthorized; logging in again")
            self._credentials.renew()
            response = send()
        if response.status_code == 401:
            response.close()
            raise self._credentials.rejected(endpoint)
        if not 200 <= response.status_code < 300:
            body = read_error_body(response, streamed=stream)
            response.close()
            raise error_for(
                response,
                body,
                endpoint=endpoint,
                role=role,
                not_found=not_found,
                bad_request=bad_request,
                redact=self._log.redact,
            )
        return response

    @staticmethod
    def _parse(endpoint: str, build: Callable[[], _T]) -> _T:
        """Models read the JSON strictly where it matters (ids, names); a miss is a message."""
        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _unexpected(endpoint) from None


def instance_var_params(instance_vars: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """`vars.<path>=<json>` pairs the way the ATC's PipelineRef.QueryParams writes them.

    Nested objects flatten to dotted paths; a path segment holding any of `,.:/ ` is quoted.
    """
    pairs: list[tuple[str, str]] = []

    def walk(path: list[str], value: Any) -> None:
        if isinstance(value, Mapping) and (value or not path):
            for key, item in value.items():
                walk([*path, str(key)], item)
            return
        ref = ".".join(json.dumps(p) if any(c in p for c in ",.:/ ") else p for p in path)
        pairs.append((f"vars.{ref}", json.dumps(value, separators=(",", ":"))))

    if instance_vars:
        walk([], instance_vars)
    return sorted(pairs)


def _mapping(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise TypeError("expected a JSON object")
    return body


def _unexpected(endpoint: str) -> ConcourseError:
    return ConcourseError(
        f"{endpoint} answered with JSON that Fleet Guard cannot read; this Concourse version "
        "may not be supported. Run with debug: true and report it.",
        endpoint=endpoint,
    )

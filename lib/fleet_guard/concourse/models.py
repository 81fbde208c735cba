"""Typed views of the ATC's JSON, tolerant of the fields the API leaves out or sets to null.

Only what Fleet Guard reads is kept; see shared/reference/concourse-api.md for the wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Info:
    """`GET /api/v1/info`: the web node's release and the worker protocol it expects."""

    version: str
    worker_version: str
    external_url: str = ""
    cluster_name: str = ""
    feature_flags: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Info:
        return cls(
            version=str(data.get("version") or ""),
            worker_version=str(data.get("worker_version") or ""),
            external_url=str(data.get("external_url") or ""),
            cluster_name=str(data.get("cluster_name") or ""),
            feature_flags=dict(data.get("feature_flags") or {}),
        )


@dataclass(frozen=True)
class Worker:
    """One entry of `GET /api/v1/workers`. `version` is the worker API version, not a release."""

    name: str
    state: str
    platform: str
    team: str = ""
    tags: tuple[str, ...] = ()
    version: str = ""
    start_time: int = 0
    ephemeral: bool = False
    active_containers: int = 0
    # `{type: version}` of the base resource types the worker registered at start (they name
    # its release); None when it registered none (`null`: Windows and Darwin workers).
    resource_types: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Worker:
        return cls(
            name=str(data["name"]),
            state=str(data.get("state") or ""),
            platform=str(data.get("platform") or ""),
            team=str(data.get("team") or ""),
            tags=tuple(t for t in (data.get("tags") or ()) if t),
            version=str(data.get("version") or ""),
            start_time=_whole_number(data.get("start_time")),
            ephemeral=bool(data.get("ephemeral")),
            active_containers=_whole_number(data.get("active_containers")),
            resource_types=_resource_types(data.get("resource_types")),
        )


def _whole_number(raw: Any) -> int:
    """A count or a Unix time; anything unreadable (null, "", "soon") reads as 0, unknown."""
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return raw
    try:
        return int(float(raw))
    except (TypeError, ValueError, OverflowError):
        return 0


def _resource_types(raw: Any) -> dict[str, str] | None:
    """`[{type, version}, …]` as a map. A missing or null version reads as "" (not a release's
    version), entries that are not objects with a type are skipped, and a value that is not a
    list at all is treated as null."""
    if not isinstance(raw, list):
        return None
    types: dict[str, str] = {}
    for entry in raw:
        if isinstance(entry, Mapping) and isinstance(entry.get("type"), str) and entry["type"]:
            version = entry.get("version")
            types[entry["type"]] = "" if version is None else str(version)
    return types


FINISHED_STATUSES = frozenset({"succeeded", "failed", "errored", "aborted"})


@dataclass(frozen=True, slots=True)  # a listing can hold 100,000 of them
class Build:
    """One entry of a build list. `name` is always a string ("311", "311.1", "check")."""

    id: int
    team_name: str
    name: str
    status: str
    job_name: str | None = None
    pipeline_name: str | None = None
    pipeline_id: int | None = None
    pipeline_instance_vars: Mapping[str, Any] | None = None
    start_time: int | None = None
    end_time: int | None = None
    rerun_of: int | None = None
    rerun_number: int = 0
    resource_name: str | None = None
    created_by: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Build:
        rerun_of = data.get("rerun_of") or {}
        return cls(
            id=int(data["id"]),
            team_name=str(data.get("team_name") or ""),
            name=str(data.get("name") or ""),
            status=str(data.get("status") or ""),
            job_name=data.get("job_name") or None,
            pipeline_name=data.get("pipeline_name") or None,
            pipeline_id=data.get("pipeline_id"),
            pipeline_instance_vars=data.get("pipeline_instance_vars") or None,
            start_time=data.get("start_time"),
            end_time=data.get("end_time"),
            rerun_of=rerun_of.get("id"),
            rerun_number=int(data.get("rerun_number") or 0),
            resource_name=data.get("resource_name") or None,
            created_by=data.get("created_by") or None,
        )

    @property
    def is_check(self) -> bool:
        """Persisted check builds show up in build lists; they are not job or one-off builds."""
        return self.name == "check"

    @property
    def finished(self) -> bool:
        """Done for good: a final status and an end time. Its events will never change."""
        return self.status in FINISHED_STATUSES and self.end_time is not None


@dataclass(frozen=True)
class Event:
    """One build event: the envelope's `event` type and its `data` object."""

    type: str
    data: Mapping[str, Any]
    version: str = ""
    event_id: str = ""

    @property
    def origin_id(self) -> str:
        origin = self.data.get("origin") or {}
        return str(origin.get("id") or "")


@dataclass(frozen=True)
class UserInfo:
    """`GET /api/v1/user`: who the credentials are and which roles they hold per team."""

    name: str
    is_admin: bool
    teams: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserInfo:
        teams = {str(k): tuple(v or ()) for k, v in (data.get("teams") or {}).items()}
        name = data.get("display_user_id") or data.get("user_name") or data.get("name") or ""
        return cls(name=str(name), is_admin=bool(data.get("is_admin")), teams=teams)

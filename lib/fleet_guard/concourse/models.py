"""Typed views of the ATC's JSON, tolerant of the fields the API leaves out or sets to null.

Only what Fleet Guard reads is kept; see shared/reference/concourse-api.md for the wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _int_or_none(value: Any) -> int | None:
    """A JSON integer, or None for anything else: a string where a time belongs is no time."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping_or_empty(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


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
            feature_flags={
                str(k): bool(v) for k, v in _mapping_or_empty(data.get("feature_flags")).items()
            },
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
        tags = data.get("tags")
        return cls(
            name=str(data["name"]),
            state=str(data.get("state") or ""),
            platform=str(data.get("platform") or ""),
            team=str(data.get("team") or ""),
            tags=tuple(str(t) for t in tags if t) if isinstance(tags, list) else (),
            version=str(data.get("version") or ""),
            start_time=_whole_number(data.get("start_time")),
            ephemeral=data.get("ephemeral") is True,
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
        build_id = data["id"]
        if not isinstance(build_id, int) or isinstance(build_id, bool):
            raise TypeError("a build id is an integer")
        return cls(
            id=build_id,
            team_name=str(data.get("team_name") or ""),
            name=str(data.get("name") or ""),
            status=str(data.get("status") or ""),
            job_name=_str_or_none(data.get("job_name")),
            pipeline_name=_str_or_none(data.get("pipeline_name")),
            pipeline_id=_int_or_none(data.get("pipeline_id")),
            pipeline_instance_vars=_mapping_or_empty(data.get("pipeline_instance_vars")) or None,
            start_time=_int_or_none(data.get("start_time")),
            end_time=_int_or_none(data.get("end_time")),
            rerun_of=_int_or_none(_mapping_or_empty(data.get("rerun_of")).get("id")),
            rerun_number=_int_or_none(data.get("rerun_number")) or 0,
            resource_name=_str_or_none(data.get("resource_name")),
            created_by=_str_or_none(data.get("created_by")),
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
        return str(_mapping_or_empty(self.data.get("origin")).get("id") or "")


@dataclass(frozen=True)
class UserInfo:
    """`GET /api/v1/user`: who the credentials are and which roles they hold per team."""

    name: str
    is_admin: bool
    teams: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserInfo:
        teams = {
            str(k): tuple(str(r) for r in v) if isinstance(v, list) else ()
            for k, v in _mapping_or_empty(data.get("teams")).items()
        }
        name = data.get("display_user_id") or data.get("user_name") or data.get("name") or ""
        return cls(name=str(name), is_admin=bool(data.get("is_admin")), teams=teams)

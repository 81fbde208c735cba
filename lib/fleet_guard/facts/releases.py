"""The Concourse release table: what each release bundles and which runtime it defaults to.

The API does not say which CNI plugins, containerd or runc a worker runs, nor its runtime. The
only way to know without asking the operator is the release the worker runs, looked up in
`data/releases.json`. That file is data with a confidence and references per entry, so a
corrected row is a data change, never a code change; nothing here names a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from fleet_guard import schema
from fleet_guard.advisories.model import Reference, VersionRange
from fleet_guard.advisories.versions import VersionError, in_range, parse_release

# How people write the components in prose, for fact details.
COMPONENT_NAMES: Mapping[str, str] = {
    "cni_plugins": "CNI plugins",
    "containerd": "containerd",
    "runc": "runc",
}


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def lowest_confidence(confidences: Iterable[Confidence]) -> Confidence:
    """A fact drawn from several rows is only as sure as the least sure of them."""
    order = list(Confidence)
    return max(confidences, key=order.index, default=Confidence.LOW)


@dataclass(frozen=True)
class ComponentRow:
    version: str
    confidence: Confidence
    references: tuple[Reference, ...]
    note: str = ""


@dataclass(frozen=True)
class RuntimeDefault:
    platform: str
    runtime: str
    confidence: Confidence
    references: tuple[Reference, ...]
    concourse: VersionRange | None = None
    note: str = ""

    def applies(self, concourse: str | None, platform: str | None) -> bool:
        """A row with a Concourse range cannot apply when the release is unknown or unreadable."""
        if platform != self.platform:
            return False
        if self.concourse is None:
            return True
        if not concourse:
            return False
        try:
            return in_range(concourse, self.concourse)
        except VersionError:
            return False


class ReleaseTableError(ValueError):
    """The packaged table is broken: a bug in Fleet Guard's data, not the operator's config."""


@dataclass(frozen=True)
class ReleaseTable:
    # The worker platform the bundled components apply to (the release tarballs are linux).
    platform: str
    releases: Mapping[str, Mapping[str, ComponentRow]]
    runtime_defaults: tuple[RuntimeDefault, ...]

    @classmethod
    def load(cls) -> ReleaseTable:
        """The packaged table. The tests validate it against schemas/releases.json; every
        check does not have to (that was most of a small check's start-up)."""
        path = resources.files("fleet_guard.facts").joinpath("data", "releases.json")
        return cls.from_data(json.loads(path.read_text("utf-8")), validate=False)

    @classmethod
    def from_data(cls, data: Any, *, validate: bool = True) -> ReleaseTable:
        problems = schema.problems(data, "releases", where="releases.json") if validate else []
        if problems:
            raise ReleaseTableError("; ".join(problems))
        releases: dict[str, dict[str, ComponentRow]] = {}
        for row in data["releases"]:
            key = _key(row["concourse"])
            if key in releases:
                raise ReleaseTableError(f"releases.json: Concourse {row['concourse']} listed twice")
            releases[key] = {
                name: ComponentRow(
                    version=c["version"],
                    confidence=Confidence(c["confidence"]),
                    references=_references(c["references"]),
                    note=c.get("note", ""),
                )
                for name, c in row["components"].items()
            }
        defaults = tuple(
            RuntimeDefault(
                platform=d["platform"],
                runtime=d["runtime"],
                confidence=Confidence(d["confidence"]),
                references=_references(d["references"]),
                concourse=VersionRange(**d["concourse"]) if "concourse" in d else None,
                note=d.get("note", ""),
            )
            for d in data["runtime_defaults"]
        )
        return cls(platform=data["platform"], releases=releases, runtime_defaults=defaults)

    def components(self, concourse_version: str | None) -> Mapping[str, ComponentRow]:
        """What the release bundles; an unknown or unreadable release bundles nothing we know."""
        if not concourse_version:
            return {}
        try:
            key = _key(concourse_version)
        except VersionError:
            return {}
        return self.releases.get(key, {})

    def runtime_default(
        self, concourse_version: str | None, platform: str | None
    ) -> RuntimeDefault | None:
        """The first row that fits, with its confidence and references for fact details."""
        for row in self.runtime_defaults:
            if row.applies(concourse_version, platform):
                return row
        return None

    def default_runtime(self, concourse_version: str | None, platform: str | None) -> str | None:
        row = self.runtime_default(concourse_version, platform)
        return row.runtime if row else None


def _key(version: str) -> str:
    """`v7.12.0`, `7.12` and `7.12.0+build` are the same release; pre-releases are not."""
    return str(parse_release(version))


def _references(raw: Sequence[Mapping[str, str]]) -> tuple[Reference, ...]:
    return tuple(Reference(type=r["type"], url=r["url"]) for r in raw)

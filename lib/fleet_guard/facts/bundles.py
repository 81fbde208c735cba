"""The bundle table: which release a linux worker runs, read from its bundled resource types.

At start a worker registers the base resource types of its own release tarball or image, with
their versions, and the ATC serves that list in `/api/v1/workers`. Each release bundles its own
versions, so the `{type: version}` map names the release of the running worker process, or the
class of releases that bundle the same map (see shared/reference/observing-workers.md §1).
That is one call for the whole fleet, and it sees a half-upgraded fleet as it really is.

A map equal to no row is a customised bundle (a custom `--resource-types` directory, an image
that adds its own type, a `dev` build): no release is claimed, and the nearest rows are named
as a hint. The rows are data (`data/bundles.json`), with a confidence and references each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fleet_guard import schema
from fleet_guard.advisories.model import Reference
from fleet_guard.advisories.versions import parse_release
from fleet_guard.facts.releases import Confidence, lowest_confidence

# A customised bundle names at most this many nearest rows, and this many differences.
_MAX_NEAREST = 3
_MAX_DIFFERENCES = 4


class BundleTableError(ValueError):
    """The packaged table is broken: a bug in Fleet Guard's data, not the operator's config."""


@dataclass(frozen=True)
class BundleRow:
    concourse: str
    resource_types: Mapping[str, str]
    confidence: Confidence
    references: tuple[Reference, ...]
    note: str = ""


@dataclass(frozen=True)
class BundleMatch:
    """What a worker's resource types say about its release.

    `releases` is the class the map matches exactly (table order), empty when none does; then
    `nearest` holds the closest rows and `differences` how the worker's map departs from the
    first of them, for a person to judge.
    """

    releases: tuple[str, ...]
    confidence: Confidence | None = None
    nearest: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()

    @property
    def matched(self) -> bool:
        return bool(self.releases)

    @property
    def label(self) -> str:
        return release_class_label(self.releases)


def release_class_label(releases: Sequence[str]) -> str:
    """`7.12.0` for one release, `7.11.0..7.11.2` for a class (".." cannot be read as a version)."""
    if not releases:
        return ""
    if len(releases) == 1:
        return releases[0]
    return f"{releases[0]}..{releases[-1]}"


@dataclass(frozen=True)
class BundleTable:
    platform: str
    rows: tuple[BundleRow, ...]

    @classmethod
    def load(cls) -> BundleTable:
        """The packaged table, read once (the tests validate it against schemas/bundles.json)."""
        return _packaged()

    @classmethod
    def from_data(cls, data: Any, *, validate: bool = True) -> BundleTable:
        problems = schema.problems(data, "bundles", where="bundles.json") if validate else []
        if problems:
            raise BundleTableError("; ".join(problems))
        rows: list[BundleRow] = []
        for raw in data["releases"]:
            if any(r.concourse == raw["concourse"] for r in rows):
                raise BundleTableError(f"bundles.json: Concourse {raw['concourse']} listed twice")
            rows.append(
                BundleRow(
                    concourse=raw["concourse"],
                    resource_types=dict(raw["resource_types"]),
                    confidence=Confidence(raw["confidence"]),
                    references=tuple(Reference(r["type"], r["url"]) for r in raw["references"]),
                    note=raw.get("note", ""),
                )
            )
        rows.sort(key=lambda r: parse_release(r.concourse))
        return cls(platform=data["platform"], rows=tuple(rows))

    def match(self, types: Mapping[str, str]) -> BundleMatch:
        """The class whose map equals `types`, else the nearest rows and how they differ."""
        exact = [r for r in self.rows if dict(r.resource_types) == dict(types)]
        if exact:
            return BundleMatch(
                releases=tuple(r.concourse for r in exact),
                confidence=lowest_confidence(r.confidence for r in exact),
            )
        if not types:
            return BundleMatch(releases=())
        distance = {r.concourse: len(_differences(types, r.resource_types)) for r in self.rows}
        best = min(distance.values())
        # Newest first among equals: a customised image is usually built on a recent release.
        nearest = [r for r in reversed(self.rows) if distance[r.concourse] == best]
        return BundleMatch(
            releases=(),
            nearest=tuple(r.concourse for r in nearest[:_MAX_NEAREST]),
            differences=tuple(_differences(types, nearest[0].resource_types)),
        )


def _differences(types: Mapping[str, str], row: Mapping[str, str]) -> list[str]:
    """How a worker's map departs from a row, as a person would say it."""
    found: list[str] = []
    for name in sorted(set(types) | set(row)):
        if name not in row:
            found.append(f"extra type {name} {types[name] or '(no version)'}")
        elif name not in types:
            found.append(f"no {name}")
        elif types[name] != row[name]:
            found.append(f"{name} {types[name] or '(no version)'} instead of {row[name]}")
    return found


def describe_mismatch(match: BundleMatch, count: int) -> str:
    """Why a worker's bundle names no release, for the fact detail and the report."""
    if not count:
        return "the worker registered no bundled resource types"
    if not match.nearest:
        return f"its {count} bundled resource types match no release"
    shown = list(match.differences[:_MAX_DIFFERENCES])
    if len(match.differences) > _MAX_DIFFERENCES:
        shown.append(f"{len(match.differences) - _MAX_DIFFERENCES} more")
    return (
        f"its {count} bundled resource types match no release: a customised bundle "
        f"(nearest Concourse {' or '.join(match.nearest)}: {', '.join(shown)})"
    )


@cache
def _packaged() -> BundleTable:
    path = resources.files("fleet_guard.facts").joinpath("data", "bundles.json")
    return BundleTable.from_data(json.loads(path.read_text("utf-8")), validate=False)

"""Evidence already found in finished builds, and the last listing, kept between checks.

Concourse reuses a resource's check container from one check to the next, and a finished
build's events never change. Remembering what each finished build showed saves one event
stream per errored build per check: with `check_every: 10m` and a 24h window, an errored
build would otherwise be read 144 times. Remembering the listing (each endpoint's builds in
the window and the newest build ID seen) lets the next check ask only for what is new or was
unfinished, one request instead of re-listing the window. The cache is only an optimisation:
a missing, unreadable or foreign file, or one older than the window, means listing and
reading afresh, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from fleet_guard import __version__
from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.models import Build
from fleet_guard.concourse.paging import BuildListing, Series
from fleet_guard.evidence import Evidence
from fleet_guard.facts.witnesses import WitnessTable
from fleet_guard.log import Log

# Where the cache lives; tests point it at their own directory.
CACHE_DIR_ENV = "FLEET_GUARD_CACHE_DIR"
# The signature search's section of the file (never a build ID, which is all digits).
_SIGNATURES = "signatures"
# The listing's section, and the shape of its stored builds (one array per build).
_LISTING = "listing"
_LISTING_FORMAT = 1
_BUILD_FIELDS = tuple(f.name for f in fields(Build))
# A temporary file this old was left by a check that was killed mid-save.
_STALE_TEMPORARY = 600


class EvidenceCache:
    def __init__(self, path: Path | None, log: Log) -> None:
        self._path = path
        self._log = log
        self._lock = threading.Lock()
        self._builds: dict[str, list[dict[str, Any]]] = self._read() if path else {}
        self.hits = 0
        # For signatures/: what each build told the search, and first/last seen per template.
        stored: Any = self._builds.pop(_SIGNATURES, None)
        section: dict[str, Any] = stored if isinstance(stored, dict) else {}
        records, memory = section.get("builds"), section.get("memory")
        self._records: dict[str, Any] = records if isinstance(records, dict) else {}
        self.memory: dict[str, Any] = memory if isinstance(memory, dict) else {}
        self._listing: Any = self._builds.pop(_LISTING, None)

    @classmethod
    def for_check(cls, url: str, advisories: Sequence[Advisory], log: Log) -> EvidenceCache:
        """One file per Concourse and rule set: a changed rule must never reuse old answers."""
        rules = sorted(
            (
                a.id,
                [(p.event, p.regex.pattern, sorted(p.implies.items())) for p in a.patterns],
                list(a.explained_by),
            )
            for a in advisories
        )
        witnesses = [(w.fragment, sorted(w.implies.items())) for w in WitnessTable.load().witnesses]
        key = hashlib.sha256(json.dumps([__version__, url, rules, witnesses]).encode()).hexdigest()
        key = key[:20]
        directory = Path(os.environ.get(CACHE_DIR_ENV) or tempfile.gettempdir())
        return cls(directory / f"fleet-guard-evidence-{key}.json", log)

    def lookup(self, build: Build) -> list[Evidence] | None:
        """What the build showed last time, if it had finished then; None: read its events."""
        stored = self._builds.get(str(build.id))
        if not isinstance(stored, list) or not _finished(build):
            return None
        try:
            found = [_evidence(item, build) for item in stored]
        except (TypeError, KeyError, ValueError, AttributeError):
            self._log.debug(f"evidence cache: build {build.id} unreadable; reading it again")
            return None
        with self._lock:  # builds are read in parallel
            self.hits += 1
        return found

    def store(self, build: Build, evidence: Iterable[Evidence]) -> None:
        if _finished(build):
            stored = [asdict(e) for e in evidence]
            with self._lock:
                self._builds[str(build.id)] = stored

    def lookup_record(self, build: Build) -> Any:
        """The signature search's record of a finished build (its JSON), or None."""
        return self._records.get(str(build.id)) if _finished(build) else None

    def store_record(self, build: Build, record: Any) -> None:
        if _finished(build):
            with self._lock:
                self._records[str(build.id)] = record

    def known_listing(
        self, teams: Sequence[str], window_seconds: int, max_builds: int, *, now: float
    ) -> dict[str, Series] | None:
        """The last check's listing to build on; None means list cold.

        Cold when there is none, it is damaged, it was made for other teams, another window
        or max_builds, or it is older than the window (every build in it may have left, and
        builds may have come and gone unseen). A listing cut at max_builds is built on like
        any other: the newest max_builds of what it knew and what is new are the newest of all.
        """
        state = self._listing
        if not isinstance(state, dict) or state.get("format") != _LISTING_FORMAT:
            return None
        settings = (state.get("teams"), state.get("window"), state.get("max_builds"))
        if settings != (list(teams), window_seconds, max_builds):
            return None
        at = state.get("at")
        if not isinstance(at, int | float) or not now - window_seconds < at <= now + 60:
            return None
        try:
            known = {
                str(path): Series(
                    _count(entry["newest"]), tuple(_build(r) for r in entry["builds"])
                )
                for path, entry in state["series"].items()
            }
        except (TypeError, KeyError, ValueError, AttributeError) as error:
            self._log.debug(f"evidence cache: listing unreadable ({error}); listing afresh")
            return None
        self._listing = None  # its builds live on in `known`, and remember_listing follows
        return known

    def remember_listing(
        self,
        listing: BuildListing,
        teams: Sequence[str],
        window_seconds: int,
        max_builds: int,
        *,
        now: float,
    ) -> None:
        """Keeps `listing` for the next check (written by `save`)."""
        self._listing = {
            "format": _LISTING_FORMAT,
            "teams": list(teams),
            "window": window_seconds,
            "max_builds": max_builds,
            "at": now,
            "series": {
                path: {
                    "newest": series.newest,
                    "builds": [[getattr(b, f) for f in _BUILD_FIELDS] for b in series.builds],
                }
                for path, series in (listing.series or {}).items()
            },
        }

    def save(self, listed: Iterable[Build]) -> None:
        """Keeps only builds still listed, so the file never outgrows the window."""
        if self._path is None:
            return
        keep = {str(b.id) for b in listed}
        builds: dict[str, Any] = {k: v for k, v in self._builds.items() if k in keep}
        builds[_SIGNATURES] = {
            "builds": {k: v for k, v in self._records.items() if k in keep},
            "memory": self.memory,
        }
        if self._listing is not None:
            builds[_LISTING] = self._listing
        self._remove_stale_temporaries()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(builds), encoding="utf-8")
            temporary.chmod(0o600)
            temporary.replace(self._path)
        except OSError as error:
            self._log.debug(f"evidence cache not saved ({error}); the next check reads again")

    def _remove_stale_temporaries(self) -> None:
        """Checks killed while saving leave `<name>.<pid>.tmp` behind; never let them pile up."""
        assert self._path is not None
        now = time.time()
        try:
            for leftover in self._path.parent.glob(f"{self._path.stem}.*.tmp"):
                if now - leftover.stat().st_mtime > _STALE_TEMPORARY:
                    leftover.unlink()
        except OSError as error:
            self._log.debug(f"evidence cache: could not remove an old temporary file ({error})")

    def _read(self) -> dict[str, list[dict[str, Any]]]:
        assert self._path is not None
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as error:
            self._log.debug(f"evidence cache unreadable ({error}); starting afresh")
            return {}
        return data if isinstance(data, dict) else {}


def _finished(build: Build) -> bool:
    return build.finished


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a build ID: {value!r}")
    return value


def _build(row: Any) -> Build:
    """One stored build; anything off (a hand-edited or truncated file) raises ValueError."""
    if not isinstance(row, list) or len(row) != len(_BUILD_FIELDS):
        raise ValueError("a stored build has the wrong shape")
    build = Build(*row)
    _count(build.id)
    if not all(isinstance(v, str) for v in (build.team_name, build.name, build.status)):
        raise ValueError(f"stored build {build.id} has a wrong field")
    for value in (build.start_time, build.end_time, build.rerun_of):
        if value is not None:
            _count(value)
    return build


_TYPES: dict[str, tuple[type, ...]] = {
    "advisory": (str,),
    "build_id": (int,),
    "team": (str,),
    "pipeline": (str, type(None)),
    "job": (str, type(None)),
    "build": (str,),
    "worker": (str, type(None)),
    "message": (str,),
    "url": (str,),
    "time": (int, type(None)),
}


def _evidence(item: Any, build: Build) -> Evidence:
    """One stored evidence item, checked field by field: a foreign or damaged file must not
    put a map where a worker name belongs."""
    if not isinstance(item, dict) or item.get("build_id") != build.id:
        raise ValueError("not this build's evidence")
    for key, types in _TYPES.items():
        if not isinstance(item[key], types) or isinstance(item[key], bool):
            raise TypeError(f"{key} has the wrong type")
    implies = item.get("implies") or {}
    if not isinstance(implies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in implies.items()
    ):
        raise TypeError("implies is not a map of strings")
    return Evidence(**{**item, "implies": dict(implies)})

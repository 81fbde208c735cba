"""Evidence already found in finished builds, kept between checks.

Concourse reuses a resource's check container from one check to the next, and a finished
build's events never change. Remembering what each finished build showed saves one event
stream per errored build per check: with `check_every: 10m` and a 24h window, an errored
build would otherwise be read 144 times. The cache is only an optimisation: a missing,
unreadable or foreign file means reading the streams again, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleet_guard import __version__
from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.models import Build
from fleet_guard.evidence import Evidence
from fleet_guard.facts.witnesses import WitnessTable
from fleet_guard.log import Log

# Where the cache lives; tests point it at their own directory.
CACHE_DIR_ENV = "FLEET_GUARD_CACHE_DIR"
_FINISHED = frozenset({"succeeded", "failed", "errored", "aborted"})
# The signature search's section of the file (never a build ID, which is all digits).
_SIGNATURES = "signatures"


class EvidenceCache:
    def __init__(self, path: Path | None, log: Log) -> None:
        self._path = path
        self._log = log
        self._builds: dict[str, list[dict[str, Any]]] = self._read() if path else {}
        self.hits = 0
        # For signatures/: what each build told the search, and first/last seen per template.
        stored: Any = self._builds.pop(_SIGNATURES, None)
        section: dict[str, Any] = stored if isinstance(stored, dict) else {}
        records, memory = section.get("builds"), section.get("memory")
        self._records: dict[str, Any] = records if isinstance(records, dict) else {}
        self.memory: dict[str, Any] = memory if isinstance(memory, dict) else {}

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
        if stored is None or not _finished(build):
            return None
        try:
            found = [_evidence(item) for item in stored]
        except (TypeError, KeyError):
            return None
        self.hits += 1
        return found

    def store(self, build: Build, evidence: Iterable[Evidence]) -> None:
        if _finished(build):
            self._builds[str(build.id)] = [asdict(e) for e in evidence]

    def lookup_record(self, build: Build) -> Any:
        """The signature search's record of a finished build (its JSON), or None."""
        return self._records.get(str(build.id)) if _finished(build) else None

    def store_record(self, build: Build, record: Any) -> None:
        if _finished(build):
            self._records[str(build.id)] = record

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
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(builds), encoding="utf-8")
            temporary.chmod(0o600)
            temporary.replace(self._path)
        except OSError as error:
            self._log.debug(f"evidence cache not saved ({error}); the next check reads again")

    def _read(self) -> dict[str, list[dict[str, Any]]]:
        assert self._path is not None
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            self._log.debug(f"evidence cache unreadable ({error}); starting afresh")
            return {}
        return data if isinstance(data, dict) else {}


def _finished(build: Build) -> bool:
    return build.status in _FINISHED and build.end_time is not None


def _evidence(item: dict[str, Any]) -> Evidence:
    return Evidence(**{**item, "implies": dict(item.get("implies") or {})})

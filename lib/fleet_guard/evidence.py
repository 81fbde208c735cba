"""Evidence: advisory patterns found in the events of failed builds, attributed to a worker.

Matching is streaming: events are consumed one at a time and only the little state needed for
attribution (the worker each step was placed on, a short tail of each step's log) is kept, so a
huge build log never sits in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from fleet_guard.advisories.model import Advisory, EvidencePattern
from fleet_guard.concourse.models import Build, Event
from fleet_guard.redact import Redactor

# The ATC prefixes container-creation failures with the worker it asked
# (atc/worker/gardenruntime/worker.go); that beats any other attribution.
_ON_WORKER = re.compile(r"\bon worker ([^\s:]+):")

# Where a container-creation failure starts. The ATC wraps every error from asking a worker for a
# container in `find or create container on worker NAME: ` (atc/worker/gardenruntime/worker.go
# FindOrCreateContainer), behind at most one step prefix such as `run check: `. A message that
# reaches the build without that wrapper can still only come from creating the container when it
# starts with the containerd backend's creation steps (worker/runtime/backend.go Create,
# cni_network.go) or with libcni's own `plugin type="..." failed (add)` wording. The same CNI
# words anywhere else (a task's output, the stderr of a resource script that talks to another
# cluster) describe some other machine, not the worker.
_CONTAINER_CREATION = re.compile(
    r"(?:[a-z][a-z ]{0,30}: )?find or create container on worker [^\s:]+: "
    r"|(?:new container|new task|starting task|network add|cni net setup): "
    r'|plugin type="'
)

# A failed resource script's error event carries its stderr (atc/resource ErrResourceScriptFailed).
_RESOURCE_SCRIPT = re.compile(r"resource script '[^']*' failed")

# Log events are arbitrary chunks; a phrase can be split across two of them. Keeping this much
# of each step's previous output lets a log pattern match across the split.
_LOG_TAIL = 2048

MAX_MESSAGE = 500


@dataclass(frozen=True)
class Evidence:
    advisory: str
    build_id: int
    team: str
    pipeline: str | None
    job: str | None
    build: str
    worker: str | None
    message: str
    url: str
    time: int | None = None
    # Facts the match proves about `worker` (e.g. a CNI error proves the containerd runtime).
    implies: Mapping[str, str] = field(default_factory=dict)
    # Set (to the fragment) on a runtime witness: an error that proves a fact, not evidence for
    # any advisory (`advisory` is then ""). Kept with the evidence so it is cached alike.
    witness: str = ""


@dataclass(frozen=True)
class Witness:
    """Error text that proves facts about the worker it is attributed to (facts/witnesses.py)."""

    fragment: str
    implies: Mapping[str, str]
    origin: str = ""


def is_container_creation(message: str) -> bool:
    """Whether an `error` event's message is the failure to create the step's container."""
    return _CONTAINER_CREATION.match(message.lstrip()) is not None


def explains(pattern: EvidencePattern, event_type: str, text: str) -> bool:
    """Whether one pattern matches one event, as the matcher applies it (event type, the
    container-creation requirement, then the regex); for callers that need the same answer."""
    if pattern.event != event_type:
        return False
    if pattern.container_creation and not (event_type == "error" and is_container_creation(text)):
        return False
    return pattern.regex.search(text) is not None


def builds_to_read(builds: Iterable[Build], statuses: Collection[str]) -> list[Build]:
    """Only builds whose status can carry the failure are worth an event stream each."""
    return [b for b in builds if b.status in statuses and not b.is_check]


def build_url(base_url: str, build: Build) -> str:
    """The page a person opens: the job build page when there is a job, else /builds/:id."""
    base = base_url.rstrip("/")
    if not (build.job_name and build.pipeline_name):
        return f"{base}/builds/{build.id}"
    url = (
        f"{base}/teams/{quote(build.team_name, safe='')}"
        f"/pipelines/{quote(build.pipeline_name, safe='')}"
        f"/jobs/{quote(build.job_name, safe='')}/builds/{quote(build.name, safe='')}"
    )
    if build.pipeline_instance_vars:
        query = "&".join(
            f"vars.{quote(str(k), safe='')}={quote(json.dumps(v, separators=(',', ':')), safe='')}"
            for k, v in sorted(build.pipeline_instance_vars.items())
        )
        url = f"{url}?{query}"
    return url


class EvidenceMatcher:
    """Applies every advisory's patterns to one build's events at a time."""

    def __init__(
        self,
        advisories: Sequence[Advisory],
        *,
        base_url: str,
        redact: Redactor | None = None,
        max_message: int = MAX_MESSAGE,
        witnesses: Sequence[Witness] = (),
    ) -> None:
        self._advisories = [a for a in advisories if a.patterns]
        self._base_url = base_url
        self._redact = redact or Redactor()
        self._max_message = max_message
        self._witnesses = tuple(witnesses)
        self.event_types = frozenset(p.event for a in self._advisories for p in a.patterns) | (
            {"error"} if self._witnesses else set()
        )
        # What match_build reads: the patterns' event types, plus where each step was placed.
        self.wanted_events = self.event_types | {"selected-worker"}

    def match_build(self, build: Build, events: Iterable[Event]) -> list[Evidence]:
        """Every advisory/worker pair found in the build, once each, in event order."""
        placed_on: dict[str, str] = {}
        log_tails: dict[str, str] = {}
        found: dict[tuple[str, str | None], Evidence] = {}
        for event in events:
            if event.type == "selected-worker":
                worker = event.data.get("selected_worker")
                if worker:
                    placed_on[event.origin_id] = str(worker)
                continue
            if event.type not in self.event_types:
                continue
            text = self._event_text(event, log_tails)
            for advisory, pattern in self._explained_matches(event.type, text):
                worker = attribute(text if event.type == "error" else "", event, placed_on)
                key = (advisory.id, worker)
                if key not in found:
                    found[key] = self._evidence(advisory, pattern, build, worker, event, text)
            if event.type == "error":
                self._witness(build, event, text, placed_on, found)
        return list(found.values())

    def _witness(
        self,
        build: Build,
        event: Event,
        text: str,
        placed_on: Mapping[str, str],
        found: dict[tuple[str, str | None], Evidence],
    ) -> None:
        """Every error event, matched by an advisory or not, may prove its worker's runtime;
        except the stderr of a failed resource script, which speaks of whatever the resource
        talks to (another cluster's containerd), not of the worker."""
        if _RESOURCE_SCRIPT.search(text):
            return
        witness = next((w for w in self._witnesses if w.fragment in text), None)
        worker = attribute(text, event, placed_on) if witness else None
        if witness is None or worker is None:
            return
        key = (f"witness {sorted(witness.implies.items())}", worker)
        if key not in found:
            item = self._evidence(None, None, build, worker, event, text)
            found[key] = replace(item, implies=dict(witness.implies), witness=witness.fragment)

    @staticmethod
    def _event_text(event: Event, log_tails: dict[str, str]) -> str:
        if event.type == "log":
            origin = event.origin_id
            text = log_tails.get(origin, "") + str(event.data.get("payload") or "")
            log_tails[origin] = text[-_LOG_TAIL:]
            return text
        return str(event.data.get("message") or "")

    def _explained_matches(
        self, event_type: str, text: str
    ) -> list[tuple[Advisory, EvidencePattern]]:
        """Matches on one event, minus those another matching advisory already explains."""
        matches: dict[str, tuple[Advisory, EvidencePattern]] = {}
        for advisory in self._advisories:
            for pattern in advisory.patterns:
                if explains(pattern, event_type, text):
                    matches.setdefault(advisory.id, (advisory, pattern))
                    break
        return [
            (advisory, pattern)
            for advisory, pattern in matches.values()
            if not any(other in matches for other in advisory.explained_by)
        ]

    def _evidence(
        self,
        advisory: Advisory | None,
        pattern: EvidencePattern | None,
        build: Build,
        worker: str | None,
        event: Event,
        text: str,
    ) -> Evidence:
        message = self._redact(text.strip())
        if len(message) > self._max_message:
            message = message[: self._max_message - 1] + "…"
        time = event.data.get("time")
        return Evidence(
            advisory=advisory.id if advisory else "",
            build_id=build.id,
            team=build.team_name,
            pipeline=build.pipeline_name,
            job=build.job_name,
            build=build.name,
            worker=worker,
            message=message,
            url=build_url(self._base_url, build),
            time=int(time) if isinstance(time, int) else build.end_time,
            implies=dict(pattern.implies) if worker and pattern else {},
        )


def attribute(message: str, event: Event, placed_on: Mapping[str, str]) -> str | None:
    """`on worker NAME:` in the message, else the worker the same step was placed on."""
    named = _ON_WORKER.search(message)
    if named:
        return named.group(1)
    return placed_on.get(event.origin_id)

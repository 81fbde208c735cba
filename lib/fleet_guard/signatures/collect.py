"""Per-build records gathered while an event stream is read: error templates and placements.

Rides along the stream the evidence matcher already reads (no second request, no buffering):
`ErrorCollector.observe` passes every event through unchanged and notes what it needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet_guard.advisories.model import Advisory
from fleet_guard.concourse.models import Build, Event
from fleet_guard.evidence import MAX_MESSAGE, attribute, explains
from fleet_guard.redact import Redactor
from fleet_guard.signatures.templates import template_of

# An aborted step's error: a person pressed abort, nothing failed.
ABORTED_MESSAGE = "interrupted"
_FINISHED = frozenset({"succeeded", "failed", "errored", "aborted"})


@dataclass(frozen=True)
class ErrorRecord:
    """One `error` event no advisory explains, reduced to its template."""

    template: str
    message: str
    worker: str | None
    time: int | None


@dataclass
class BuildRecord:
    """What one build tells the signature search; JSON-able for the evidence cache."""

    errors: list[ErrorRecord] = field(default_factory=list)
    # Steps placed per worker, not counting steps that ended in an error: work, not failures.
    placements: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "errors": [[e.template, e.message, e.worker, e.time] for e in self.errors],
            "placements": dict(self.placements),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildRecord:
        """Raises TypeError/ValueError/KeyError on a damaged entry: the caller reads again."""
        errors = [
            ErrorRecord(
                str(t), str(m), None if w is None else str(w), None if at is None else int(at)
            )
            for t, m, w, at in data["errors"]
        ]
        placements = {str(k): int(v) for k, v in dict(data["placements"]).items()}
        return cls(errors, placements)


class ErrorCollector:
    """Reduces the unexplained `error` events of read builds to templates, and counts where
    each step was placed (the base rate)."""

    # The event types `observe` reads; a stream may skip decoding the others.
    event_types = frozenset({"error", "selected-worker"})

    def __init__(
        self,
        advisories: Sequence[Advisory],
        *,
        workers: Collection[str] = (),
        redact: Redactor | None = None,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self._explains = [p for a in advisories for p in a.patterns if p.event == "error"]
        self._workers = set(workers)
        self._redact = redact or Redactor()
        self._max_message = max_message

    def observe(
        self, build: Build, events: Iterable[Event], record: BuildRecord, *, errors: bool = True
    ) -> Iterator[Event]:
        """Yields `events` unchanged, filling `record` as they pass; `errors=False` for a
        base-rate sample build, whose failures are not what the scan looks at."""
        placed_on: dict[str, str] = {}
        failed: set[str] = set()
        try:
            for event in events:
                if event.type == "selected-worker":
                    worker = event.data.get("selected_worker")
                    if worker:
                        placed_on[event.origin_id] = str(worker)
                elif event.type == "error":
                    failed.add(event.origin_id)
                    if errors and build.status != "aborted":
                        self._error(event, placed_on, record)
                yield event
        finally:
            for origin, worker in placed_on.items():
                if origin not in failed:
                    record.placements[worker] = record.placements.get(worker, 0) + 1

    def _error(self, event: Event, placed_on: Mapping[str, str], record: BuildRecord) -> None:
        text = str(event.data.get("message") or "").strip()
        if not text or text == ABORTED_MESSAGE:
            return
        if any(explains(pattern, "error", text) for pattern in self._explains):
            return
        worker = attribute(text, event, placed_on)
        message = self._redact(text)
        if len(message) > self._max_message:
            message = message[: self._max_message - 1] + "…"
        time = event.data.get("time")
        known = self._workers | set(placed_on.values())
        record.errors.append(
            ErrorRecord(
                template=template_of(self._redact(text), known),
                message=message,
                worker=worker,
                time=time if isinstance(time, int) else None,
            )
        )


def sample_builds(builds: Iterable[Build], exclude: Collection[int], size: int) -> list[Build]:
    """A bounded, deterministic sample of finished builds for the base rate.

    Chosen by a hash of the build ID, not by position, so that the sample barely changes from
    one check to the next as the window moves (and cached placements stay useful), and the same
    listing always gives the same sample.
    """
    candidates = [
        b
        for b in builds
        if b.id not in exclude
        and not b.is_check
        and b.status in _FINISHED
        and b.end_time is not None
    ]
    candidates.sort(key=lambda b: hashlib.sha256(str(b.id).encode()).digest())
    return sorted(candidates[: max(0, size)], key=lambda b: b.id)

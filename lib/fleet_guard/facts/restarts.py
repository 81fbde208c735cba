"""Evidence belongs to a process: a worker's `start_time` bounds what its past errors prove.

`/api/v1/workers` gives each worker's `start_time`, the Unix time its process started, kept
across re-registrations. An error from before it was produced by a process that no longer
runs (restarted, or upgraded: the bundle then names the new release). It proves nothing about
the running one, neither a fact (no implied runtime) nor an outcome, and is kept as history:
what lets the report say `resolved` instead of crying wolf after the fix was rolled out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fleet_guard.concourse.models import Worker
from fleet_guard.evidence import Evidence


@dataclass(frozen=True)
class SplitEvidence:
    # From the running worker processes (or whose worker or time is unknown: kept, to be safe).
    current: tuple[Evidence, ...]
    # From before the current start of the worker it is attributed to.
    history: tuple[Evidence, ...]


def split_by_restart(evidence: Sequence[Evidence], workers: Sequence[Worker]) -> SplitEvidence:
    """Current evidence and history, by each registered worker's `start_time`.

    Evidence on a worker no longer registered, without a time, or on a worker whose start
    time is unknown (0) stays current: unknown never clears anything.
    """
    started = {w.name: w.start_time for w in workers if w.start_time > 0}
    current: list[Evidence] = []
    history: list[Evidence] = []
    for item in evidence:
        start = started.get(item.worker or "")
        if start is not None and item.time is not None and item.time < start:
            history.append(item)
        else:
            current.append(item)
    return SplitEvidence(tuple(current), tuple(history))


def started_at(unix: int) -> str:
    """A start time as people and report.json read it: ISO 8601, UTC."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

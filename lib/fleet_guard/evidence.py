"""Evidence: advisory patterns found in the events of failed builds, attributed to a worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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

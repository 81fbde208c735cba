"""Per-worker facts, each with where it came from. Unknown stays unknown: never guess."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

FACT_NAMES: tuple[str, ...] = (
    "concourse",
    "runtime",
    "cni_plugins",
    "containerd",
    "runc",
    "kernel",
    "cgroup",
    "platform",
    "state",
    "worker_api",
)

# Facts an operator may declare in `source.facts` / `source.worker_facts`.
DECLARABLE_FACTS: tuple[str, ...] = (
    "concourse",
    "runtime",
    "cni_plugins",
    "containerd",
    "runc",
    "kernel",
    "cgroup",
)


class FactSource(StrEnum):
    """Precedence, strongest first: what the operator declared beats what we saw or inferred."""

    OPERATOR = "operator"
    OBSERVED = "observed"
    INFERRED = "inferred"


@dataclass(frozen=True)
class Fact:
    value: str
    source: FactSource
    # Why we believe it, for a person: "source.worker_facts[1]", "release table 7.12.0 (high)".
    detail: str = ""


WorkerFacts = Mapping[str, Fact]

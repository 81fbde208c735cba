"""What a fact is: a value, where it came from, and why we believe it.

Kept apart from the gathering so that the tables and matchers in this package (and the rule
engine above it) can speak of facts without importing how they are gathered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

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

# Every fact a worker can have: the declarable ones plus what only the API can tell.
# `uptime`: seconds from the worker's `start_time` to the scan, so a rule can name a worker
# that stalled right after it started.
FACT_NAMES: tuple[str, ...] = (*DECLARABLE_FACTS, "platform", "state", "worker_api", "uptime")


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
    # When `value` names a class of releases that cannot be told apart (`7.11.0..7.11.2`, from
    # the worker's bundled resource types), its members; a rule holds only if it holds for all.
    members: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every value the fact may stand for: the class members, or the value itself."""
        return self.members or (self.value,)


WorkerFacts = Mapping[str, Fact]


@dataclass(frozen=True)
class FactConflict:
    """Two sources disagree about one fact of one worker; `kept` won by precedence."""

    worker: str
    fact: str
    kept: Fact
    ignored: Fact

    def describe(self) -> str:
        return (
            f"worker {self.worker}: {self.fact} is {self.kept.value!r} ({self.kept.source}: "
            f"{self.kept.detail}) but {self.ignored.source} says {self.ignored.value!r} "
            f"({self.ignored.detail}); keeping {self.kept.value!r}"
        )


@dataclass(frozen=True)
class FleetFacts:
    workers: dict[str, dict[str, Fact]]
    conflicts: tuple[FactConflict, ...] = ()

"""Runtime witnesses: error text only one container runtime writes (reference §3).

The ATC's container-creation prefix (`find or create container on worker NAME: `) is the same
for every runtime, but what follows it is not: `cni net setup: ` comes only from containerd's
CNI networking, `runc run: exit status` only from guardian. Every error event of every build
read is checked against these fragments, not only events an advisory matches, so a worker's
runtime is observed as soon as it fails in any runtime-specific way. The fragments are data
(`data/witnesses.json`, with where each comes from), so a new one is a new row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fleet_guard import schema
from fleet_guard.evidence import Witness


class WitnessTableError(ValueError):
    """The packaged file is broken: a bug in Fleet Guard's data."""


@dataclass(frozen=True)
class WitnessTable:
    witnesses: tuple[Witness, ...]

    @classmethod
    def load(cls) -> WitnessTable:
        """The packaged table, read once (the tests validate it against schemas/witnesses.json)."""
        return _packaged()

    @classmethod
    def from_data(cls, data: Any, *, validate: bool = True) -> WitnessTable:
        problems = schema.problems(data, "witnesses", where="witnesses.json") if validate else []
        if problems:
            raise WitnessTableError("; ".join(problems))
        fragments = [w["fragment"] for w in data["witnesses"]]
        twice = sorted({f for f in fragments if fragments.count(f) > 1})
        if twice:
            raise WitnessTableError(f"witnesses.json: {twice[0]!r} listed twice")
        return cls(
            tuple(
                Witness(w["fragment"], {"runtime": w["runtime"]}, w["origin"])
                for w in data["witnesses"]
            )
        )


@cache
def _packaged() -> WitnessTable:
    path = resources.files("fleet_guard.facts").joinpath("data", "witnesses.json")
    return WitnessTable.from_data(json.loads(path.read_text("utf-8")), validate=False)

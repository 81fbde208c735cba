"""Per-worker facts with provenance, below the rule engine that consumes them.

- `model`: what a fact is (value, source, detail) and the names of the facts.
- `releases`: the release table (release → bundled components, runtime defaults), as data.
- `gather`: gathering each worker's facts from the operator, the API, evidence and the tables.

The flow runs one way: this package reads the snapshot and evidence and knows nothing of rules;
`advisories/` reads facts. The names below are the package's public face, so callers import
`from fleet_guard.facts import Fact, gather_facts`, whichever module holds them.
"""

from fleet_guard.facts.gather import build_facts, gather_facts, matching_override, web_facts
from fleet_guard.facts.model import (
    DECLARABLE_FACTS,
    FACT_NAMES,
    Fact,
    FactConflict,
    FactSource,
    FleetFacts,
    WorkerFacts,
)
from fleet_guard.facts.releases import (
    COMPONENT_NAMES,
    ComponentRow,
    Confidence,
    ReleaseTable,
    ReleaseTableError,
    RuntimeDefault,
)

__all__ = [
    "COMPONENT_NAMES",
    "DECLARABLE_FACTS",
    "FACT_NAMES",
    "ComponentRow",
    "Confidence",
    "Fact",
    "FactConflict",
    "FactSource",
    "FleetFacts",
    "ReleaseTable",
    "ReleaseTableError",
    "RuntimeDefault",
    "WorkerFacts",
    "build_facts",
    "gather_facts",
    "matching_override",
    "web_facts",
]

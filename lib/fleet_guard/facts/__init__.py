"""Per-worker facts with provenance, below the rule engine that consumes them.

- `model`: what a fact is (value, source, detail) and the names of the facts.
- `releases`: the release table (release → bundled components, runtime defaults), as data.
- `gather`: gathering each worker's facts from the operator, the API, evidence and the tables.
- `bundles`: the release → bundled resource types table, and matching a worker's bundle.
- `witnesses`: error text that proves a worker's runtime.
- `restarts`: which evidence predates its worker's current start (history).

The flow runs one way: this package reads the snapshot and evidence and knows nothing of rules;
the rule engine (`advisories/engine.py`) reads facts. From `advisories/` it imports only the
leaf modules `model` (references, version ranges) and `versions` (reading versions), never the
engine or the loader (tests/unit/test_facts_layering.py keeps it so).

The names below are the package's public face, so callers import
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

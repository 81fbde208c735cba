"""Per-worker facts, each with where it came from. Unknown stays unknown: never guess.

The ATC tells us little about a worker (platform, state, worker API version), and nothing about
its runtime or the CNI plugins, containerd and runc it runs. Facts are therefore gathered from
three sources, strongest first:

- `operator`: `source.facts`, overridden key by key by the first `source.worker_facts` entry that
  fits the worker. The operator can know what nothing else can see.
- `observed`: read from /api/v1/workers, or implied by evidence the worker produced (a CNI error
  proves the containerd runtime).
- `inferred`: the web node's release (workers are assumed to run it) and what that release
  bundles and defaults to, from the release table. The worker's `concourse` fact drives the table
  whatever its source, so declaring a worker's release corrects every component inferred from it.

A fact is simply absent when no source knows it.

Conflicts: when a weaker operator or observed fact disagrees with the one kept (evidence saying
`containerd` where the operator declared `guardian`, or two builds implying different runtimes),
the stronger fact is kept and the disagreement is returned as a `FactConflict` by
`gather_facts`, for the caller to log. An inferred value overridden by a stronger source is not
a conflict: correcting inferences is what declaring facts is for.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig, WorkerFactsOverride
from fleet_guard.evidence import Evidence
from fleet_guard.facts.bundles import BundleTable, describe_mismatch
from fleet_guard.facts.model import FACT_NAMES, Fact, FactConflict, FactSource, FleetFacts
from fleet_guard.facts.releases import COMPONENT_NAMES, ReleaseTable, lowest_confidence
from fleet_guard.facts.restarts import started_at


def web_facts(info: Info) -> dict[str, str]:
    """Facts about the web node, which a rule's `differs_from` compares a worker fact with."""
    return {"web.worker_version": info.worker_version, "web.concourse": info.version}


def build_facts(
    workers: Sequence[Worker],
    info: Info,
    config: SourceConfig,
    evidence: Sequence[Evidence],
    table: ReleaseTable,
    bundles: BundleTable | None = None,
    *,
    now: int | None = None,
) -> dict[str, dict[str, Fact]]:
    """Facts per worker name: every registered worker, plus workers only named by evidence."""
    return gather_facts(workers, info, config, evidence, table, bundles, now=now).workers


def gather_facts(
    workers: Sequence[Worker],
    info: Info,
    config: SourceConfig,
    evidence: Sequence[Evidence],
    table: ReleaseTable,
    bundles: BundleTable | None = None,
    *,
    now: int | None = None,
) -> FleetFacts:
    """`build_facts` plus the conflicts met on the way, so they can be logged.

    `bundles` is the release → bundled resource types table (the packaged one by default).
    `now` (Unix seconds, the scan's clock) gives each registered worker its `uptime`.
    """
    registered = {w.name: w for w in workers}
    names = set(registered) | {e.worker for e in evidence if e.worker}
    facts: dict[str, dict[str, Fact]] = {}
    conflicts: list[FactConflict] = []
    for name in sorted(names):
        worker_facts, worker_conflicts = _facts_for(
            name,
            registered.get(name),
            info,
            config,
            [e for e in evidence if e.worker == name],
            table,
            bundles or BundleTable.load(),
            now,
        )
        facts[name] = worker_facts
        conflicts += worker_conflicts
    return FleetFacts(workers=facts, conflicts=tuple(conflicts))


def matching_override(
    name: str, tags: Iterable[str], overrides: Sequence[WorkerFactsOverride]
) -> tuple[int, WorkerFactsOverride] | None:
    """The first entry whose glob fits the name and whose tags the worker all carries.

    Returns the entry with its index in `source.worker_facts`, for fact details. A worker known
    only from evidence has no known tags, so only entries without `tags` can fit it.
    """
    carried = set(tags)
    for position, override in enumerate(overrides):
        if fnmatch.fnmatchcase(name, override.match) and carried.issuperset(override.tags):
            return (override.index or position), override
    return None


def _facts_for(
    name: str,
    worker: Worker | None,
    info: Info,
    config: SourceConfig,
    evidence: Sequence[Evidence],
    table: ReleaseTable,
    bundles: BundleTable,
    now: int | None,
) -> tuple[dict[str, Fact], list[FactConflict]]:
    conflicts: list[FactConflict] = []
    chosen: dict[str, Fact] = {}

    def offer(fact: str, candidate: Fact) -> None:
        """Keep the first (strongest) offer; note a disagreement that deserves a log line."""
        kept = chosen.get(fact)
        if kept is None:
            chosen[fact] = candidate
        elif candidate.source is not FactSource.INFERRED and not _agree(kept, candidate):
            conflicts.append(FactConflict(name, fact, kept, candidate))

    for fact, value in _operator_facts(name, worker, config).items():
        offer(fact, value)
    for fact, value in _api_facts(worker, now).items():
        offer(fact, value)
    for fact, value in _evidence_facts(evidence):
        offer(fact, value)
    observed, mismatch = _bundle_facts(worker, bundles, table)
    for fact, value in observed.items():
        offer(fact, value)
    if info.version:
        detail = (
            f"/api/v1/info: the web node runs Concourse {info.version}; "
            "workers are assumed to run the same release"
        )
        offer(
            "concourse",
            Fact(
                info.version, FactSource.INFERRED, f"{detail} ({mismatch})" if mismatch else detail
            ),
        )
    platform = chosen["platform"].value if "platform" in chosen else None
    for fact, value in _table_facts(table, chosen.get("concourse"), platform).items():
        offer(fact, value)

    ordered = {f: chosen[f] for f in FACT_NAMES if f in chosen}
    ordered.update({f: v for f, v in sorted(chosen.items()) if f not in ordered})
    return ordered, conflicts


def _operator_facts(name: str, worker: Worker | None, config: SourceConfig) -> dict[str, Fact]:
    facts = {k: Fact(str(v), FactSource.OPERATOR, "source.facts") for k, v in config.facts.items()}
    found = matching_override(name, worker.tags if worker else (), config.worker_facts)
    if found:
        index, override = found
        detail = f'source.worker_facts[{index}] (match "{override.match}"'
        detail += f", tags {', '.join(override.tags)})" if override.tags else ")"
        facts.update(
            {k: Fact(str(v), FactSource.OPERATOR, detail) for k, v in override.facts.items()}
        )
    return facts


def _api_facts(worker: Worker | None, now: int | None) -> dict[str, Fact]:
    if worker is None:
        return {}
    detail = "/api/v1/workers"
    values = {"platform": worker.platform, "state": worker.state, "worker_api": worker.version}
    facts = {k: Fact(v, FactSource.OBSERVED, detail) for k, v in values.items() if v}
    if now is not None and 0 < worker.start_time <= now:
        started = f"{detail}: start_time {started_at(worker.start_time)}"
        facts["uptime"] = Fact(str(now - worker.start_time), FactSource.OBSERVED, started)
    return facts


def _evidence_facts(evidence: Sequence[Evidence]) -> list[tuple[str, Fact]]:
    """What the worker's evidence proves, newest evidence first so it wins any disagreement."""
    newest_first = sorted(evidence, key=lambda e: (e.time or 0, e.build_id), reverse=True)
    offers: list[tuple[str, Fact]] = []
    seen: set[tuple[str, str]] = set()
    for item in newest_first:
        for fact, value in item.implies.items():
            if (fact, value) in seen:
                continue
            seen.add((fact, value))
            offers.append((fact, Fact(value, FactSource.OBSERVED, _evidence_detail(item))))
    return offers


def _evidence_detail(item: Evidence) -> str:
    if item.pipeline and item.job:
        where = f"{item.team}/{item.pipeline}/{item.job} #{item.build}"
    else:
        where = f"{item.team} #{item.build}"
    if item.witness:
        return f"build {item.build_id} ({where}): its error says {item.witness.strip()!r}"
    return f"build {item.build_id} ({where}) matched {item.advisory}"


def _agree(kept: Fact, candidate: Fact) -> bool:
    """Equal values, or a release inside the class the other names: not worth a warning."""
    return bool(set(kept.candidates) & set(candidate.candidates))


def _bundle_facts(
    worker: Worker | None, bundles: BundleTable, table: ReleaseTable
) -> tuple[dict[str, Fact], str]:
    """The release read from the worker's bundled resource types, else why none could be.

    Returns observed facts and, when a linux worker's bundle names no release, the reason, for
    the detail of the release inferred from the web node instead.
    """
    if worker is None:
        return {}, ""
    if worker.resource_types is None:
        # Only linux workers register resource types; the others run the one runtime their
        # platform has, which the release table states.
        default = table.runtime_default(None, worker.platform)
        if worker.platform and worker.platform != bundles.platform and default:
            detail = (
                f"/api/v1/workers: a {worker.platform} worker (no bundled resource types); "
                f"{worker.platform} workers run only {default.runtime}"
            )
            return {"runtime": Fact(default.runtime, FactSource.OBSERVED, detail)}, ""
        if worker.platform == bundles.platform:
            return {}, "the worker registered no bundled resource types (null)"
        return {}, ""
    if worker.platform != bundles.platform:
        return {}, ""
    match = bundles.match(worker.resource_types)
    if not match.matched:
        return {}, describe_mismatch(match, len(worker.resource_types))
    count = len(worker.resource_types)
    if len(match.releases) == 1:
        what = f"Concourse {match.label}"
    else:
        what = f"the class Concourse {match.label} ({', '.join(match.releases)}: same bundle)"
    detail = (
        f"/api/v1/workers: the worker's {count} bundled resource types match {what} "
        f"in the bundle table (confidence {match.confidence})"
    )
    members = match.releases if len(match.releases) > 1 else ()
    return {"concourse": Fact(match.label, FactSource.OBSERVED, detail, members)}, ""


def _table_facts(
    table: ReleaseTable, concourse: Fact | None, platform: str | None
) -> dict[str, Fact]:
    """Components and the default runtime of the worker's release, where every member of its
    class agrees; a component the members disagree on stays unknown."""
    facts: dict[str, Fact] = {}
    releases = concourse.candidates if concourse else ()
    label = concourse.value if concourse else ""
    every = " (every release of the class agrees)" if len(releases) > 1 else ""
    # The bundled components describe the release tarball for one platform; a Windows or Darwin
    # worker of the same release runs none of them.
    if releases and platform in (None, table.platform):
        for component in COMPONENT_NAMES:
            rows = [table.components(r).get(component) for r in releases]
            present = [r for r in rows if r is not None]
            if len(present) != len(rows) or len({r.version for r in present}) != 1:
                continue
            name = COMPONENT_NAMES[component]
            confidence = lowest_confidence(r.confidence for r in present)
            facts[component] = Fact(
                present[0].version,
                FactSource.INFERRED,
                f"release table: Concourse {label} bundles {name} {present[0].version}{every} "
                f"(confidence {confidence})",
            )
    defaults = [table.runtime_default(r, platform) for r in releases or (None,)]
    default = defaults[0]
    if default and all(d is not None and d.runtime == default.runtime for d in defaults):
        scope = f"Concourse {label} on {platform}" if default.concourse else f"{platform}"
        facts["runtime"] = Fact(
            default.runtime,
            FactSource.INFERRED,
            f"release table: {scope} workers default to the {default.runtime} runtime "
            f"(confidence {lowest_confidence(d.confidence for d in defaults if d)})",
        )
    return facts

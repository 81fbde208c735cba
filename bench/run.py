#!/usr/bin/env python3
"""Benchmarks for the two costs an operator pays: API work per check, and memory per log.

1. Check cost by fleet activity: one check (as `check` runs it, in-process) against simulated
   fleets of increasing size, with the default `scan_statuses: [errored]` and with every
   status scanned, to show what reading only errored builds saves.
2. Streaming memory: evidence matching over one errored build whose log grows from 1 to
   64 MiB; peak Python allocation should stay flat, because events are matched as they
   stream and never collected.

Everything runs on loopback against `fleet_guard.simulator`. Figures are printed; ratios are
taken within one run so they compare like with like. Usage: `make bench` (or `--quick`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from fleet_guard.advisories.loader import load_builtin_rules
from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import load_source
from fleet_guard.evidence import EvidenceMatcher
from fleet_guard.evidence_cache import CACHE_DIR_ENV, EvidenceCache
from fleet_guard.log import Log
from fleet_guard.scan import scan_fleet
from fleet_guard.simulator import Simulator, load_scenario

EINTR = (
    "find or create container on worker {worker}: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)
WORKERS = [f"w-{i}" for i in range(10)]


def fleet(builds_per_day: int, errored_share: float) -> dict[str, Any]:
    """A 7.12.0 fleet: `builds_per_day` builds in the last 24h, a share of them EINTR-errored."""
    interval = 86000 / builds_per_day
    every = max(1, round(1 / errored_share))
    builds = []
    for i in range(builds_per_day):
        worker = WORKERS[i % len(WORKERS)]
        failing = i % every == 0
        step: dict[str, Any] = {"task": "test", "worker": worker, "logs": ["ok\n"] * 5}
        if failing:
            step = {"task": "test", "worker": "w-1", "error": EINTR}
        builds.append(
            {
                "id": 10_000 + i,
                "team": "main",
                "pipeline": "app",
                "job": f"job-{i % 20}",
                "started_ago": int(86000 - i * interval),
                "duration": 30,
                "steps": [{"get": "repo", "worker": worker}, step],
            }
        )
    return {
        "info": {"version": "7.12.0", "worker_version": "2.5"},
        "users": [{"username": "admin", "password": "admin-pass", "teams": {"main": ["owner"]}}],
        "workers": [{"name": w} for w in WORKERS],
        "stream": {"hold_seconds": 5},
        "builds": builds,
    }


def huge_log(log_bytes: int) -> dict[str, Any]:
    return {
        "info": {"version": "7.12.0", "worker_version": "2.5"},
        "users": [{"username": "admin", "password": "admin-pass", "teams": {"main": ["owner"]}}],
        "workers": [{"name": "w-1"}],
        "stream": {"hold_seconds": 5},
        "builds": [
            {
                "id": 1,
                "team": "main",
                "pipeline": "app",
                "job": "big",
                "started_ago": 600,
                "steps": [
                    {"get": "repo", "worker": "w-1", "log_bytes": log_bytes},
                    {"task": "test", "worker": "w-1", "error": EINTR},
                ],
            }
        ],
    }


def load(data: dict[str, Any], directory: Path, name: str) -> Any:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data))
    return load_scenario(str(path))


def quiet_log() -> Log:
    return Log(stream=io.StringIO())


def one_check(
    sim: Simulator, statuses: list[str], cache: EvidenceCache | None
) -> tuple[Any, float]:
    source = {
        "url": sim.url,
        "username": "admin",
        "password": "admin-pass",
        "max_builds": 100_000,
        "scan_statuses": statuses,
    }
    config = load_source(source)
    log = quiet_log()
    started = time.perf_counter()
    with ConcourseClient(config, log) as client:
        report = scan_fleet(config, client, log, cache=cache)
    return report.scanned, time.perf_counter() - started


def check_cost(sizes: list[int], directory: Path) -> None:
    print("1. One check, by fleet activity (7.12.0, 10 workers, 1.5% of builds EINTR-errored)")
    print("   errored: the default; repeat: the next check in the same container (cache);")
    print("   all: every status scanned, for comparison")
    print(f"{'builds/24h':>10} {'scan':>8} {'listed':>7} {'read':>5} {'calls':>6} {'seconds':>8}")
    all_statuses = ["errored", "failed", "succeeded", "aborted"]
    for size in sizes:
        with Simulator(load(fleet(size, 0.015), directory, f"fleet-{size}")) as sim:
            cache_dir = directory / f"cache-{size}"
            os.environ[CACHE_DIR_ENV] = str(cache_dir)
            rules = load_builtin_rules()
            figures = {}
            for label, statuses, cached in (
                ("errored", ["errored"], True),
                ("repeat", ["errored"], True),
                ("all", all_statuses, False),
            ):
                cache = EvidenceCache.for_check(sim.url, rules, quiet_log()) if cached else None
                scanned, seconds = one_check(sim, statuses, cache)
                figures[label] = (scanned.api_calls, seconds)
                print(
                    f"{size:>10} {label:>8} {scanned.builds_listed:>7} {scanned.builds_read:>5} "
                    f"{scanned.api_calls:>6} {seconds:>8.2f}"
                )
            base_calls, base_time = figures["errored"]
            print(
                f"{'':>10} {'ratios':>8}  a repeat check costs "
                f"{figures['repeat'][0] / base_calls:.2f}x the calls of the first; scanning "
                f"every status {figures['all'][0] / base_calls:.1f}x the calls and "
                f"{figures['all'][1] / base_time:.1f}x the time"
            )
    print()


def streaming_memory(sizes_mib: list[int], directory: Path) -> None:
    print("2. Evidence matching over one build's event stream, by log size")
    print(f"{'log MiB':>8} {'events':>7} {'peak KiB':>9} {'seconds':>8} {'MiB/s':>7}  found")
    rules = load_builtin_rules()
    peaks = []
    for mib in sizes_mib:
        with Simulator(load(huge_log(mib * 1024 * 1024), directory, f"log-{mib}")) as sim:
            config = load_source({"url": sim.url, "username": "admin", "password": "admin-pass"})
            with ConcourseClient(config, quiet_log()) as client:
                client.info()  # log in first, so only the stream is measured
                build = client.list_builds(since=0, max_builds=10).builds[0]
                matcher = EvidenceMatcher(rules, base_url=sim.url)
                counted = 0

                def counting(events):
                    nonlocal counted
                    for event in events:
                        counted += 1
                        yield event

                tracemalloc.start()
                started = time.perf_counter()
                found = matcher.match_build(
                    build, counting(client.build_events(build.id, max_bytes=1 << 40))
                )
                seconds = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        peaks.append(peak)
        names = ",".join(sorted({e.advisory for e in found})) or "-"
        print(
            f"{mib:>8} {counted:>7} {peak / 1024:>9.0f} {seconds:>8.2f} "
            f"{mib / seconds:>7.1f}  {names}"
        )
    print(
        f"{'':>8} ratio: the log grew {sizes_mib[-1] / sizes_mib[0]:.0f}x, "
        f"peak memory {peaks[-1] / peaks[0]:.2f}x"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        check_cost([200, 800] if args.quick else [500, 2000, 5000], directory)
        streaming_memory([1, 4] if args.quick else [1, 16, 64], directory)


if __name__ == "__main__":
    main()

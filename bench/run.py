#!/usr/bin/env python3
"""Fleet Guard against its peers, side by side in one run, on the same simulated fleet.

Peers (bench/clients.py, `requests` and the standard library only):
- a naive script: sequential, `iter_lines`, `json.loads` on every event, stop at `end`;
- a byte-drain floor: the same requests, 4 streams at once, only gunzip and look for `end`.

Sections:
1. One big event stream: MiB/s of decoded stream for each reader, the EINTR at its end found.
2. A cold check of the whole fleet, on loopback and then as a remote ATC (per-request latency
   and a per-stream rate limit injected by the simulator): wall time, API calls, peak RSS,
   most connections open at once; then warm checks with nothing new and with 3 new errored
   builds.
3. Start-up: a check of a tiny fleet against the interpreter starting and importing requests.
4. Emerging signatures: what templating the unexplained errors and sampling builds for the base
   rate add to a cold check of the fleet (`emerging: off` against the default and a larger
   sample), and the cost of templating one message.

Every client is its own process (wall time and peak RSS are its own); the simulator is another
one, caches each stream's wire bytes after a warm-up read and so is not the bottleneck. The
machine may be shared: absolute times are noisy, ratios within one run are what to compare.

    make bench                      # the small fleet, a few minutes on 2 shared cores
    make bench BENCH_ARGS='--fleet issue'   # 1,000 workers, 20,000 builds, 300 errored
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENTS = HERE / "clients.py"
CHECK = ROOT / "assets" / "check"
MIB = 1024 * 1024
USER, PASSWORD = "admin", "admin-pass"
EINTR = (
    "find or create container on worker {worker}: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)
OTHER_ERROR = "find or create container on worker {worker}: failed to create volume: no space"
SPAN = 80_000  # seconds of builds; inside the 24h window with room for a long run

FLEETS = {
    # workers, builds in the window, errored builds, smallest and largest errored stream
    "issue": (1000, 20_000, 300, 50_000, 2_000_000),
    "small": (100, 2_000, 30, 50_000, 2_000_000),
}


@dataclass(frozen=True)
class Run:
    wall: float
    rss_mib: float
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        lines = self.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}


def run(args: list[str], *, stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """Runs one client process; its peak RSS comes from wait4, so only its own memory counts."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Run(wall, usage.ru_maxrss / 1024, out.read(), err.read())
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({process.returncode}):\n{result.stderr}")
    return result


class Sim:
    """The simulator in its own process, with its stream cache on."""

    def __init__(self, scenario: Path) -> None:
        ready = scenario.with_suffix(".url")
        ready.unlink(missing_ok=True)  # an earlier simulator's, from a section before
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "fleet_guard.simulator", str(scenario)),
                *("--cache-streams", "--hold-seconds", "30", "--ready-file", str(ready)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the simulator did not start: {self.process.stderr}")
            time.sleep(0.1)
        self.url = ready.read_text().strip()

    def get(self, path: str) -> Any:
        return requests.get(self.url + path, timeout=60).json()

    def post(self, path: str, body: Any = None) -> Any:
        return requests.post(self.url + path, json=body or {}, timeout=60).json()

    def calls(self) -> int:
        return int(self.get("/_sim/stats")["requests"])

    def clear(self) -> None:
        self.post("/_sim/clear-requests")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def fleet_scenario(name: str) -> dict[str, Any]:
    """7.12.0; every ~N-th build errored, a third of those with the CNI EINTR on 7 workers."""
    workers, total, errored, smallest, largest = FLEETS[name]
    names = [f"w-{i:04d}" for i in range(workers)]
    every = total // errored
    builds = []
    failing = 0
    for i in range(total):
        worker = names[i % workers]
        build: dict[str, Any] = {
            "id": 100_000 + i,
            "team": "main",
            "pipeline": f"app-{i % 40}",
            "job": f"job-{i % 7}",
            "started_ago": SPAN - i * SPAN // total,
            "duration": 30,
            "steps": [{"task": "test", "worker": worker}],
        }
        if i % every == every // 2 and failing < errored:
            size = smallest + (largest - smallest) * failing // max(errored - 1, 1)
            size = size * 3 // 4  # of log text; the events' envelopes make up the rest
            message = EINTR if failing % 3 == 0 else OTHER_ERROR
            build["steps"] = [
                {"get": "repo", "worker": worker, "log_bytes": size, "log_text": "varied"},
                {"task": "test", "worker": names[failing % 7], "error": message},
            ]
            failing += 1
        builds.append(build)
    return scenario(names, builds)


def big_stream_scenario(mib: int) -> dict[str, Any]:
    steps = [
        {"get": "repo", "worker": "w-1", "log_bytes": mib * MIB * 3 // 4, "log_text": "varied"},
        {"task": "test", "worker": "w-1", "error": EINTR},
    ]
    build = {"id": 1, "team": "main", "pipeline": "app", "job": "big", "started_ago": 600}
    return scenario(["w-1"], [{**build, "steps": steps}])


def scenario(workers: list[str], builds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "info": {"version": "7.12.0", "worker_version": "2.5"},
        "users": [{"username": USER, "password": PASSWORD, "teams": {"main": ["owner"]}}],
        "workers": [{"name": w} for w in workers],
        "builds": builds,
    }


def write(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def supports(key: str) -> bool:
    schema = json.loads((ROOT / "lib/fleet_guard/schemas/source.json").read_text())
    return key in schema["properties"]


def fleet_guard_check(sim: Sim, cache_dir: Path, **source: Any) -> tuple[Run, str, int]:
    """`assets/check` as Concourse runs it: JSON on stdin, versions on stdout."""
    request = {
        "source": {"url": sim.url, "username": USER, "password": PASSWORD, **source},
    }
    sim.clear()
    result = run(
        [str(CHECK)], stdin=json.dumps(request), env={"FLEET_GUARD_CACHE_DIR": str(cache_dir)}
    )
    versions = json.loads(result.stdout)
    summary = next((ln for ln in result.stderr.splitlines() if "API calls" in ln), "")
    fingerprint = versions[-1]["fingerprint"] if versions else "(healthy)"
    return result, f"{fingerprint}  [{summary.removeprefix('fleet-guard: ')}]", sim.calls()


def section_stream(directory: Path, mib: int, repeats: int = 3) -> None:
    print(f"1. One event stream of {mib} MiB (logs in 512-byte events), then the CNI EINTR error")
    readers = (
        ("byte-drain floor", "drain-stream"),
        ("naive script", "naive-stream"),
        ("Fleet Guard", "fleet-guard-stream"),
    )
    runs: dict[str, list[Run]] = {label: [] for label, _ in readers}
    sim = Sim(write(directory, f"stream-{mib}", big_stream_scenario(mib)))
    try:
        run([str(CLIENTS), "drain-stream", sim.url])  # warm-up: the simulator renders it once
        for _ in range(repeats):  # interleaved, so a busy moment on the machine hits all three
            for label, mode in readers:
                runs[label].append(run([str(CLIENTS), mode, sim.url]))
    finally:
        sim.close()
    decoded = runs["byte-drain floor"][0].result["bytes"]
    print(f"   {decoded / MIB:.1f} MiB decoded; best of {repeats} runs each")
    print(f"   {'reader':<18} {'seconds':>8} {'MiB/s':>7} {'peak RSS MiB':>13}  found")
    speed = {}
    for label, results in runs.items():
        seconds = min(r.result["seconds"] for r in results)
        speed[label] = decoded / MIB / seconds
        found = results[0].result.get("found")
        shown = "-" if found is None else (f"EINTR on {found[0][1]}" if found else "NOTHING")
        rss = max(r.rss_mib for r in results)
        print(f"   {label:<18} {seconds:>8.2f} {speed[label]:>7.1f} {rss:>13.0f}  {shown}")
    print(
        f"   ratio: Fleet Guard reads {speed['Fleet Guard'] / speed['byte-drain floor']:.2f}x "
        f"the byte-drain's MiB/s (target >= 0.6) and "
        f"{speed['Fleet Guard'] / speed['naive script']:.1f}x the naive script's"
    )
    print()


def section_fleet(directory: Path, fleet: str) -> None:
    workers, total, errored, smallest, largest = FLEETS[fleet]
    print(
        f"2. The {fleet} fleet: {workers} workers, {total} builds in the window, {errored} "
        f"errored with {smallest // 1000} KB-{largest // 1_000_000} MB event streams"
    )
    sim = Sim(write(directory, f"fleet-{fleet}", fleet_scenario(fleet)))
    since = str(int(time.time()) - 86400)
    concurrency = supports("concurrency")
    try:
        run([str(CLIENTS), "drain", sim.url, since])  # warm-up: renders every stream once
        for network, latency, rate in (("loopback", 0.0, 0.0), ("remote ATC", 0.025, 20 * MIB)):
            sim.post("/_sim/network", {"latency": latency, "rate": rate})
            label = (
                ""
                if not latency
                else f": {latency * 1000:.0f} ms a request, {rate / MIB:.0f} MiB/s a stream"
            )
            print(f"   {network}{label}")
            print(
                f"   {'client':<26} {'wall s':>7} {'calls':>6} {'RSS MiB':>8} {'conns':>6}  result"
            )
            walls: dict[str, float] = {}

            def row(
                name: str, result: Run, calls: int, shown: str, walls: dict[str, float] = walls
            ) -> None:
                walls[name] = result.wall
                peak = sim.get("/_sim/stats")["peak_connections"]
                print(
                    f"   {name:<26} {result.wall:>7.2f} {calls:>6} {result.rss_mib:>8.0f} "
                    f"{peak:>6}  {shown}"
                )

            for name, mode in (("byte-drain floor", "drain"), ("naive script", "naive")):
                sim.clear()
                result = run([str(CLIENTS), mode, sim.url, since])
                found = result.result.get("found")
                shown = (
                    f"{len(found)} EINTR builds"
                    if found is not None
                    else (f"{result.result['bytes'] / MIB:.0f} MiB decoded")
                )
                row(name, result, sim.calls(), shown)
            source: dict[str, Any] = {"max_builds": 100_000}
            fingerprints = {}
            variants = [("Fleet Guard cold", {})]
            if concurrency and not latency:
                variants.insert(0, ("Fleet Guard cold, 1 stream", {"concurrency": 1}))
            if concurrency and latency:
                # The knob the README names for an ATC further away than loopback.
                variants.append(("Fleet Guard, 6 streams", {"concurrency": 6}))
            for name, extra in variants:
                cache = directory / f"cache-{network}-{len(fingerprints)}"
                result, shown, calls = fleet_guard_check(sim, cache, **source, **extra)
                fingerprints[name] = shown.split()[0]
                row(name, result, calls, shown)
            if not latency:
                result, shown, calls = fleet_guard_check(sim, cache, **source)
                row("Fleet Guard warm", result, calls, shown + "  (target <= 5 calls)")
                new = [
                    {
                        "id": 100_000 + total + n,
                        "team": "main",
                        "pipeline": "app-0",
                        "job": "job-0",
                        "started_ago": 120 - n,
                        "duration": 30,
                        "steps": [{"task": "test", "worker": "w-0000", "error": EINTR}],
                    }
                    for n in range(3)
                ]
                sim.post("/_sim/builds", {"builds": new})
                result, shown, calls = fleet_guard_check(sim, cache, **source)
                row("Fleet Guard, 3 new errored", result, calls, shown + "  (target <= 8 calls)")
            same = len(set(fingerprints.values())) == 1
            ratio = walls["Fleet Guard cold"]
            print(
                f"   ratios: Fleet Guard cold = {ratio / walls['byte-drain floor']:.2f}x the "
                f"byte-drain's wall time (target <= 2 on loopback), "
                f"{walls['naive script'] / ratio:.1f}x faster than the naive script "
                f"(target >= 5 as a remote ATC)"
                + (
                    "; same fingerprint at every concurrency"
                    if same and len(fingerprints) > 1
                    else ""
                )
                + ("" if same else "; FINGERPRINTS DIFFER")
            )
            six = walls.get("Fleet Guard, 6 streams")
            if six:
                print(
                    f"   with concurrency: 6, {walls['naive script'] / six:.1f}x faster than the "
                    "naive script (target >= 5)"
                )
            print()
    finally:
        sim.close()


def section_startup(directory: Path) -> None:
    print("3. Start-up: a check of a 2-worker fleet against the interpreter's own start")
    sim = Sim(write(directory, "tiny", scenario(["w-1", "w-2"], [])))
    try:
        figures = {}
        for label, args, stdin in (
            ("python -c pass", ["-c", "pass"], ""),
            ("python -c 'import requests'", ["-c", "import requests"], ""),
            (
                "Fleet Guard check",
                [str(CHECK)],
                json.dumps({"source": {"url": sim.url, "username": USER, "password": PASSWORD}}),
            ),
        ):
            walls = [
                run(
                    args, stdin=stdin, env={"FLEET_GUARD_CACHE_DIR": str(directory / "tiny-cache")}
                ).wall
                for _ in range(5)
            ]
            figures[label] = min(walls)
            print(f"   {label:<30} {min(walls):>6.3f} s (best of 5)")
    finally:
        sim.close()
    extra = figures["Fleet Guard check"] - figures["python -c 'import requests'"]
    print(f"   a check costs {extra:.3f} s on top of starting Python and importing requests")
    print()


def section_emerging(directory: Path, fleet: str, repeats: int = 3) -> None:
    """The signature search's own cost: cold checks with it off, templating only, sampling."""
    from fleet_guard.signatures.templates import template_of

    workers = FLEETS[fleet][0]
    print(f"4. Emerging signatures on the {fleet} fleet: cold checks, best of {repeats}")
    sim = Sim(write(directory, f"fleet-{fleet}", fleet_scenario(fleet)))
    since = str(int(time.time()) - 86400)
    variants = (
        ("emerging: off", {"emerging": "off"}),
        ("templates, no sample", {"emerging_sample": 0}),
        ("templates + sample 30 (default)", {}),
        ("templates + sample 200", {"emerging_sample": 200}),
    )
    try:
        run([str(CLIENTS), "drain", sim.url, since])  # warm-up: renders every stream once
        print(f"   {'variant':<32} {'wall s':>7} {'calls':>6} {'extra s':>8} {'RSS MiB':>8}")
        best: dict[str, Run] = {}
        calls: dict[str, int] = {}
        # Round robin, so that load from elsewhere on a shared machine hits every variant alike.
        for attempt in range(repeats):
            for number, (name, extra) in enumerate(variants):
                cache = directory / f"emerging-{number}-{attempt}"
                result, _, calls[name] = fleet_guard_check(sim, cache, max_builds=100_000, **extra)
                if name not in best or result.wall < best[name].wall:
                    best[name] = result
        base = best[variants[0][0]].wall
        for name, _ in variants:
            print(
                f"   {name:<32} {best[name].wall:>7.2f} {calls[name]:>6} "
                f"{best[name].wall - base:>+8.2f} {best[name].rss_mib:>8.0f}"
            )
    finally:
        sim.close()
    names = [f"w-{i:04d}" for i in range(workers)]
    registered = set(names)
    messages = [
        f"find or create container on worker {names[i % workers]}: fetch image: extracting "
        f"layer {i:08x}-aaaa-bbbb-cccc-{i:012x}: write /var/lib/concourse/volumes/live/{i}/x: "
        f"no space left on device after {i % 90}.{i % 10}s"
        for i in range(20_000)
    ]
    started = time.perf_counter()
    templates = {template_of(m, registered) for m in messages}
    spent = time.perf_counter() - started
    print(
        f"   templating: {spent / len(messages) * 1e6:.0f} µs a message with {workers} worker "
        f"names to mask ({len(messages)} messages → {len(templates)} template)"
    )
    spent, found = _detection_seconds(names)
    print(
        f"   testing: {spent * 1000:.0f} ms for 300 errored builds of 30 templates against "
        f"{len(names) * 20} placements on {workers} workers ({found} signature found)"
    )
    print("   (differences under a second between cold checks are this machine's noise)")
    print()


def _detection_seconds(names: list[str]) -> tuple[float, int]:
    """find_signatures alone, on plain data shaped like the fleet: 29 templates spread
    evenly, one planted on two workers; best of 3."""
    from fleet_guard.concourse.models import Build
    from fleet_guard.signatures.collect import ErrorRecord
    from fleet_guard.signatures.detect import find_signatures

    now = int(time.time())
    errors = []
    for i in range(300):
        build = Build(i, "main", str(i), "errored", "job", "app", end_time=now - i)
        template = f"failure kind {i % 30} <id>"
        worker = names[i % 2] if i % 30 == 0 else names[(i * 7919) % len(names)]
        errors.append((build, ErrorRecord(template, template, worker, now - i)))
    placements = {name: 20 for name in names}
    best, found = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        detection = find_signatures(
            errors, placements, release_of={}, memory={}, base_url="https://ci", now=now
        )
        best = min(best, time.perf_counter() - started)
        found = len(detection.signatures)
    return best, found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleet", choices=sorted(FLEETS), default="small")
    parser.add_argument("--stream-mib", type=int, default=None, help="default: 64 (16 for small)")
    parser.add_argument(
        "--only",
        choices=["stream", "fleet", "startup", "emerging"],
        action="append",
        help="some sections",
    )
    args = parser.parse_args()
    sections = args.only or ["stream", "fleet", "startup", "emerging"]
    mib = args.stream_mib or (64 if args.fleet == "issue" else 16)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if "stream" in sections:
            section_stream(directory, mib)
        if "fleet" in sections:
            section_fleet(directory, args.fleet)
        if "startup" in sections:
            section_startup(directory)
        if "emerging" in sections:
            section_emerging(directory, args.fleet)


if __name__ == "__main__":
    main()

"""`python -m fleet_guard.simulator SCENARIO`: serve a scenario until SIGTERM or SIGINT.

The first line of stdout is the base URL (also written to --ready-file), so a test harness or
`make demo` can start it as a subprocess and know where to point the client.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from fleet_guard.simulator.errors import ScenarioError
from fleet_guard.simulator.loader import SCENARIO_NAMES, load_scenario
from fleet_guard.simulator.server import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fleet_guard.simulator",
        description="Serve a simulated Concourse ATC API from a scenario file.",
    )
    parser.add_argument("scenario", help=f"one of {', '.join(SCENARIO_NAMES)} or a JSON path")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--ready-file", help="write the base URL here once listening")
    parser.add_argument(
        "--hold-seconds",
        type=float,
        help="how long finished event streams stay open after `end` (scenario default: 60)",
    )
    parser.add_argument(
        "--latency", type=float, help="seconds added before every API answer (a remote ATC)"
    )
    parser.add_argument(
        "--stream-rate", type=float, help="bytes per second per event stream (0: no limit)"
    )
    parser.add_argument(
        "--cache-streams",
        action="store_true",
        help="keep finished builds' stream bytes after the first read (for benchmarks)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser


def _write_ready_file(path: str, url: str) -> None:
    """Written atomically so a poller never reads half a URL."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(url + "\n")
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("--tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    if args.latency is not None:
        scenario.stream.latency = args.latency
    if args.stream_rate is not None:
        scenario.stream.rate = args.stream_rate
    if args.cache_streams:
        scenario.stream.cache = True
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sim = Simulator(
        scenario,
        tls,
        host=args.host,
        port=args.port,
        hold_seconds=args.hold_seconds,
        verbose=args.verbose,
    )
    with sim:
        if args.ready_file:
            _write_ready_file(args.ready_file, sim.url)
        print(sim.url, flush=True)
        print(
            f"simulator: scenario {scenario.name!r} ({len(scenario.workers)} workers, "
            f"{len(scenario.builds)} builds) at {sim.url}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

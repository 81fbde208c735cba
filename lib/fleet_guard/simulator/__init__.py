"""A Concourse ATC API simulator over real HTTP on loopback, loaded from scenario files.

It exists to catch client bugs, so it copies the awkward parts of the real server: plain-text
401/403 bodies, Link headers built from `external_url`, gzip'd event streams that never close,
opaque tokens that expire, and reruns sorted next to their originals. See scenarios/README.md.

    with Simulator(load_scenario("incident")) as sim:
        requests.get(sim.url + "/api/v1/info")
"""

from __future__ import annotations

from fleet_guard.simulator.errors import ScenarioError
from fleet_guard.simulator.loader import SCENARIO_NAMES, load_scenario
from fleet_guard.simulator.model import Build, Fault, Scenario, User, Worker
from fleet_guard.simulator.recorder import RecordedRequest
from fleet_guard.simulator.server import Simulator

__all__ = [
    "SCENARIO_NAMES",
    "Build",
    "Fault",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "User",
    "Worker",
    "load_scenario",
]

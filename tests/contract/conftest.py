"""Contract fixtures: simulators over real HTTP on loopback, one per scenario and module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet_guard.simulator import Simulator, load_scenario


@pytest.fixture(scope="module")
def incident() -> Iterator[Simulator]:
    with Simulator(load_scenario("incident")) as sim:
        yield sim


@pytest.fixture(scope="module")
def healthy() -> Iterator[Simulator]:
    with Simulator(load_scenario("healthy")) as sim:
        yield sim


@pytest.fixture(scope="module")
def false_alarms() -> Iterator[Simulator]:
    with Simulator(load_scenario("false-alarms")) as sim:
        yield sim

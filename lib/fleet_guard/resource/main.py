"""Entry point for assets/check, assets/in and assets/out (and `python -m fleet_guard.resource`)."""

from __future__ import annotations

import sys

from fleet_guard.resource.protocol import Step, run


def _step(name: str) -> tuple[Step, bool]:
    # Imported lazily so that each script loads only what its step needs.
    if name == "check":
        from fleet_guard.resource.check import check

        return check, False
    if name == "in":
        from fleet_guard.resource.get import get

        return get, True
    if name == "out":
        from fleet_guard.resource.put import put

        return put, True
    raise SystemExit(f"fleet-guard: unknown step {name!r}; expected check, in or out")


def main(name: str) -> None:
    step, needs_directory = _step(name)
    sys.exit(run(step, sys.argv, needs_directory=needs_directory))

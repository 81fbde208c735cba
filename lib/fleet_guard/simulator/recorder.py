"""What clients asked for, kept so tests can assert on calls (and on "nothing was changed").

Also the fault book: faults are consumed per matching request, so the bookkeeping lives with
the request log under one lock.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fleet_guard.simulator.model import Fault

NON_MUTATING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PATH = "/sky/issuer/token"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator answered it.

    `authorized` means the request carried a valid, unexpired token (the caller was
    authenticated); whether that identity was allowed shows in `status` (401/403).
    `has_token` is True for any Authorization header, valid or not. `fault` marks answers
    that came from an injected fault; status 0 means the connection was dropped unanswered.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    authorized: bool
    has_token: bool = False
    user: str | None = None
    fault: bool = False
    time: float = field(default_factory=time.time)

    @property
    def mutating(self) -> bool:
        """Anything that could change the ATC; logging in does not count."""
        return self.method not in NON_MUTATING_METHODS and self.path != TOKEN_PATH

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mutating": self.mutating}


class Recorder:
    def __init__(self, faults: list[Fault]) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults = faults

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def mutations(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.mutating]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, method: str, path: str, query: Mapping[str, list[str]]) -> Fault | None:
        """The first fault that matches and still has shots left; consumes one shot."""
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != method:
                    continue
                if fault.path != path and not fnmatch.fnmatchcase(path, fault.path):
                    continue
                if any((query.get(k) or [""])[0] != v for k, v in fault.query.items()):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times >= 0 and fault.fired >= fault.times:
                    continue
                fault.fired += 1
                return fault
        return None

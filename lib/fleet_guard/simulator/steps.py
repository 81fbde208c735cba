"""Turns a scenario's compact step list into the event sequence and plan the ATC would store.

Writing raw events by hand is error-prone (origin IDs, field order, which events a failed
container creation leaves out), so scenarios describe *what happened* and this module writes
the events in the order `atc/exec/*_step.go` emits them. See the scenarios README for the step
keys; `ScenarioError` names the offending key when a step is malformed.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fleet_guard.simulator.errors import ScenarioError

EVENT_VERSIONS = {
    "status": "1.0",
    "log": "5.1",
    "error": "4.1",
    "initialize-task": "4.0",
    "start-task": "5.0",
    "finish-task": "4.0",
    "initialize-get": "2.0",
    "start-get": "1.0",
    "finish-get": "5.1",
    "initialize-put": "2.0",
    "start-put": "1.0",
    "finish-put": "5.1",
    "initialize-check": "1.0",
    "initialize": "1.0",
    "start": "1.0",
    "finish": "1.0",
    "selected-worker": "1.0",
    "waiting-for-worker": "1.0",
    "image-check": "1.1",
    "image-get": "1.1",
}

ABORTED_MESSAGE = "interrupted"
TIMEOUT_MESSAGE = "timeout exceeded"

_STEP_KINDS = ("get", "put", "task", "check", "raw")
_COMMON_KEYS = frozenset(
    {
        "worker",
        "logs",
        "log_source",
        "log_bytes",
        "log_text",
        "exit_status",
        "error",
        "abort",
        "error_after_start",
        "waiting_for_worker",
        "retry_error",
    }
)
_KEYS = {
    "get": _COMMON_KEYS | {"get", "type", "version", "metadata"},
    "put": _COMMON_KEYS | {"put", "type", "version", "metadata"},
    "task": _COMMON_KEYS | {"task", "image", "run", "privileged"},
    "check": frozenset({"check", "type", "worker", "error", "waiting_for_worker"}),
    "raw": frozenset({"raw", "at"}),
}
_IMAGE_KEYS = frozenset({"worker", "type", "error", "logs"})

LOG_CHUNK = 4096
VARIED_CHUNK = 512


@dataclass(frozen=True)
class LazyLog:
    """A run of log events generated while streaming, so an N-MB log costs no memory at load."""

    origin: str
    source: str
    total_bytes: int
    time: int
    # "repeat": one line over and over in 4 KiB events (compresses ~100x); "varied":
    # build-output-like text in events of a few lines, which gzips about as well as real logs
    # (~4x): for benchmarks, where bytes on the wire and events per MiB both matter.
    text: str = "repeat"

    @property
    def event_bytes(self) -> int:
        return VARIED_CHUNK if self.text == "varied" else LOG_CHUNK

    @property
    def count(self) -> int:
        return max(1, -(-self.total_bytes // self.event_bytes))

    def envelopes(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        step = self.event_bytes
        pool = _varied_text() if self.text == "varied" else _repeated_chunk()
        for index in range(skip, self.count):
            size = min(step, self.total_bytes - index * step)
            at = index * step % len(pool)
            payload = pool[at : at + max(size - 1, 0)] + "\n"
            yield envelope(
                "log",
                {
                    "time": self.time,
                    "origin": {"id": self.origin, "source": self.source},
                    "payload": payload,
                },
            )


EventItem = dict[str, Any] | LazyLog
LOG_TEXTS = ("repeat", "varied")


def _repeated_chunk() -> str:
    line = "spam: the quick brown fox jumps over the lazy dog, again and again\n"
    return (line * (LOG_CHUNK // len(line) + 1))[:LOG_CHUNK]


@functools.cache
def _varied_text() -> str:
    """256 KiB of log-like lines (more than gzip's 32 KiB window), the same on every run."""
    rng = random.Random(9)
    words = [
        "compiling", "linking", "test", "ok", "PASS", "downloading", "module", "package",
        "warning:", "deprecated", "src/main.go", "lib/util.py", "resolving", "deltas", "done",
        "npm", "install", "layer", "sha256:", "cache", "miss", "hit", "step", "RUN", "COPY",
    ]  # fmt: skip
    chunks = []
    for _ in range(64):
        lines: list[str] = []
        while sum(len(line) for line in lines) < LOG_CHUNK:
            picked = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
            lines.append(f"{rng.getrandbits(16):04x} {picked} {rng.randint(0, 999)}\n")
        chunks.append("".join(lines)[:LOG_CHUNK])
    return "".join(chunks)


def envelope(event: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of an event; `event_id` is added when streaming, like the DB row id."""
    return {"data": dict(data), "event": event, "version": EVENT_VERSIONS.get(event, "1.0")}


@dataclass
class Outcome:
    """What the expanded steps imply about the build, used when the scenario omits `status`."""

    status: str = "succeeded"


class _Timeline:
    """Spreads step events over the build's run time so timestamps look plausible and ordered."""

    def __init__(self, start: int, end: int, steps: int) -> None:
        self.start = start
        self.end = max(end, start)
        self.slot = (self.end - self.start) / max(steps, 1)

    def at(self, step: int, fraction: float) -> int:
        return int(self.start + self.slot * (step + fraction))


@dataclass
class StepContext:
    """What every step of one build shares: its worker default, clock, names and message macros."""

    build_id: int
    default_worker: str
    messages: Mapping[str, str]
    next_plan_id: Callable[[], str]


def _message(text: Any, worker: str, ctx: StepContext, key: str) -> str:
    if not isinstance(text, str):
        raise ScenarioError(f"build {ctx.build_id}: step key {key!r} must be a string")
    if text.startswith("@"):
        if text[1:] not in ctx.messages:
            raise ScenarioError(f"build {ctx.build_id}: unknown message macro {text!r}")
        text = str(ctx.messages[text[1:]])
    return str(text).replace("{worker}", worker)


def _kind(step: Mapping[str, Any], build_id: int) -> str:
    kinds = [k for k in _STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise ScenarioError(
            f"build {build_id}: each step needs exactly one of {', '.join(_STEP_KINDS)}: {step!r}"
        )
    unknown = set(step) - _KEYS[kinds[0]]
    if unknown:
        raise ScenarioError(f"build {build_id}: unknown {kinds[0]} step keys {sorted(unknown)}")
    return kinds[0]


def _fake_sha(*parts: Any) -> str:
    return hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()


def expand_steps(
    steps: list[Mapping[str, Any]],
    ctx: StepContext,
    *,
    start: int | None,
    end: int,
    finished: bool,
) -> tuple[list[EventItem], dict[str, Any] | None, Outcome]:
    """Events, public plan and implied outcome for a build; a pending build has none of them."""
    outcome = Outcome()
    if start is None:
        outcome.status = "pending"
        return [], None, outcome
    plan_nodes: list[dict[str, Any]] = []
    for step in steps:
        kind = _kind(step, ctx.build_id)
        plan_nodes.append(
            {"id": "" if kind == "raw" else ctx.next_plan_id(), "kind": kind, "step": step}
        )
    timeline = _Timeline(start, end, len(steps))
    events: list[EventItem] = [envelope("status", {"status": "started", "time": start})]
    inputs: list[str] = []
    for index, node in enumerate(plan_nodes):
        writer = _StepWriter(node["step"], node["id"], index, timeline, ctx, inputs)
        stopped = writer.write(node["kind"], events, outcome)
        if node["kind"] == "get":
            inputs.append(str(node["step"]["get"]))
        if stopped:
            break
    if finished:
        events.append(envelope("status", {"status": outcome.status, "time": timeline.end}))
    plan = _plan(plan_nodes, ctx)
    return events, plan, outcome


def _plan(nodes: list[dict[str, Any]], ctx: StepContext) -> dict[str, Any] | None:
    public: list[dict[str, Any]] = []
    for node in nodes:
        step = node["step"]
        kind = node["kind"]
        if kind == "get":
            public.append(
                {
                    "id": node["id"],
                    "get": {
                        "name": step["get"],
                        "type": step.get("type", "git"),
                        "resource": step["get"],
                    },
                }
            )
        elif kind == "put":
            public.append(
                {
                    "id": node["id"],
                    "put": {
                        "name": step["put"],
                        "type": step.get("type", "git"),
                        "resource": step["put"],
                    },
                }
            )
        elif kind == "task":
            privileged = bool(step.get("privileged", False))
            public.append(
                {
                    "id": node["id"],
                    "task": {"name": step["task"], "privileged": privileged, "hermetic": False},
                }
            )
        elif kind == "check":
            public.append(
                {
                    "id": node["id"],
                    "check": {"name": step["check"], "type": step.get("type", "git")},
                }
            )
    if not public:
        return None
    if len(public) == 1 and "check" in public[0]:
        return {"schema": "exec.v2", "plan": public[0]}
    # Children get their IDs before the parent, so the top-level `do` has the highest ID.
    return {"schema": "exec.v2", "plan": {"id": ctx.next_plan_id(), "do": public}}


class _StepWriter:
    """Writes one step's events in the order the ATC's step and delegate code emits them."""

    def __init__(
        self,
        step: Mapping[str, Any],
        origin: str,
        index: int,
        timeline: _Timeline,
        ctx: StepContext,
        inputs: list[str],
    ) -> None:
        self.step = step
        self.origin = origin
        self.index = index
        self.timeline = timeline
        self.ctx = ctx
        self.inputs = list(inputs)
        self.worker = str(step.get("worker") or ctx.default_worker)

    def t(self, fraction: float) -> int:
        return self.timeline.at(self.index, fraction)

    def write(self, kind: str, events: list[EventItem], outcome: Outcome) -> bool:
        """Appends the step's events; True when the step failed and the build stops here."""
        if kind == "raw":
            raw = self.step["raw"]
            if not isinstance(raw, Mapping) or "event" not in raw or "data" not in raw:
                raise ScenarioError(f"build {self.ctx.build_id}: raw needs 'event' and 'data'")
            data = dict(raw["data"])
            if "at" in self.step:
                data["time"] = self.timeline.start + int(self.step["at"])
            event = envelope(str(raw["event"]), data)
            if "version" in raw:
                event["version"] = str(raw["version"])
            events.append(event)
            return False
        if kind == "check":
            return self._check(events, outcome)
        if kind == "task":
            return self._task(events, outcome)
        return self._resource(kind, events, outcome)

    def _origin(self, source: str | None = None, origin: str | None = None) -> dict[str, str]:
        result = {"id": origin or self.origin}
        if source:
            result["source"] = source
        return result

    def _retried(self, events: list[EventItem]) -> None:
        """build_rerun: a worker/network error ends in `, will retry ...` and the step re-runs."""
        spec = self.step.get("retry_error")
        if spec is None:
            return
        if not isinstance(spec, Mapping) or set(spec) != {"worker", "error"}:
            raise ScenarioError(
                f"build {self.ctx.build_id}: retry_error needs exactly 'worker' and 'error'"
            )
        worker = str(spec["worker"])
        message = _message(spec["error"], worker, self.ctx, "retry_error.error")
        events.append(
            envelope(
                "selected-worker",
                {"time": self.t(0.1), "origin": self._origin(), "selected_worker": worker},
            )
        )
        self._error(events, f"{message}, will retry ...", at=0.12)

    def _select(self, events: list[EventItem], worker: str, origin: str | None = None) -> None:
        if self.step.get("waiting_for_worker"):
            events.append(
                envelope("waiting-for-worker", {"time": self.t(0.15), "origin": self._origin()})
            )
        events.append(
            envelope(
                "selected-worker",
                {
                    "time": self.t(0.2),
                    "origin": self._origin(origin=origin),
                    "selected_worker": worker,
                },
            )
        )

    def _placed_and_failed(self, events: list[EventItem], outcome: Outcome) -> bool:
        """The step is placed on its worker; with `error`, container creation fails there:
        no start or finish event follows, the text is only in the `error` event."""
        self._select(events, self.worker)
        if "error" not in self.step:
            return False
        self._error(events, _message(self.step["error"], self.worker, self.ctx, "error"))
        outcome.status = "errored"
        return True

    def _error(
        self, events: list[EventItem], message: str, origin: str | None = None, at: float = 0.95
    ) -> None:
        events.append(
            envelope(
                "error",
                {"message": message, "origin": self._origin(origin=origin), "time": self.t(at)},
            )
        )

    def _logs(self, events: list[EventItem], default_source: str) -> None:
        source = str(self.step.get("log_source", default_source))
        logs = self.step.get("logs", [])
        if not isinstance(logs, list):
            raise ScenarioError(f"build {self.ctx.build_id}: 'logs' must be a list of strings")
        for n, payload in enumerate(logs):
            time = self.t(0.3 + 0.5 * n / max(len(logs), 1))
            events.append(
                envelope(
                    "log",
                    {
                        "time": time,
                        "origin": self._origin(source),
                        "payload": _message(payload, self.worker, self.ctx, "logs"),
                    },
                )
            )
        size = int(self.step.get("log_bytes", 0))
        if size > 0:
            text = str(self.step.get("log_text", "repeat"))
            if text not in LOG_TEXTS:
                raise ScenarioError(
                    f"build {self.ctx.build_id}: log_text must be one of {', '.join(LOG_TEXTS)}"
                )
            events.append(LazyLog(self.origin, source, size, self.t(0.8), text))

    def _failure_after_start(self, events: list[EventItem], outcome: Outcome) -> bool:
        """Abort and late errors come after the process started; both leave no finish event."""
        if self.step.get("abort"):
            self._error(events, ABORTED_MESSAGE)
            outcome.status = "aborted"
            return True
        if "error_after_start" in self.step:
            message = _message(
                self.step["error_after_start"], self.worker, self.ctx, "error_after_start"
            )
            self._error(events, message)
            outcome.status = "failed" if message == TIMEOUT_MESSAGE else "errored"
            return True
        return False

    def _resource(self, kind: str, events: list[EventItem], outcome: Outcome) -> bool:
        name = str(self.step[kind])
        events.append(envelope(f"initialize-{kind}", {"origin": self._origin(), "time": self.t(0)}))
        events.append(envelope(f"start-{kind}", {"origin": self._origin(), "time": self.t(0.05)}))
        self._retried(events)
        if self._placed_and_failed(events, outcome):
            return True
        if kind == "get" and "logs" not in self.step:
            events.append(
                envelope(
                    "log",
                    {
                        "time": self.t(0.3),
                        "origin": self._origin("stderr"),
                        "payload": "Cloning into '/tmp/build/get'...\n",
                    },
                )
            )
        self._logs(events, "stderr")
        if self._failure_after_start(events, outcome):
            return True
        exit_status = int(self.step.get("exit_status", 0))
        version: dict[str, str] | None = None
        if exit_status == 0:
            version = dict(self.step.get("version") or {"ref": _fake_sha(self.ctx.build_id, name)})
        data: dict[str, Any] = {
            "origin": self._origin(),
            "time": self.t(0.9),
            "exit_status": exit_status,
            "version": version,
        }
        if "metadata" in self.step:
            data["metadata"] = self.step["metadata"]
        events.append(envelope(f"finish-{kind}", data))
        if exit_status != 0:
            outcome.status = "failed"
            return True
        return False

    def _check(self, events: list[EventItem], outcome: Outcome) -> bool:
        name = str(self.step["check"])
        events.append(
            envelope(
                "initialize-check", {"origin": self._origin(), "time": self.t(0), "name": name}
            )
        )
        events.append(envelope("start", {"origin": self._origin(), "time": self.t(0.05)}))
        if self._placed_and_failed(events, outcome):
            return True
        events.append(
            envelope("finish", {"origin": self._origin(), "time": self.t(0.9), "succeeded": True})
        )
        return False

    def _task_config(self) -> dict[str, Any]:
        run = self.step.get("run", "make test")
        return {
            "platform": "linux",
            "image": "",
            "run": {"path": "sh", "args": ["-ec", str(run)], "dir": ""},
            "inputs": [{"name": name, "path": ""} for name in self.inputs],
        }

    def _image(self, events: list[EventItem], outcome: Outcome) -> bool:
        """A task's image_resource: image-check/image-get, then their nested sub-steps."""
        spec = self.step.get("image")
        if not spec:
            return False
        if spec is True:
            spec = {}
        if not isinstance(spec, Mapping) or set(spec) - _IMAGE_KEYS:
            raise ScenarioError(
                f"build {self.ctx.build_id}: 'image' must be true or an object with "
                f"{sorted(_IMAGE_KEYS)}"
            )
        image_type = str(spec.get("type", "registry-image"))
        worker = str(spec.get("worker") or self.worker)
        check_id = f"{self.origin}/image-check"
        get_id = f"{self.origin}/image-get"
        for event, sub_id, node in (
            ("image-check", check_id, "check"),
            ("image-get", get_id, "get"),
        ):
            plan = {"id": sub_id, node: {"name": "image", "type": image_type}}
            events.append(
                envelope(event, {"time": self.t(0.05), "origin": self._origin(), "plan": plan})
            )
        events.append(
            envelope(
                "initialize-check",
                {"origin": {"id": check_id}, "time": self.t(0.05), "name": "image"},
            )
        )
        events.append(
            envelope(
                "finish", {"origin": {"id": check_id}, "time": self.t(0.06), "succeeded": True}
            )
        )
        events.append(envelope("initialize-get", {"origin": {"id": get_id}, "time": self.t(0.07)}))
        events.append(envelope("start-get", {"origin": {"id": get_id}, "time": self.t(0.07)}))
        events.append(
            envelope(
                "selected-worker",
                {"time": self.t(0.08), "origin": {"id": get_id}, "selected_worker": worker},
            )
        )
        if "error" in spec:
            message = _message(spec["error"], worker, self.ctx, "image.error")
            self._error(events, message, origin=get_id)
            outcome.status = "errored"
            return True
        logs = spec.get("logs", ["\x1b[1;36mINFO: found existing resource cache\x1b[0m\n", "\n"])
        for payload in logs:
            events.append(
                envelope(
                    "log",
                    {
                        "time": self.t(0.09),
                        "origin": {"id": get_id, "source": "stderr"},
                        "payload": _message(payload, worker, self.ctx, "image.logs"),
                    },
                )
            )
        digest = "sha256:" + hashlib.sha256(image_type.encode()).hexdigest()
        events.append(
            envelope(
                "finish-get",
                {
                    "origin": {"id": get_id},
                    "time": self.t(0.1),
                    "exit_status": 0,
                    "version": {"digest": digest},
                },
            )
        )
        return False

    def _task(self, events: list[EventItem], outcome: Outcome) -> bool:
        config = self._task_config()
        events.append(
            envelope(
                "initialize-task", {"time": self.t(0), "origin": self._origin(), "config": config}
            )
        )
        if self._image(events, outcome):
            return True
        self._retried(events)
        if self._placed_and_failed(events, outcome):
            return True
        events.append(
            envelope(
                "start-task", {"time": self.t(0.25), "origin": self._origin(), "config": config}
            )
        )
        self._logs(events, "stdout")
        if self._failure_after_start(events, outcome):
            return True
        exit_status = int(self.step.get("exit_status", 0))
        events.append(
            envelope(
                "finish-task",
                {"time": self.t(0.9), "exit_status": exit_status, "origin": self._origin()},
            )
        )
        if exit_status != 0:
            outcome.status = "failed"
            return True
        return False

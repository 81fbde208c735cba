"""No stdin breaks a step: generated payloads for check, in and out, against the simulator.

Each example runs the real protocol runner and step (the code `assets/*` call), in process so
that hundreds of examples fit in `make test`; `make fuzz` runs the same properties with ten
thousand examples per step (the `fuzz` hypothesis profile). The properties, for every input:
exit 0 or 1, never a traceback; stdout empty or exactly one JSON document (empty on exit 1);
no password or token from the payload on stdout or stderr; and no step waits on a server
that is not there (only loopback URLs are generated).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_guard.concourse import session
from fleet_guard.concourse.retry import RetryPolicy
from fleet_guard.evidence_cache import CACHE_DIR_ENV
from fleet_guard.resource.main import _step
from fleet_guard.resource.protocol import run
from fleet_guard.simulator import Simulator, load_scenario

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("FLEET_GUARD_HYPOTHESIS_PROFILE", "default"))

PASSWORD = "admin-pass"

# Strings that have broken steps before: too many digits for int(), digits str.isdigit()
# accepts but int() does not, lone surrogates, characters outside latin-1, newlines.
AWKWARD = st.sampled_from(
    [
        "9" * 5000,
        "1" * 5000 + "h",
        "²³",
        "١٢",
        "\ud800",
        "pa\udcffss",
        "пароль",
        "密码",
        "line\nbreak",
        "tab\there",
        "",
        " ",
        "\x00",
        "k" * 20_000,
        "-1",
        "1e309",
        "https://",
        "ci.example.com",
        "http://127.0.0.1:1",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**4000, max_value=10**4200),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    AWKWARD,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
SOURCE_KEYS = [
    "url",
    "username",
    "password",
    "token",
    "teams",
    "ca_certs",
    "insecure",
    "facts",
    "worker_facts",
    "window",
    "max_builds",
    "max_log_bytes",
    "scan_statuses",
    "severity",
    "emit",
    "rules",
    "disable_rules",
    "debug",
    "k" * 5000,
]
PUT_KEYS = [
    "action",
    "fail_on",
    "allow_incomplete",
    "advisories",
    "max_builds",
    "max_workers",
    "keep_running",
    "workers",
    "pipelines",
    "jobs",
    "from",
    "dry_run",
]
VERSION_KEYS = ["fingerprint", "seq", "status", "advisories"]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(load_scenario("healthy")) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Retries as the product makes them, without their waiting: many examples, one run."""
    monkeypatch.setattr(
        session, "RetryPolicy", lambda: RetryPolicy(base_delay=0.001, max_delay=0.001)
    )
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))


def overrides(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=3)


def payloads(sim: Simulator, params_keys: list[str] | None) -> st.SearchStrategy[Any]:
    base = {"url": sim.url, "username": "admin", "password": PASSWORD}
    source = st.one_of(JSON, overrides(SOURCE_KEYS).map(lambda o: {**base, **o}))
    params = JSON if params_keys is None else st.one_of(JSON, overrides(params_keys))
    version = st.one_of(st.none(), JSON, overrides(VERSION_KEYS))
    document = st.fixed_dictionaries(
        {}, optional={"source": source, "params": params, "version": version}
    )
    return st.one_of(document, JSON)


def raw_texts() -> st.SearchStrategy[str]:
    """stdin that json.loads itself chokes on, in ways a JSONDecodeError does not cover."""
    return st.sampled_from(
        [
            "[" * 100_000 + "]" * 100_000,
            '{"source": ' * 50_000 + "{}" + "}" * 50_000,
            '{"source": {"url": "https://x", "max_builds": ' + "9" * 5000 + "}}",
            '{"version": {"seq": ' + "1" * 5000 + "}}",
            "\ufeff{}",
            '{"source": {"password": "\\ud800"}}',
            "not json",
            "",
        ]
    )


def secrets_in(payload: Any) -> list[str]:
    source = payload.get("source") if isinstance(payload, dict) else None
    if not isinstance(source, dict):
        return []
    found = []
    for key in ("password", "token"):
        value = source.get(key)
        if isinstance(value, str) and len(value.strip()) >= 4:
            found.append(value)
    return found


def invoke(step_name: str, stdin: str, argv: list[str]) -> tuple[int, str, str]:
    step, needs_directory = _step(step_name)
    out, err = io.StringIO(), io.StringIO()
    code = run(
        step,
        argv,
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
        needs_directory=needs_directory,
    )
    return code, out.getvalue(), err.getvalue()


def assert_well_behaved(code: int, out: str, err: str, secrets: list[str]) -> None:
    assert code in (0, 1)
    assert "internal error" not in err and "Traceback" not in err, err[-3000:]
    if code == 1:
        assert out == ""
    if out:
        json.loads(out)  # exactly one JSON document
    for secret in secrets:
        assert secret not in out and secret not in err


def run_payload(step_name: str, payload: Any, argv: list[str]) -> None:
    text = json.dumps(payload)
    code, out, err = invoke(step_name, text, argv)
    assert_well_behaved(code, out, err, secrets_in(payload))


@given(data=st.data())
def test_check_never_breaks(sim, data):
    run_payload("check", data.draw(payloads(sim, None)), ["check"])


@given(data=st.data(), dest=st.sampled_from(["dir", "file", "missing"]))
def test_in_never_breaks(sim, data, dest):
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "dest"
        if dest == "dir":
            target.mkdir()
        elif dest == "file":
            target.write_text("a regular file\n")
        run_payload("in", data.draw(payloads(sim, ["scan"])), ["in", str(target)])


@given(data=st.data(), fetched=st.sampled_from(["none", "damaged", "foreign", "binary", "dir"]))
def test_out_never_breaks(sim, data, fetched):
    with tempfile.TemporaryDirectory() as work:
        src = Path(work)
        fleet = src / "fleet"
        fleet.mkdir()
        if fetched != "none":
            (fleet / "affected_workers").write_text("w-1\n")
        if fetched == "damaged":
            (fleet / "report.json").write_text('{"version": {"seq": "1"')
        elif fetched == "foreign":
            (fleet / "report.json").write_text('{"version": [1, 2]}')
        elif fetched == "binary":
            (fleet / "report.json").write_bytes(b"\xff\xfe\x00garbage")
            (fleet / "affected_workers").write_bytes(b"\xff\xfe\x00")
        elif fetched == "dir":
            (fleet / "report.json").mkdir()
        payload = data.draw(payloads(sim, PUT_KEYS))
        if isinstance(payload, dict) and isinstance(payload.get("params"), dict):
            payload["params"].setdefault("dry_run", True)  # never land the simulator's fleet
        run_payload("out", payload, ["out", str(src)])


@given(text=raw_texts(), step_name=st.sampled_from(["check", "in", "out"]))
def test_stdin_json_cannot_parse_is_one_paragraph(text, step_name):
    with tempfile.TemporaryDirectory() as work:
        code, out, err = invoke(step_name, text, [step_name, work])
    assert_well_behaved(code, out, err, [])


# Each input the issue names, once, with what the step must say.
NAMED = [
    ("check", {"version": {"seq": "²³"}}, 0, ""),
    ("check", {"version": {"seq": "9" * 5000}}, 0, ""),
    ("check", {"src": {"password": ["list-secret-1"]}}, 1, "source.password"),
    ("check", {"src": {"password": {"value": "map-secret-1"}}}, 1, "source.password"),
    ("check", {"src": {"password": "pa\ud800ss-secret"}}, 1, "lone surrogate"),
    ("check", {"src": {"token": "tok\nen-secret", "username": None, "password": None}}, 1, ""),
    ("check", {"src": {"teams": ["pl\udc00atform"]}}, 1, "source.teams[0]: holds a lone"),
    ("check", {"src": {"teams": 5}}, 1, "source.teams"),
    ("check", {"src": {"window": "1" * 5000 + "h"}}, 1, "is not a duration"),
    ("check", {"src": {"max_builds": 10**5000}}, 1, "source.max_builds"),
    ("check", {"src": {"k" * 5000: 1}}, 1, '(5000 characters)"]: unknown key'),
    ("in", {"dest": "file"}, 1, "must be a directory"),
]


@pytest.mark.parametrize(("step_name", "case", "code", "said"), NAMED)
def test_each_named_input_gets_a_clear_answer(sim, tmp_path, step_name, case, code, said):
    source: dict[str, Any] = {"url": sim.url, "username": "admin", "password": PASSWORD}
    source = {k: v for k, v in {**source, **case.get("src", {})}.items() if v is not None}
    payload: dict[str, Any] = {"source": source}
    if "version" in case:
        payload["version"] = case["version"]
    target = tmp_path / "dest"
    if case.get("dest") == "file":
        target.write_text("not a directory\n")
    result = invoke(step_name, json.dumps(payload), [step_name, str(target)])
    assert_well_behaved(*result, secrets_in(payload))
    assert result[0] == code, result[2]
    assert said in result[2]
    assert len(result[2]) < 5000, "a huge value is never echoed whole"

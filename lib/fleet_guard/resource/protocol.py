"""The only code that touches stdin, stdout and exit codes.

Concourse parses the *whole* of stdout as one JSON document, so while a step runs, stdout is
pointed at stderr: a stray print anywhere cannot corrupt the answer. A `UserError` becomes one
paragraph on stderr and exit 1; anything else is a bug and keeps its (redacted) traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from fleet_guard.errors import UserError
from fleet_guard.log import Log
from fleet_guard.redact import Redactor


@dataclass(frozen=True)
class Request:
    """What Concourse sent: `source` may be null, `version` is absent on the first check."""

    source: Any
    params: Any
    version: Mapping[str, Any] | None
    directory: str | None


Step = Callable[[Request, Log], Any]

_SECRET_KEYS = ("password", "token")
_MAX_DIGITS = 100_000


def run(
    step: Step,
    argv: Sequence[str],
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    needs_directory: bool = False,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    # Python refuses to convert integers of more than 4300 digits, in json.loads and in every
    # message that shows one; allow more, so a long number gets a message rather than a crash.
    sys.set_int_max_str_digits(max(sys.get_int_max_str_digits(), _MAX_DIGITS))
    raw = stdin.read()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        stderr.write(
            f"fleet-guard: stdin is not JSON ({exc.msg} at line {exc.lineno}); "
            "Concourse sends the step's source/params/version as a JSON object.\n"
        )
        return 1
    except (ValueError, RecursionError) as exc:
        # Integers longer than Python converts, or nesting deeper than it parses.
        why = "nested too deeply" if isinstance(exc, RecursionError) else "a number is too long"
        stderr.write(
            f"fleet-guard: stdin cannot be read as JSON ({why}); Concourse sends the step's "
            "source/params/version as a small JSON object: check the values in the pipeline.\n"
        )
        return 1
    if not isinstance(payload, dict):
        stderr.write("fleet-guard: stdin must be a JSON object with `source`.\n")
        return 1
    version = payload.get("version")
    if version is not None and not isinstance(version, dict):
        stderr.write(
            "fleet-guard: `version` on stdin must be a JSON object of strings, such as the "
            "one check emitted; leave it out for a first check.\n"
        )
        return 1
    source = payload.get("source")
    log = Log(debug=_debug(source), redactor=Redactor(_secrets(source)), stream=stderr)
    if needs_directory and len(argv) < 2:
        log.info(f"fleet-guard: usage: {argv[0] if argv else 'script'} DIRECTORY")
        return 1
    request = Request(
        source=source,
        params=payload.get("params"),
        version=version or None,
        directory=argv[1] if len(argv) > 1 else None,
    )
    try:
        with contextlib.redirect_stdout(stderr):
            result = step(request, log)
    except UserError as exc:
        log.info(f"fleet-guard: {exc.message}")
        return 1
    except Exception:
        log.info("fleet-guard: internal error (a bug; please report it with this trace):")
        log.info(traceback.format_exc().rstrip())
        return 1
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    return 0


def _debug(source: Any) -> bool:
    return isinstance(source, dict) and source.get("debug") is True


def _secrets(source: Any) -> list[str]:
    """Secrets are taken from the raw source, before validation, so even errors about an
    invalid source cannot echo them. A credential variable may resolve to a list or a map:
    every value inside it is a secret too."""
    if not isinstance(source, dict):
        return []
    found: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                text = value if isinstance(value, str) else repr(value)
            except ValueError:  # an integer too long to print cannot be printed by anyone
                return
            if depth == 0 or len(text) >= 3:  # masking every "1" would garble each message
                found.append(text)
        elif depth < 20 and isinstance(value, list):
            for item in value:
                walk(item, depth + 1)
        elif depth < 20 and isinstance(value, dict):
            for key, item in value.items():
                walk(key, depth + 1)
                walk(item, depth + 1)

    for key in _SECRET_KEYS:
        walk(source.get(key), 0)
    return found

"""Secrets never leave the process, whatever text they hide in."""

from __future__ import annotations

import io

from fleet_guard.log import Log
from fleet_guard.redact import MASK, Redactor


def test_known_secrets_are_masked_longest_first():
    redact = Redactor(["abc", "abcdef"])
    assert redact("x abcdef y abc") == f"x {MASK} y {MASK}"


def test_credential_shapes_are_masked_even_when_unknown():
    redact = Redactor()
    for text, leaked in [
        ("Authorization: Bearer V/bJthBEs+0EaNOtY/OuZ3vSAR1AYzBoAAAAAA", "V/bJthBEs"),
        ("curl https://ops:hunter2@ci.example.com/api", "hunter2"),
        ("password=hunter2&user=x", "hunter2"),
        ('{"token": "t0k3n-value"}', "t0k3n-value"),
    ]:
        assert leaked not in redact(text), text


def test_tokens_learned_at_run_time_are_masked_from_then_on():
    stream = io.StringIO()
    log = Log(debug=True, stream=stream)
    log.redact.add("opaque-token-123")
    log.debug("got opaque-token-123")
    assert "opaque-token-123" not in stream.getvalue()
    assert MASK in stream.getvalue()


def test_debug_lines_only_with_debug():
    stream = io.StringIO()
    Log(stream=stream).debug("hidden")
    assert stream.getvalue() == ""

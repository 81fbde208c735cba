"""Secrets never leave the process, whatever text they hide in."""

from __future__ import annotations

import io
import json

import requests

from fleet_guard.concourse.failures import error_for
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


def test_ordinary_words_after_a_key_word_survive():
    redact = Redactor()
    for text in [
        "POST /sky/issuer/token: connection was refused",
        "source.password: required with `username` (the local user's password)",
        "the token: expired after 24h",
    ]:
        assert redact(text) == text


def test_json_escaped_forms_of_a_secret_are_masked_too():
    secret = 'pa"ss\\wörd'
    redact = Redactor([secret])
    for form in (json.dumps(secret), json.dumps(secret, ensure_ascii=False)):
        assert MASK in redact(f"body: {form}")
        assert "ss\\\\w" not in redact(f"body: {form}")


def test_an_error_body_is_redacted_before_it_is_shortened():
    secret = "s3cret-that-straddles-the-cut"
    response = requests.Response()
    response.status_code, response.reason = 500, "Internal Server Error"
    error = error_for(
        response, "x" * 190 + secret, endpoint="GET /x", role="viewer", redact=Redactor([secret])
    )
    assert "s3cret" not in error.message

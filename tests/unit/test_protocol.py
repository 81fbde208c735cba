"""The protocol runner: stdout holds only the JSON answer, errors become one paragraph."""

from __future__ import annotations

import io
import json

from fleet_guard.errors import ConfigError, UserError
from fleet_guard.redact import Redactor
from fleet_guard.resource.protocol import Request, run


def invoke(step, stdin: str, argv=("check",), **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = run(step, list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_stray_prints_go_to_stderr_and_stdout_is_the_json_alone():
    def step(request: Request, log):
        print("chatter from somewhere")
        return [{"seq": "1"}]

    code, out, err = invoke(step, '{"source": {}}')
    assert code == 0
    assert json.loads(out) == [{"seq": "1"}]
    assert "chatter from somewhere" in err


def test_missing_version_and_null_version_both_mean_first_check():
    seen = []

    def step(request: Request, log):
        seen.append(request.version)
        return []

    invoke(step, '{"source": {}}')
    invoke(step, '{"source": {}, "version": null}')
    assert seen == [None, None]


def test_user_errors_exit_1_with_the_message_and_no_traceback():
    def step(request, log):
        raise ConfigError("source", ["source.url: required key is missing"])

    code, out, err = invoke(step, '{"source": {"password": "hunter2"}}')
    assert code == 1 and out == ""
    assert "source.url: required key is missing" in err
    assert "Traceback" not in err


def test_bugs_keep_their_traceback_but_never_the_secrets():
    def step(request, log):
        raise RuntimeError(f"boom with {request.source['password']}")

    code, out, err = invoke(step, '{"source": {"password": "hunter2"}}')
    assert code == 1 and out == ""
    assert "Traceback" in err and "boom" in err
    assert "hunter2" not in err


def test_secret_echoed_in_a_user_error_is_masked():
    def step(request, log):
        raise UserError("login failed for token tok-123456789")

    code, _, err = invoke(step, '{"source": {"token": "tok-123456789"}}')
    assert code == 1 and "tok-123456789" not in err


def test_steps_that_need_a_directory_say_so():
    code, out, err = invoke(lambda r, log: {}, "{}", argv=("in",), needs_directory=True)
    assert code == 1 and out == "" and "DIRECTORY" in err


def test_non_object_stdin_is_rejected_clearly():
    code, _, err = invoke(lambda r, log: [], "[1, 2]")
    assert code == 1 and "JSON object" in err


def test_credentials_in_the_url_are_refused_without_being_echoed():
    from fleet_guard.config import load_source

    try:
        load_source({"url": "https://bot:hunter2@ci.example.com"})
    except ConfigError as error:
        assert "source.url" in error.message and "username/password" in error.message
        assert "hunter2" not in Redactor()(error.message)
    else:
        raise AssertionError("a URL with user:password@ must be refused")


def test_a_version_that_is_not_an_object_is_refused_before_the_step_runs():
    ran = []
    code, out, err = invoke(lambda r, log: ran.append(r) or [], '{"source": {}, "version": "abc"}')
    assert code == 1 and out == "" and ran == []
    assert "`version`" in err and "Traceback" not in err

"""Logging in, using the token, and what a 401 or 403 says, without ever showing a secret."""

from __future__ import annotations

import base64
import io
from urllib.parse import parse_qs

import pytest
import responses

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import SourceConfig
from fleet_guard.errors import AuthError, ConcourseError, PermissionDenied
from fleet_guard.log import Log

URL = "https://ci.internal:8443"
PASSWORD = "s3cret-Pa55word"
ACCESS = "V/bJthBEs+0EaNOtY/OuZ3vSAR1AYzBoAAAAAA"
ACCESS_2 = "Qm9yaW5nIHNlY29uZCB0b2tlbiBmb3IgdGVzdHM"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWludGJvdCJ9.SIGNATURE-ELIDED"
GIVEN_TOKEN = "R2l2ZW4gdG9rZW4gZnJvbSBzb3VyY2UgdG9rZW4"
SECRETS = (PASSWORD, ACCESS, ACCESS_2, ID_TOKEN, GIVEN_TOKEN, "Zmx5")


@pytest.fixture
def atc():
    with responses.RequestsMock() as mock:
        yield mock


def make(**source: object) -> tuple[ConcourseClient, io.StringIO]:
    stderr = io.StringIO()
    config = SourceConfig(url=URL, **source)
    log = Log(debug=True, stream=stderr)
    return ConcourseClient(config, log, sleep=lambda _: None), stderr


def token_reply(atc: responses.RequestsMock, access: str = ACCESS) -> None:
    atc.post(
        f"{URL}/sky/issuer/token",
        json={
            "access_token": access,
            "token_type": "bearer",
            "expires_in": 86399,
            "id_token": ID_TOKEN,
        },
    )


def bearer(call: responses.Call) -> str | None:
    return call.request.headers.get("Authorization")


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_login_is_lazy_and_is_fly_password_grant_with_basic_client_auth(atc):
    token_reply(atc)
    atc.get(f"{URL}/api/v1/workers", json=[])
    client, stderr = make(username="maintbot", password=PASSWORD)
    assert len(atc.calls) == 0, "the constructor must not do I/O"

    assert client.workers() == []
    login, workers = atc.calls
    assert login.request.method == "POST"
    assert parse_qs(login.request.body) == {
        "grant_type": ["password"],
        "username": ["maintbot"],
        "password": [PASSWORD],
        "scope": ["openid profile email federated:id groups"],
    }
    assert bearer(login) == "Basic " + base64.b64encode(b"fly:Zmx5").decode()
    assert bearer(workers) == f"Bearer {ACCESS}"
    assert client.calls == 2
    assert_no_secrets(stderr.getvalue())


def test_the_id_token_is_never_sent(atc):
    token_reply(atc)
    atc.get(f"{URL}/api/v1/info", json={"version": "7.13.2", "worker_version": "2.5"})
    atc.get(f"{URL}/api/v1/workers", json=[])
    client, _ = make(username="maintbot", password=PASSWORD)
    client.info()
    client.workers()
    assert len(atc.calls) == 3, "one login serves every call"
    assert all(ID_TOKEN not in str(c.request.headers) for c in atc.calls)


def test_a_token_from_source_is_used_as_is_without_logging_in(atc):
    atc.get(f"{URL}/api/v1/workers", json=[])
    client, _ = make(token=f"Bearer {GIVEN_TOKEN}\n")  # pasted with a prefix and a newline
    client.workers()
    assert [bearer(c) for c in atc.calls] == [f"Bearer {GIVEN_TOKEN}"]


def test_anonymous_sends_no_authorization_even_with_a_netrc(atc, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine ci.internal login someone password netrc-pass\n")
    monkeypatch.setenv("NETRC", str(netrc))
    atc.get(f"{URL}/api/v1/info", json={"version": "7.13.2", "worker_version": "2.5"})
    client, _ = make()
    client.info()
    assert bearer(atc.calls[0]) is None


def test_a_401_without_credentials_says_that_credentials_are_needed(atc):
    atc.get(f"{URL}/api/v1/workers", status=401, body="not authorized")
    client, _ = make()
    with pytest.raises(AuthError) as caught:
        client.workers()
    message = caught.value.message
    assert "GET /api/v1/workers" in message
    assert "no credentials" in message and "source.username" in message
    assert client.calls == 1


def test_an_expired_login_is_renewed_once_and_the_call_retried(atc):
    token_reply(atc, ACCESS)
    token_reply(atc, ACCESS_2)
    atc.get(f"{URL}/api/v1/workers", status=401, body="not authorized")
    atc.get(f"{URL}/api/v1/workers", json=[{"name": "w1", "state": "running"}])
    client, stderr = make(username="maintbot", password=PASSWORD)
    assert [w.name for w in client.workers()] == ["w1"]
    basic = "Basic " + base64.b64encode(b"fly:Zmx5").decode()
    assert [bearer(c) for c in atc.calls] == [
        basic,
        f"Bearer {ACCESS}",
        basic,
        f"Bearer {ACCESS_2}",
    ]
    assert client.calls == 4
    assert_no_secrets(stderr.getvalue())


def test_a_second_401_after_logging_in_again_is_an_auth_error(atc):
    token_reply(atc, ACCESS)
    token_reply(atc, ACCESS_2)
    atc.get(f"{URL}/api/v1/workers", status=401, body="not authorized")
    client, stderr = make(username="maintbot", password=PASSWORD)
    with pytest.raises(AuthError) as caught:
        client.workers()
    message = caught.value.message
    assert "GET /api/v1/workers" in message
    assert "source.username" in message and "source.password" in message
    assert client.calls == 4, "login, call, login again, call again: then stop"
    assert_no_secrets(message, stderr.getvalue())


def test_a_refused_source_token_is_an_auth_error_at_once(atc):
    atc.get(f"{URL}/api/v1/workers", status=401, body="not authorized")
    client, stderr = make(token=GIVEN_TOKEN)
    with pytest.raises(AuthError) as caught:
        client.workers()
    assert "source.token" in caught.value.message and "expired" in caught.value.message
    assert client.calls == 1
    assert_no_secrets(caught.value.message, stderr.getvalue())


def test_a_refused_source_token_falls_back_to_the_password(atc):
    token_reply(atc)
    atc.get(f"{URL}/api/v1/workers", status=401, body="not authorized")
    atc.get(f"{URL}/api/v1/workers", json=[])
    client, _ = make(token=GIVEN_TOKEN, username="maintbot", password=PASSWORD)
    assert client.workers() == []
    assert [bearer(c) for c in atc.calls] == [
        f"Bearer {GIVEN_TOKEN}",
        "Basic " + base64.b64encode(b"fly:Zmx5").decode(),
        f"Bearer {ACCESS}",
    ]


def test_wrong_password_names_the_source_keys(atc):
    atc.post(
        f"{URL}/sky/issuer/token",
        status=401,
        json={"error": "access_denied", "error_description": "Invalid username or password"},
    )
    client, stderr = make(username="maintbot", password=PASSWORD)
    with pytest.raises(AuthError) as caught:
        client.info()
    message = caught.value.message
    assert "source.username" in message and "source.password" in message
    assert "Invalid username or password" in message
    assert "POST /sky/issuer/token" in message
    assert client.calls == 1
    assert_no_secrets(message, stderr.getvalue())


def test_no_local_users_is_explained(atc):
    atc.post(
        f"{URL}/sky/issuer/token",
        status=400,
        json={
            "error": "invalid_request",
            "error_description": "Requested connector does not exist.",
        },
    )
    client, _ = make(username="maintbot", password=PASSWORD)
    with pytest.raises(AuthError) as caught:
        client.info()
    assert "--add-local-user" in caught.value.message
    assert "source.token" in caught.value.message
    assert_no_secrets(caught.value.message)


def test_a_token_reply_without_access_token_is_an_error_not_a_crash(atc):
    atc.post(f"{URL}/sky/issuer/token", json={"id_token": ID_TOKEN})
    client, _ = make(username="maintbot", password=PASSWORD)
    with pytest.raises(ConcourseError, match="without an access_token"):
        client.info()


@pytest.mark.parametrize(
    ("call", "method", "path", "role"),
    [
        (lambda c: c.workers(), "GET", "/api/v1/workers", "any logged-in user"),
        (lambda c: c.land_worker("w1"), "PUT", "/api/v1/workers/w1/land", "member of the worker"),
        (lambda c: c.prune_worker("w1"), "PUT", "/api/v1/workers/w1/prune", "owner of team main"),
        (lambda c: list(c.build_events(5)), "GET", "/api/v1/builds/5/events", "viewer"),
    ],
)
def test_a_403_is_permission_denied_naming_endpoint_and_role(atc, call, method, path, role):
    atc.add(method, f"{URL}{path}", status=403, body="forbidden")
    client, _ = make(token=GIVEN_TOKEN)
    with pytest.raises(PermissionDenied) as caught:
        call(client)
    assert f"{method} {path}" in caught.value.message
    assert role in caught.value.message
    assert caught.value.status == 403
    assert client.calls == 1, "a 403 is never retried"
    assert_no_secrets(caught.value.message)


def test_debug_lines_show_requests_but_never_headers_or_bodies(atc):
    token_reply(atc)
    atc.get(f"{URL}/api/v1/workers", json=[])
    client, stderr = make(username="maintbot", password=PASSWORD, debug=True)
    client.workers()
    lines = stderr.getvalue().splitlines()
    assert any(
        line.startswith("debug: POST /sky/issuer/token -> 200 in ") and "(attempt 1/4)" in line
        for line in lines
    )
    assert any(line.startswith("debug: GET /api/v1/workers -> 200 in ") for line in lines)
    text = stderr.getvalue()
    assert "Authorization" not in text and "Bearer" not in text and "grant_type" not in text
    assert_no_secrets(text)

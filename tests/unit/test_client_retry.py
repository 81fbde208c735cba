"""Retries: bounded, backed off, honouring Retry-After, and never replaying a rerun."""

from __future__ import annotations

import io
import socket

import pytest
import requests
import responses
import urllib3

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.models import Build
from fleet_guard.concourse.retry import RetryPolicy, retry_after_seconds
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

URL = "https://ci.internal:8443"
TOKEN = "R2l2ZW4gdG9rZW4gZnJvbSBzb3VyY2UgdG9rZW4"
INFO = {"version": "7.13.2", "worker_version": "2.5"}
RERUN_PATH = "/api/v1/teams/main/pipelines/app/jobs/unit/builds/41"
BUILD = Build(
    id=7, team_name="main", name="41", status="errored", job_name="unit", pipeline_name="app"
)


@pytest.fixture
def atc():
    with responses.RequestsMock() as mock:
        yield mock


def make(url: str = URL, **kwargs: object) -> tuple[ConcourseClient, list[float], io.StringIO]:
    sleeps: list[float] = []
    stderr = io.StringIO()
    log = Log(debug=True, stream=stderr)
    client = ConcourseClient(SourceConfig(url=url, token=TOKEN), log, sleep=sleeps.append, **kwargs)
    return client, sleeps, stderr


def refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))


def unresolvable() -> requests.ConnectionError:
    reason = urllib3.exceptions.NameResolutionError(
        "ci.internal",
        None,
        socket.gaierror(-2, "Name or service not known"),
    )
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_passing_gateway_or_overload_error_is_retried_with_backoff(atc, status):
    atc.get(f"{URL}/api/v1/info", status=status)
    atc.get(f"{URL}/api/v1/info", status=status)
    atc.get(f"{URL}/api/v1/info", json=INFO)
    client, sleeps, _ = make()
    assert client.info().version == "7.13.2"
    assert sleeps == [0.5, 1.0]
    assert client.calls == 3


def test_retry_after_is_honoured_and_capped(atc):
    atc.get(f"{URL}/api/v1/info", status=429, headers={"Retry-After": "3"})
    atc.get(f"{URL}/api/v1/info", status=429, headers={"Retry-After": "120"})
    atc.get(f"{URL}/api/v1/info", json=INFO)
    client, sleeps, _ = make()
    client.info()
    assert sleeps == [3.0, 10.0]


def test_attempts_are_bounded_and_the_last_failure_is_explained(atc):
    atc.get(f"{URL}/api/v1/workers", status=503, body="too many requests in flight")
    client, sleeps, _ = make()
    with pytest.raises(ConcourseError) as caught:
        client.workers()
    assert client.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]
    message = caught.value.message
    assert "GET /api/v1/workers" in message and "503" in message
    assert "too many requests in flight" in message
    assert caught.value.status == 503


def test_the_backoff_never_exceeds_its_cap():
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=10.0)
    assert [policy.backoff(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize("status", [400, 404, 405, 409, 500])
def test_client_errors_and_plain_500_are_not_retried(atc, status):
    atc.get(f"{URL}/api/v1/info", status=status, body="nope")
    client, sleeps, _ = make()
    with pytest.raises(ConcourseError) as caught:
        client.info()
    assert client.calls == 1 and sleeps == []
    assert "GET /api/v1/info" in caught.value.message


def test_connection_errors_are_retried_then_name_source_url(atc):
    for _ in range(4):
        atc.get(f"{URL}/api/v1/info", body=unresolvable())
    client, sleeps, _ = make()
    with pytest.raises(ConcourseError) as caught:
        client.info()
    assert client.calls == 4 and sleeps == [0.5, 1.0, 2.0]
    message = caught.value.message
    assert URL in message and "source.url" in message
    assert "could not be resolved" in message


def test_a_refused_connection_on_a_real_closed_port_is_explained():
    with socket.socket() as probe:  # a port that was free a moment ago refuses connections
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, sleeps, stderr = make(url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConcourseError) as caught:
        client.info()
    assert "connection was refused" in caught.value.message
    assert f"http://127.0.0.1:{port}" in caught.value.message
    assert "source.url" in caught.value.message
    assert client.calls == 4 and len(sleeps) == 3
    assert "GET /api/v1/info -> ConnectionError" in stderr.getvalue()


def test_a_rerun_is_not_replayed_after_a_5xx(atc):
    atc.post(f"{URL}{RERUN_PATH}", status=503)
    client, sleeps, _ = make()
    with pytest.raises(ConcourseError, match=r"POST /api/v1/teams/main/.* 503"):
        client.rerun_build(BUILD)
    assert client.calls == 1 and sleeps == []


def test_a_rerun_is_not_replayed_after_a_read_timeout(atc):
    atc.post(f"{URL}{RERUN_PATH}", body=requests.exceptions.ReadTimeout("read timed out"))
    client, _, _ = make()
    with pytest.raises(ConcourseError, match="no answer within 30 s"):
        client.rerun_build(BUILD)
    assert client.calls == 1


def test_a_rerun_is_retried_when_the_connection_was_never_made(atc):
    atc.post(f"{URL}{RERUN_PATH}", body=refused())
    atc.post(
        f"{URL}{RERUN_PATH}",
        json={
            "id": 8,
            "team_name": "main",
            "name": "41.1",
            "status": "pending",
            "rerun_of": {"id": 7},
        },
    )
    client, sleeps, _ = make()
    rerun = client.rerun_build(BUILD)
    assert (rerun.id, rerun.name, rerun.rerun_of) == (8, "41.1", 7)
    assert client.calls == 2 and sleeps == [0.5]


def test_every_request_has_the_timeouts(atc):
    seen = []
    atc.add_callback(
        responses.GET,
        f"{URL}/api/v1/info",
        callback=lambda request: (seen.append(request.req_kwargs["timeout"]), (200, {}, "{}"))[1],
    )
    client, _, _ = make(connect_timeout=1.5, read_timeout=4.0)
    client.info()
    assert seen == [(1.5, 4.0)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_both_forms(value, seconds):
    from datetime import UTC, datetime

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == seconds


@pytest.mark.parametrize("value", ["soon", "-5", "1e9", "", "Wed, 99 Foo 2026 25:61:00 GMT"])
def test_a_retry_after_that_is_no_delay_falls_back_to_the_backoff(atc, value):
    atc.get(f"{URL}/api/v1/info", status=429, headers={"Retry-After": value})
    atc.get(f"{URL}/api/v1/info", json=INFO)
    client, sleeps, _ = make()
    assert client.info().version == "7.13.2"
    assert sleeps == [RetryPolicy().backoff(1)]


def test_a_body_larger_than_the_bound_is_refused_not_read_whole(atc, monkeypatch):
    from fleet_guard.concourse import session

    monkeypatch.setattr(session, "MAX_BODY", 1000)
    atc.get(f"{URL}/api/v1/workers", body="[" + "0," * 5000 + "0]")
    client, _, _ = make()
    with pytest.raises(ConcourseError, match="more than 0 MiB"):
        client.workers()


def test_the_step_deadline_stops_further_requests_and_says_how_many_were_made(atc):
    sleeps: list[float] = []
    config = SourceConfig(url=URL, token=TOKEN, step_timeout=0.0)
    client = ConcourseClient(config, Log(stream=io.StringIO()), sleep=sleeps.append)
    with pytest.raises(ConcourseError, match=r"step_timeout \(0 s\) passed after 0 requests"):
        client.info()

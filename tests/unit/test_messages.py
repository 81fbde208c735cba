"""Messages a person can act on: each names the key or endpoint, and the fix that works."""

from __future__ import annotations

import io

import pytest
import requests
import responses

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.models import Worker
from fleet_guard.config import SourceConfig, load_source
from fleet_guard.errors import ConcourseError, ConfigError, UserError
from fleet_guard.log import Log
from fleet_guard.params import Action, load_put_params
from fleet_guard.remediation import plan_workers

URL = "https://ci.internal:8443"
TOKEN = "R2l2ZW4gdG9rZW4gZnJvbSBzb3VyY2UgdG9rZW4"


@pytest.fixture
def atc():
    with responses.RequestsMock() as mock:
        yield mock


def make() -> ConcourseClient:
    log = Log(stream=io.StringIO())
    return ConcourseClient(SourceConfig(url=URL, token=TOKEN), log, sleep=lambda _: None)


def source_problems(**source: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_source({"url": "https://ci.example.com", **source})
    return caught.value.message


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ci.example.com", "has no scheme: add https:// (https://ci.example.com)"),
        ("http://ci.example.com:443", "plain http:// to 443, the HTTPS port: use https://"),
        (
            "https://ci.example.com/teams/main/pipelines/x",
            "is a page of the web UI; give the address alone, without the path: "
            "https://ci.example.com",
        ),
    ],
)
def test_the_usual_url_mistakes_get_their_fix(url, said):
    message = source_problems(url=url)
    assert said in message
    assert message.count("source.url") == 1, "one clear line, not the pattern's as well"


def test_a_url_behind_a_path_prefix_is_still_accepted():
    assert load_source({"url": "https://example.com/concourse"}).url.endswith("/concourse")


def test_ca_certs_as_one_string_says_it_must_be_a_list_without_the_pem():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB" + "A" * 500 + "\n-----END CERTIFICATE-----"
    message = source_problems(ca_certs=pem)
    assert "source.ca_certs: must be a list of PEM certificates" in message
    assert "MIIB" not in message


def test_an_unknown_enum_value_gets_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"'lnad' is not one of .* \(did you mean 'land'\?\)"):
        load_put_params({"action": "lnad"})
    assert "did you mean 'containerd'" in source_problems(facts={"runtime": "containerd2"})
    assert "did you mean 'runtime'" in source_problems(facts={"runtme": "containerd"})


def test_429_after_the_retries_is_a_rate_limit_not_a_bug(atc):
    for _ in range(4):
        atc.get(f"{URL}/api/v1/info", status=429, headers={"X-Concourse-Version": "7.13.2"})
    with pytest.raises(ConcourseError) as caught:
        make().info()
    assert "rate-limited" in caught.value.message
    assert "bug" not in caught.value.message


def test_a_server_that_is_not_the_atc_is_not_told_to_try_again_later(atc):
    atc.get(f"{URL}/api/v1/info", status=500, body="<html>oops</html>")
    with pytest.raises(ConcourseError) as caught:
        make().info()
    assert "not the Concourse API" in caught.value.message
    assert "try again later" not in caught.value.message


def test_the_atc_failing_is_still_worth_another_try(atc):
    atc.get(f"{URL}/api/v1/info", status=500, headers={"X-Concourse-Version": "7.13.2"})
    with pytest.raises(ConcourseError, match="try again later"):
        make().info()


def test_a_timeout_says_how_long_it_waited_and_that_it_retried(atc):
    for _ in range(4):
        atc.get(f"{URL}/api/v1/info", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ConcourseError) as caught:
        make().info()
    assert "no answer within 30 s, 4 attempts over" in caught.value.message


def test_params_workers_naming_no_registered_worker_is_an_error():
    workers = [Worker("w-1", "running", "linux"), Worker("w-2", "running", "linux")]
    params = load_put_params({"action": "land", "workers": ["w-l"]})
    with pytest.raises(UserError, match=r"names w-l, which no registered worker .*w-1, w-2"):
        plan_workers(Action.LAND, ["w-1"], workers, params)

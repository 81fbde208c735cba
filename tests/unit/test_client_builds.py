"""Listing builds page by page, the reads of the fleet, and the remediation calls."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from fleet_guard.concourse.client import ConcourseClient, instance_var_params
from fleet_guard.concourse.models import Build
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

URL = "https://ci.internal:8443"  # what source.url says
EXTERNAL = "https://ci.example.com"  # what the ATC writes into its Link headers
TOKEN = "R2l2ZW4gdG9rZW4gZnJvbSBzb3VyY2UgdG9rZW4"
SAMPLE = json.loads((Path(__file__).parent / "data" / "builds.json").read_text())
# In the sample, 48213 ("311", errored) started at 1747915500 and ended at 1747915518.
OLD_311_START, OLD_311_END = 1747915500, 1747915518


@pytest.fixture
def atc():
    with responses.RequestsMock() as mock:
        yield mock


def make(**source: object) -> ConcourseClient:
    config = SourceConfig(url=URL, **{"token": TOKEN, **source})
    return ConcourseClient(config, Log(stream=io.StringIO()), sleep=lambda _: None)


def build(id: int, start: int | None, end: int | None = None, **extra: object) -> dict:
    return {
        "id": id,
        "team_name": "main",
        "name": str(id),
        "status": "errored",
        "api_url": f"/api/v1/builds/{id}",
        "job_name": "unit",
        "pipeline_name": "app",
        **({"start_time": start} if start else {}),
        **({"end_time": end} if end else {}),
        **extra,
    }


def next_link(path: str, to: int, limit: int) -> dict[str, str]:
    return {"Link": f'<{EXTERNAL}{path}?to={to}&limit={limit}>; rel="next"'}


def queries(atc: responses.RequestsMock) -> list[tuple[str, dict[str, str]]]:
    out = []
    for call in atc.calls:
        parts = urlsplit(call.request.url)
        assert f"{parts.scheme}://{parts.netloc}" == URL, "requests must go to source.url"
        out.append((parts.path, dict(parse_qsl(parts.query))))
    return out


def test_the_window_ends_at_the_first_old_original_build_and_checks_are_skipped(atc):
    atc.get(f"{URL}/api/v1/builds", json=SAMPLE, headers=next_link("/api/v1/builds", 48201, 10))
    listing = make().list_builds(since=OLD_311_END + 1, max_builds=1000)
    # 48227 is a check build; 48226 is the rerun "311.1" listed before its original 48213,
    # which started and ended before the window, so the walk stops there.
    assert [b.id for b in listing.builds] == [48230, 48229, 48224, 48221, 48218, 48226]
    assert (listing.pages, listing.capped) == (1, False)
    assert queries(atc) == [("/api/v1/builds", {"limit": "1000"})]  # the ATC has no maximum


def test_the_build_that_ends_the_window_is_kept_when_it_ended_inside_it(atc):
    atc.get(f"{URL}/api/v1/builds", json=SAMPLE)
    listing = make().list_builds(since=OLD_311_START + 1, max_builds=1000)
    assert [b.id for b in listing.builds][-2:] == [48226, 48213]


def test_pages_follow_the_link_but_go_to_source_url(atc):
    path = "/api/v1/builds"
    now = 2_000_000_000
    page1 = [build(300 - n, now - n) for n in range(100)]
    page2 = [build(200 - n, now - 100 - n) for n in range(100)]
    page3 = [build(100 - n, now - 200 - n) for n in range(50)]
    atc.get(
        f"{URL}{path}",
        json=page1,
        headers={
            "Link": f'<{EXTERNAL}{path}?from=301&limit=100>; rel="previous", '
            f'<{EXTERNAL}{path}?to=200&limit=100>; rel="next"'
        },
    )
    atc.get(f"{URL}{path}", json=page2, headers=next_link(path, 100, 100))
    atc.get(f"{URL}{path}", json=page3)
    listing = make().list_builds(since=now - 10_000, max_builds=1000)
    assert len(listing.builds) == 250
    assert (listing.pages, listing.capped) == (3, False)
    assert queries(atc) == [
        (path, {"limit": "1000"}),
        (path, {"to": "200", "limit": "100"}),  # the Link's own limit
        (path, {"to": "100", "limit": "100"}),
    ]


def test_max_builds_caps_the_listing_and_shrinks_the_last_page(atc):
    path = "/api/v1/builds"
    now = 2_000_000_000
    atc.get(
        f"{URL}{path}",
        json=[build(500 - n, now - n) for n in range(100)],
        headers=next_link(path, 400, 100),
    )
    atc.get(
        f"{URL}{path}",
        json=[build(400 - n, now - 100 - n) for n in range(50)],
        headers=next_link(path, 350, 50),
    )
    listing = make().list_builds(since=0, max_builds=150)
    assert len(listing.builds) == 150
    assert (listing.pages, listing.capped) == (2, True)
    assert [q for _, q in queries(atc)] == [{"limit": "150"}, {"to": "400", "limit": "50"}]


def test_check_builds_do_not_count_towards_max_builds(atc):
    atc.get(f"{URL}/api/v1/builds", json=SAMPLE, headers=next_link("/api/v1/builds", 48201, 10))
    listing = make().list_builds(since=0, max_builds=3)
    assert [b.id for b in listing.builds] == [48230, 48229, 48224]
    assert listing.capped


def test_pending_builds_and_in_window_reruns_of_old_builds_are_kept(atc):
    now = 2_000_000_000
    atc.get(
        f"{URL}/api/v1/builds",
        json=[
            build(10, None),  # pending: no start_time yet
            build(12, now - 50, now - 10, rerun_of={"id": 3, "name": "3"}),  # rerun, in window
            build(11, now - 9000, now - 8000, rerun_of={"id": 3, "name": "3"}),  # rerun, too old
            build(9, now - 60, None),  # still running
            build(3, now - 9999, now - 9900),  # the old original: ends the walk
            build(2, now - 5),  # never reached
        ],
    )
    listing = make().list_builds(since=now - 100, max_builds=100)
    assert [b.id for b in listing.builds] == [10, 12, 9]


def test_a_link_that_does_not_go_back_ends_the_walk(atc):
    path = "/api/v1/builds"
    atc.get(f"{URL}{path}", json=[build(50, 2_000_000_000)], headers=next_link(path, 49, 1))
    atc.get(f"{URL}{path}", json=[build(49, 2_000_000_000)], headers=next_link(path, 49, 1))
    listing = make().list_builds(since=0, max_builds=100)
    assert listing.pages == 2 and [b.id for b in listing.builds] == [50, 49]


def test_teams_are_paged_one_after_the_other_within_one_max_builds(atc):
    now = 2_000_000_000
    atc.get(f"{URL}/api/v1/teams/platform/builds", json=[build(20 - n, now - n) for n in range(3)])
    atc.get(f"{URL}/api/v1/teams/o%2Fss/builds", json=[build(10 - n, now - n) for n in range(3)])
    listing = make().list_builds(since=0, max_builds=5, teams=("platform", "o/ss"))
    assert [b.id for b in listing.builds] == [20, 19, 18, 10, 9]
    assert listing.capped and listing.pages == 2
    assert queries(atc) == [
        ("/api/v1/teams/platform/builds", {"limit": "5"}),
        ("/api/v1/teams/o%2Fss/builds", {"limit": "2"}),
    ]


def test_a_team_that_cannot_be_listed_is_named_and_the_others_still_listed(atc):
    atc.get(f"{URL}/api/v1/teams/nope/builds", status=404)
    atc.get(f"{URL}/api/v1/teams/hidden/builds", status=403)
    atc.get(f"{URL}/api/v1/teams/platform/builds", json=[build(5, 100)])
    listing = make().list_builds(since=0, max_builds=5, teams=("nope", "hidden", "platform"))
    assert listing.teams_not_visible == ("nope", "hidden")
    assert [b.id for b in listing.builds] == [5]


def test_the_all_builds_listing_failing_still_fails(atc):
    atc.get(f"{URL}/api/v1/builds", status=403)
    with pytest.raises(ConcourseError, match="403"):
        make().list_builds(since=0, max_builds=5)


def test_a_build_list_that_is_not_build_json_is_a_message(atc):
    atc.get(f"{URL}/api/v1/builds", json=[{"no": "id"}])
    with pytest.raises(ConcourseError, match="cannot read"):
        make().list_builds(since=0, max_builds=5)


def test_an_html_page_instead_of_json_is_explained(atc):
    atc.get(f"{URL}/api/v1/info", body="<html>Sign in</html>", content_type="text/html")
    with pytest.raises(ConcourseError, match="not the JSON the Concourse API sends"):
        make().info()


def test_a_redirect_is_not_followed_but_explained(atc):
    atc.get(f"{URL}/api/v1/info", status=301, headers={"Location": "https://ci.example.com/"})
    client = make()
    with pytest.raises(ConcourseError, match=r"redirected .* to https://ci\.example\.com/"):
        client.info()
    assert client.calls == 1


def test_info_workers_and_user_are_read_into_models(atc):
    atc.get(
        f"{URL}/api/v1/info",
        json={
            "version": "7.13.2",
            "worker_version": "2.5",
            "external_url": EXTERNAL,
            "feature_flags": {},
        },
    )
    atc.get(
        f"{URL}/api/v1/workers",
        json=[
            {
                "name": "w1",
                "state": "running",
                "platform": "linux",
                "tags": None,
                "team": "",
                "version": "2.5",
                "resource_types": None,
            },
        ],
    )
    atc.get(
        f"{URL}/api/v1/user",
        json={"display_user_id": "maintbot", "is_admin": False, "teams": {"platform": ["member"]}},
    )
    client = make()
    assert client.info().external_url == EXTERNAL
    assert client.workers()[0].tags == ()
    assert client.user().teams == {"platform": ("member",)}
    assert client.calls == 3


@pytest.mark.parametrize("action", ["land", "retire", "prune"])
def test_worker_actions_put_to_the_worker_path(atc, action):
    atc.put(f"{URL}/api/v1/workers/worker%2F1/{action}", body="")
    client = make()
    getattr(client, f"{action}_worker")("worker/1")
    assert atc.calls[0].request.headers["Content-Type"] == "application/json"


def test_pruning_a_running_worker_explains_itself(atc):
    atc.put(
        f"{URL}/api/v1/workers/w1/prune", status=400, json={"stderr": "cannot prune running worker"}
    )
    client = make()
    with pytest.raises(ConcourseError) as caught:
        client.prune_worker("w1")
    message = caught.value.message
    assert "PUT /api/v1/workers/w1/prune" in message
    assert "cannot prune running worker" in message
    assert "land or retire" in message
    assert client.calls == 1


def test_an_unknown_worker_is_named(atc):
    atc.put(f"{URL}/api/v1/workers/gone/land", status=404)
    with pytest.raises(ConcourseError, match="no worker 'gone'"):
        make().land_worker("gone")


def test_rerun_posts_to_the_job_build_with_instance_vars(atc):
    atc.post(
        f"{URL}/api/v1/teams/platform/pipelines/release/jobs/deploy/builds/57",
        json={
            "id": 48300,
            "team_name": "platform",
            "name": "57.1",
            "status": "pending",
            "rerun_of": {"id": 48221, "name": "57"},
            "rerun_number": 1,
        },
    )
    original = Build.from_json(next(b for b in SAMPLE if b["id"] == 48221))
    rerun = make().rerun_build(original)
    assert (rerun.id, rerun.rerun_of, rerun.rerun_number) == (48300, 48221, 1)
    assert queries(atc) == [
        (
            "/api/v1/teams/platform/pipelines/release/jobs/deploy/builds/57",
            {"vars.env": '"staging"'},
        ),
    ]


def test_instance_vars_flatten_like_the_atc_writes_them():
    assert instance_var_params(
        {"env": "prod", "n": 3, "geo": {"region": "eu", "zone.a": True}, "tags": ["a", "b"]}
    ) == [
        ("vars.env", '"prod"'),
        ('vars.geo."zone.a"', "true"),
        ("vars.geo.region", '"eu"'),
        ("vars.n", "3"),
        ("vars.tags", '["a","b"]'),
    ]
    assert instance_var_params(None) == []


def test_only_job_builds_can_be_rerun():
    with pytest.raises(ValueError, match="not a job build"):
        make().rerun_build(Build(id=1, team_name="main", name="1187", status="errored"))


def test_pages_that_never_end_stop_at_the_page_limit_and_count_as_capped(monkeypatch):
    from fleet_guard.concourse import paging

    monkeypatch.setattr(paging, "MAX_PAGES", 5)
    calls = []

    def endless(path: str, query: list[tuple[str, str]]):
        calls.append(query)
        upper = int(dict(query).get("to", "1000000"))
        checks = [Build.from_json({**build(upper - 1, 10**10), "name": "check"})]
        return checks, f"{EXTERNAL}{path}?to={upper - 1}&limit=100"

    listing = paging.list_builds(endless, since=0, max_builds=50)
    assert len(calls) == 5 and listing.capped and listing.builds == []


def test_a_page_that_repeats_builds_already_seen_ends_the_walk():
    from fleet_guard.concourse import paging

    same = [Build.from_json(build(9, 10**10)), Build.from_json(build(8, 10**10))]
    calls = []

    def repeating(path: str, query: list[tuple[str, str]]):
        calls.append(query)
        upper = int(dict(query).get("to", "100"))
        return same, f"{EXTERNAL}{path}?to={upper - 1}&limit=100"

    listing = paging.list_builds(repeating, since=0, max_builds=50)
    assert [b.id for b in listing.builds] == [9, 8], "each build once"
    assert len(calls) == 2


def test_wrong_typed_build_fields_are_unknown_not_a_crash():
    b = Build.from_json(
        {"id": 4, "start_time": "yesterday", "end_time": 1.5, "rerun_of": "x", "job_name": {}}
    )
    assert (b.start_time, b.end_time, b.rerun_of, b.job_name) == (None, None, None, None)
    with pytest.raises(TypeError):
        Build.from_json({"id": "4"})

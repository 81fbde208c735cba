"""Recent builds, page by page, newest first, until the time window or the cap is reached.

The build list endpoints have no "since" parameter (`timestamps` paging is broken in 7.x), so
the window is found by walking back from the newest build. Pages are chained the way fly does
it: only `to` and `limit` are read from the `rel="next"` Link, and the next request goes to
`source.url`, because the Link is built from the ATC's external_url, which may be an address
this client cannot or should not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from fleet_guard.concourse.models import Build
from fleet_guard.errors import ConcourseError

PAGE_SIZE = 100  # the ATC's own default; it has no maximum, but large pages are slow queries

# (path, query) -> (the page's builds, URL of its rel="next" Link or None)
PageFetcher = Callable[[str, list[tuple[str, str]]], tuple[list[Build], str | None]]


@dataclass(frozen=True)
class BuildListing:
    builds: list[Build]
    pages: int
    capped: bool  # stopped at max_builds while more builds may have been in the window
    # Teams of source.teams whose builds could not be listed (403/404): part of the coverage.
    teams_not_visible: tuple[str, ...] = ()


def list_builds(
    fetch: PageFetcher, *, since: int, max_builds: int, teams: Sequence[str] = ()
) -> BuildListing:
    """Job and one-off builds that ran in the window, check builds left out.

    Builds come ordered `COALESCE(rerun_of, id) DESC, id DESC`: by creation, with each rerun
    listed next to the build it reran. So the walk stops at the first build that is not a rerun
    and started before `since` (that build is kept if it ended inside the window or has not
    ended yet). Known limits, all from ordering by creation rather than by time: a recent
    rerun of an old build sorts next to its original, deep in the list, and is missed when the
    walk stops before reaching it; and a build that ran inside the window but was created
    before the build that ends the walk (it waited long in pending, or ran longer) is missed
    too.
    """
    collected: list[Build] = []
    pages = 0
    capped = False
    hidden: list[str] = []
    every: Sequence[str | None] = teams or [None]
    for team in every:
        walk = _TeamWalk(fetch, builds_path(team), since=since, limit=max_builds - len(collected))
        try:
            collected += walk.run()
        except ConcourseError as error:
            if team is None or error.status not in (403, 404):
                raise
            hidden.append(team)  # one team we may not list must not blind the others
        pages += walk.pages
        if walk.capped:
            capped = True
            break
    return BuildListing(
        builds=collected, pages=pages, capped=capped, teams_not_visible=tuple(hidden)
    )


def builds_path(team: str | None) -> str:
    """All visible builds, or one team's (which any logged-in user may list in 7.x)."""
    return f"/api/v1/teams/{quote(team, safe='')}/builds" if team else "/api/v1/builds"


class _TeamWalk:
    """One endpoint's pages; `limit` is what is left of max_builds across all endpoints."""

    def __init__(self, fetch: PageFetcher, path: str, *, since: int, limit: int) -> None:
        self._fetch = fetch
        self._path = path
        self._since = since
        self._limit = limit
        self.pages = 0
        self.capped = False

    def run(self) -> list[Build]:
        kept: list[Build] = []
        if self._limit <= 0:
            self.capped = True
            return kept
        upper: int | None = None  # the `to` of the next page; None for the newest page
        page_size = PAGE_SIZE
        while True:
            query = [("limit", str(min(page_size, self._limit - len(kept))))]
            if upper is not None:
                query.insert(0, ("to", str(upper)))
            page, next_url = self._fetch(self._path, query)
            self.pages += 1
            for index, build in enumerate(page):
                if build.is_check:
                    continue
                if self._ends_window(build):
                    if self._still_in_window(build):
                        kept.append(build)
                    return kept
                if not self._before_window(build):
                    kept.append(build)
                if len(kept) >= self._limit:
                    self.capped = index < len(page) - 1 or next_url is not None
                    return kept
            older = _next_page(next_url)
            if older is None or (upper is not None and older[0] >= upper):
                return kept  # no older page, or a Link that would not make progress
            upper, page_size = older[0], min(PAGE_SIZE, older[1] or PAGE_SIZE)

    def _ends_window(self, build: Build) -> bool:
        return (
            build.rerun_of is None
            and build.start_time is not None
            and (build.start_time < self._since)
        )

    def _still_in_window(self, build: Build) -> bool:
        return build.end_time is None or build.end_time >= self._since

    def _before_window(self, build: Build) -> bool:
        """A rerun that started and ended before the window: skipped, but the walk goes on."""
        return (
            build.start_time is not None
            and build.start_time < self._since
            and build.end_time is not None
            and build.end_time < self._since
        )


def _next_page(next_url: str | None) -> tuple[int, int | None] | None:
    """`to` and `limit` of a rel="next" Link; its host and anything else are ignored."""
    if not next_url:
        return None
    query: Mapping[str, list[str]] = parse_qs(urlsplit(next_url).query)
    try:
        upper = int(query["to"][0])
    except (KeyError, IndexError, ValueError):
        return None
    try:
        limit: int | None = max(1, int(query["limit"][0]))
    except (KeyError, IndexError, ValueError):
        limit = None
    return upper, limit

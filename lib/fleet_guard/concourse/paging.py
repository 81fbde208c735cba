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

# The ATC's default is 100 and it has no maximum: 1,000 makes a cold listing of a busy day tens
# of requests, not hundreds, while one page stays a modest query and a few hundred KB.
PAGE_SIZE = 1000
# Room for builds created since the last check in the one page of an incremental listing; a
# page that comes back full means more changed than that, and the window is listed afresh.
NEW_BUILDS_ROOM = 1000
# A walk never follows more Links than this: a server whose pages never end must not keep a
# check busy forever (pages of check builds alone add nothing towards max_builds).
MAX_PAGES = 1000

# (path, query) -> (the page's builds, URL of its rel="next" Link or None)
PageFetcher = Callable[[str, list[tuple[str, str]]], tuple[list[Build], str | None]]


@dataclass(frozen=True)
class Series:
    """One endpoint's listing as the next check builds on it: its builds in the window
    (newest first) and the highest build ID it has seen, in the window or not."""

    newest: int
    builds: Sequence[Build]


@dataclass(frozen=True)
class BuildListing:
    builds: list[Build]
    pages: int
    capped: bool  # stopped at max_builds while more builds may have been in the window
    # Teams of source.teams whose builds could not be listed (403/404): part of the coverage.
    teams_not_visible: tuple[str, ...] = ()
    # Builds the listing fetched: all of them when cold; when incremental, the new builds and
    # the fresh state of those unfinished last time (None: the listing was cold).
    fetched: int | None = None
    # Each endpoint's listing (by path): what the next check builds on.
    series: Mapping[str, Series] | None = None


def list_builds(
    fetch: PageFetcher,
    *,
    since: int,
    max_builds: int,
    teams: Sequence[str] = (),
    known: Mapping[str, Series] | None = None,
    on_kept: Callable[[Build], None] | None = None,
) -> BuildListing:
    """Job and one-off builds that ran in the window, check builds left out.

    With `known` (each endpoint's listing as the last check left it), an endpoint costs
    one request: see `_TeamWalk.incremental`. An endpoint not in `known` is walked cold.
    `on_kept` hears of each build as soon as its page is in, so its events can be read
    meanwhile.

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
    series: dict[str, Series] = {}
    pages = 0
    capped = False
    fetched = 0
    incremental = False
    hidden: list[str] = []
    every: Sequence[str | None] = teams or [None]
    for team in every:
        path = builds_path(team)
        walk = _TeamWalk(
            fetch, path, since=since, limit=max_builds - len(collected), on_kept=on_kept
        )
        try:
            previous = known.get(path) if known is not None else None
            update = walk.incremental(previous) if previous is not None else None
            if update is None:
                builds = walk.run()
                fetched += len(builds)
            else:
                builds, new = update
                fetched += new
                incremental = True
        except ConcourseError as error:
            if team is None or error.status not in (403, 404):
                raise
            hidden.append(team)  # one team we may not list must not blind the others
            builds = []
        else:
            series[path] = Series(walk.newest, builds)
        collected += builds
        pages += walk.pages
        if walk.capped:
            capped = True
            break
    return BuildListing(
        builds=collected,
        pages=pages,
        capped=capped,
        teams_not_visible=tuple(hidden),
        fetched=fetched if incremental else None,
        series=series,
    )


def builds_path(team: str | None) -> str:
    """All visible builds, or one team's (which any logged-in user may list in 7.x)."""
    return f"/api/v1/teams/{quote(team, safe='')}/builds" if team else "/api/v1/builds"


class _TeamWalk:
    """One endpoint's pages; `limit` is what is left of max_builds across all endpoints."""

    def __init__(
        self,
        fetch: PageFetcher,
        path: str,
        *,
        since: int,
        limit: int,
        on_kept: Callable[[Build], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._on_kept = on_kept or (lambda _: None)
        self._path = path
        self._since = since
        self._limit = limit
        self.pages = 0
        self.capped = False
        self.newest = 0  # the highest build ID on any page, kept or not

    def run(self) -> list[Build]:
        kept: list[Build] = []
        if self._limit <= 0:
            self.capped = True
            return kept
        upper: int | None = None  # the `to` of the next page; None for the newest page
        page_size = PAGE_SIZE
        seen: set[int] = set()
        while True:
            query = [("limit", str(min(page_size, self._limit - len(kept))))]
            if upper is not None:
                query.insert(0, ("to", str(upper)))
            page, next_url = self._fetch(self._path, query)
            self.pages += 1
            self.newest = max([self.newest, *(b.id for b in page)])
            fresh = {b.id for b in page} - seen
            if page and not fresh:
                return kept  # the server repeats itself: nothing more to learn from it
            seen.update(b.id for b in page)
            for index, build in enumerate(page):
                if build.is_check or build.id not in fresh:
                    continue
                if self._ends_window(build):
                    if self._still_in_window(build):
                        kept.append(build)
                        self._on_kept(build)
                    return kept
                if not self._before_window(build):
                    kept.append(build)
                    self._on_kept(build)
                if len(kept) >= self._limit:
                    self.capped = index < len(page) - 1 or next_url is not None
                    return kept
            older = _next_page(next_url)
            if older is None or (upper is not None and older[0] >= upper):
                return kept  # no older page, or a Link that would not make progress
            if self.pages >= MAX_PAGES:
                self.capped = True
                return kept
            upper, page_size = older[0], min(PAGE_SIZE, older[1] or PAGE_SIZE)

    def incremental(self, previous: Series) -> tuple[list[Build], int] | None:
        """The endpoint's builds from what the last check listed plus one request; None when
        the page comes back full (too much changed: list it cold instead).

        The page is `from=<lowest ID still of interest>`: one past the newest build known,
        or the oldest build that had not finished. `from` filters on the ID, whatever the sort
        order, so a fresh rerun of an old build is in it too, and for every ID from there up
        the page is the truth: new builds, builds that finished meanwhile, and none of the
        builds that are gone. Below it nothing can change, except leaving the window, which
        costs no request.
        """
        known = previous.builds
        newest = max([previous.newest, *(b.id for b in known)])
        unfinished = [b.id for b in known if not b.finished]
        low = min([newest + 1, *unfinished])
        room = sum(1 for b in known if b.id >= low) + NEW_BUILDS_ROOM
        page, _ = self._fetch(self._path, [("from", str(low)), ("limit", str(room))])
        self.pages += 1
        if len(page) >= room:
            return None
        self.newest = max([newest, *(b.id for b in page)])
        fresh = [b for b in page if not b.is_check and b.id >= low]
        merged = [b for b in known if b.id < low] + fresh
        kept = sorted(
            (b for b in merged if not self._before_window(b)), key=_server_order, reverse=True
        )
        if len(kept) > self._limit:
            self.capped = True
            kept = kept[: max(0, self._limit)]
        for build in kept:
            self._on_kept(build)
        return kept, len(fresh)

    def _ends_window(self, build: Build) -> bool:
        return (
            build.rerun_of is None
            and build.start_time is not None
            and (build.start_time < self._since)
        )

    def _still_in_window(self, build: Build) -> bool:
        return build.end_time is None or build.end_time >= self._since

    def _before_window(self, build: Build) -> bool:
        """Started and ended before the window: a rerun the walk skips, or a build that left."""
        return (
            build.start_time is not None
            and build.start_time < self._since
            and build.end_time is not None
            and build.end_time < self._since
        )


def _server_order(build: Build) -> tuple[int, int]:
    """The ATC's `COALESCE(rerun_of, id) DESC, id DESC`, when sorted in reverse."""
    return (build.rerun_of if build.rerun_of is not None else build.id, build.id)


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

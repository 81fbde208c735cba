#!/usr/bin/env python3
"""The benchmark's clients, each run as its own process so wall time and peak RSS are its own.

    clients.py naive URL SINCE          the script an operator writes in an afternoon
    clients.py drain URL SINCE          the floor: same requests, 4 streams, gunzip, find `end`
    clients.py fleet-guard-stream URL   Fleet Guard's reader and matcher on the newest build
    clients.py naive-stream URL         the naive reader on the newest build
    clients.py drain-stream URL         the byte-drain on the newest build

Each prints one JSON line: `seconds` (its own timing of the work that matters), `bytes`
(decoded stream bytes, when it counts them) and `found` (errored builds whose `error` event
carries `interrupted system call`, with the worker it names). The peers use only `requests`
and the standard library; none of them shares code with Fleet Guard.
"""

from __future__ import annotations

import json
import re
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

USER, PASSWORD = "admin", "admin-pass"
EINTR = "interrupted system call"
ON_WORKER = re.compile(r"on worker ([^\s:]+):")


def login(url: str) -> requests.Session:
    session = requests.Session()
    token = session.post(
        f"{url}/sky/issuer/token",
        auth=("fly", "Zmx5"),
        data={
            "grant_type": "password",
            "username": USER,
            "password": PASSWORD,
            "scope": "openid profile email federated:id groups",
        },
        timeout=30,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def recent_builds(session: requests.Session, url: str, since: int) -> list[dict[str, Any]]:
    """Newest first, 100 a page (the API default), until a build started before `since`."""
    builds: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = session.get(f"{url}/api/v1/builds", params=params, timeout=30)
        for build in response.json():
            if build.get("start_time", since) < since and not build.get("rerun_of"):
                return builds
            builds.append(build)
        older = response.links.get("next")
        if not older:
            return builds
        params = {"to": parse_qs(urlsplit(older["url"]).query)["to"][0], "limit": 100}


def naive_events(session: requests.Session, url: str, build_id: int) -> list[list[Any]]:
    """`iter_lines`, `json.loads` on every data line, stop at `event: end`."""
    found: list[list[Any]] = []
    with session.get(f"{url}/api/v1/builds/{build_id}/events", stream=True, timeout=30) as r:
        for line in r.iter_lines():
            if line == b"event: end":
                break
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event["event"] == "error" and EINTR in event["data"]["message"]:
                named = ON_WORKER.search(event["data"]["message"])
                found.append([build_id, named.group(1) if named else None])
    return found


def drain_events(session: requests.Session, url: str, build_id: int) -> int:
    """Reads the socket in large blocks, strips the chunk framing, gunzips, looks for `end`.

    The least work that still knows where the stream ends: the bytes a check cannot avoid.
    """
    with session.get(f"{url}/api/v1/builds/{build_id}/events", stream=True, timeout=30) as r:
        sock = r.raw._fp.fp  # the socket under http.client, whose chunk parsing we skip
        inflate = zlib.decompressobj(31)
        pending = b""
        seen = b""
        total = 0
        while True:
            block = sock.read1(1 << 18)
            if not block:
                return total
            pending += block
            parts = []
            at = 0
            while True:
                eol = pending.find(b"\r\n", at)
                if eol < 0:
                    break
                size = int(pending[at:eol].split(b";")[0], 16)
                if size == 0 or eol + 4 + size > len(pending):
                    break
                parts.append(pending[eol + 2 : eol + 2 + size])
                at = eol + 4 + size
            pending = pending[at:]
            text = inflate.decompress(b"".join(parts))
            total += len(text)
            if b"\nevent: end\n" in seen[-16:] + text[:16] or b"\nevent: end\n" in text:
                return total
            seen = text[-16:]


def naive(url: str, since: int) -> dict[str, Any]:
    session = login(url)
    session.get(f"{url}/api/v1/workers", timeout=30).json()
    found = []
    for build in recent_builds(session, url, since):
        if build["status"] == "errored":
            found += naive_events(session, url, build["id"])
    return {"found": sorted(found)}


def drain(url: str, since: int) -> dict[str, Any]:
    session = login(url)
    session.get(f"{url}/api/v1/workers", timeout=30).json()
    errored = [b["id"] for b in recent_builds(session, url, since) if b["status"] == "errored"]
    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(lambda i: drain_events(session, url, i), errored))
    return {"bytes": total}


def newest_build(url: str) -> tuple[requests.Session, int]:
    session = login(url)
    return session, session.get(f"{url}/api/v1/builds", timeout=30).json()[0]["id"]


def timed(work: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = work()
    return {"seconds": time.perf_counter() - started, **result}


def fleet_guard_stream(url: str) -> dict[str, Any]:
    import io

    from fleet_guard.advisories.loader import load_builtin_rules
    from fleet_guard.concourse.client import ConcourseClient
    from fleet_guard.config import load_source
    from fleet_guard.evidence import EvidenceMatcher
    from fleet_guard.log import Log

    config = load_source({"url": url, "username": USER, "password": PASSWORD})
    with ConcourseClient(config, Log(stream=io.StringIO())) as client:
        client.info()  # logs in, so only the stream is timed
        build = client.list_builds(since=0, max_builds=1).builds[0]
        matcher = EvidenceMatcher(load_builtin_rules(), base_url=url)

        def read() -> dict[str, Any]:
            wanted = matcher.wanted_events
            events = client.build_events(build.id, max_bytes=1 << 40, events=wanted)
            found = matcher.match_build(build, events)
            return {"found": sorted([e.build_id, e.worker] for e in found)}

        return timed(read)


def main() -> None:
    mode, url = sys.argv[1], sys.argv[2].rstrip("/")
    if mode == "naive":
        result = timed(lambda: naive(url, int(sys.argv[3])))
    elif mode == "drain":
        result = timed(lambda: drain(url, int(sys.argv[3])))
    elif mode == "naive-stream":
        session, build_id = newest_build(url)
        result = timed(lambda: {"found": naive_events(session, url, build_id)})
    elif mode == "drain-stream":
        session, build_id = newest_build(url)
        result = timed(lambda: {"bytes": drain_events(session, url, build_id)})
    elif mode == "fleet-guard-stream":
        result = fleet_guard_stream(url)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

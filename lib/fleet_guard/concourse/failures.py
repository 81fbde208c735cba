"""Turns an ATC refusal into one paragraph that names the endpoint and says what to do.

ATC error bodies are plain text (`forbidden`), empty, or, for prune only, JSON; a proxy in
front may answer with an HTML page. So a body is never parsed blindly, only summarised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from fleet_guard.errors import ConcourseError, PermissionDenied

_BODY_LIMIT = 4096
_SHOWN_LIMIT = 200


def read_error_body(response: requests.Response, *, streamed: bool) -> str:
    """A bounded read: a streamed response may be an event stream that never ends."""
    if not streamed:
        return response.text[:_BODY_LIMIT]
    try:
        raw = response.raw.read(_BODY_LIMIT, decode_content=True) or b""
    except Exception:  # the body is only decoration for a message; never fail on it
        raw = b""
    return bytes(raw).decode("utf-8", "replace")


def summarise_body(body: str) -> str:
    """What the ATC said, in one short line: `stderr` or `error_description` of JSON bodies."""
    text = body.strip()
    if not text:
        return ""
    if text.startswith("<"):
        return "an HTML page (a proxy or another server answered, not the ATC API)"
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("stderr", "error_description", "error", "message"):
            if isinstance(parsed.get(key), str) and parsed[key].strip():
                text = parsed[key]
                break
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= _SHOWN_LIMIT else text[: _SHOWN_LIMIT - 3] + "..."


def error_for(
    response: requests.Response,
    body: str,
    *,
    endpoint: str,
    role: str,
    not_found: str = "",
    bad_request: str = "",
    redact: Callable[[str], str] = str,
) -> ConcourseError:
    """Any refusal but 401, which depends on the credentials and is phrased by `auth`."""
    status = response.status_code
    said = summarise_body(redact(body))  # redacted before it is cut short
    quoted = f" ({said})" if said else ""
    line = f"{status} {response.reason or ''}".strip()
    if status == 403:
        return PermissionDenied(
            f"{endpoint} was refused with 403 Forbidden: the credentials in source are valid "
            f"but lack the role this needs: {role}. Grant that role in the team's auth "
            "configuration (fly set-team), or use credentials that hold it. A --config-rbac "
            "file or a policy check on the web node can also demand a different role.",
            status=status,
            endpoint=endpoint,
        )
    if status == 404:
        hint = not_found or (
            "the ATC does not know this path; check that source.url is the Concourse web node"
        )
        return ConcourseError(
            f"{endpoint} returned 404 Not Found: {hint}.", status=status, endpoint=endpoint
        )
    if 300 <= status < 400:
        target = _without_query(response.headers.get("Location", ""))
        return ConcourseError(
            f"{endpoint} was redirected ({line}) to {target or 'another address'}: set "
            "source.url to the address the Concourse web node answers on directly (often the "
            "https:// one).",
            status=status,
            endpoint=endpoint,
        )
    if status == 429:
        return ConcourseError(
            f"{endpoint} was still rate-limited (429 Too Many Requests) after Fleet Guard's "
            "retries, which honour Retry-After: the web node or a proxy in front of it limits "
            "requests. Check less often (check_every), shorten source.window, or raise the "
            "limit.",
            status=status,
            endpoint=endpoint,
        )
    if 400 <= status < 500:
        hint = bad_request or "this is a bug in Fleet Guard or an ATC it does not support"
        return ConcourseError(
            f"{endpoint} was rejected with {line}{quoted}: {hint}.",
            status=status,
            endpoint=endpoint,
        )
    foreign = not response.headers.get("X-Concourse-Version") or body.lstrip().startswith("<")
    if foreign and status not in (502, 503, 504):
        # Not the ATC (which marks every answer): "try again later" would not help.
        return ConcourseError(
            f"{endpoint} was answered with {line}{quoted} by a server that is not the Concourse "
            "API (the ATC marks every answer with X-Concourse-Version): check that source.url "
            "is the web node's address, as given to `fly -c`, with no path.",
            status=status,
            endpoint=endpoint,
        )
    return ConcourseError(
        f"{endpoint} failed on the Concourse web node with {line}{quoted}. The web node's "
        "logs say why; try again later.",
        status=status,
        endpoint=endpoint,
    )


def not_json(endpoint: str, url: str) -> ConcourseError:
    return ConcourseError(
        f"{endpoint} on {url} answered with something that is not the JSON the Concourse API "
        "sends; check that source.url is the Concourse web node and not a login page or proxy.",
        endpoint=endpoint,
    )


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if host else parts.path

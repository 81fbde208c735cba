"""`POST /sky/issuer/token`: Dex's password grant as the ATC wraps it.

Checks run in Dex's order (method, grant type, client, scopes, password) with Dex's error
bodies; on success the ATC has swapped Dex's access token for its own opaque one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote_plus

from fleet_guard.simulator.access import TokenStore
from fleet_guard.simulator.model import Scenario
from fleet_guard.simulator.replies import JSON, Reply
from fleet_guard.simulator.wire import go_json

_SCOPES = {"openid", "offline_access", "email", "profile", "groups", "federated:id"}


def _oauth_error(status: int, error: str, description: str = "") -> Reply:
    body: dict[str, str] = {"error": error}
    if description:
        body["error_description"] = description
    return Reply(status, go_json(body).encode(), JSON)


def _go_quote_list(items: list[str]) -> str:
    """Go's %q on a []string: `["a" "b"]`."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def token_endpoint(
    scenario: Scenario,
    tokens: TokenStore,
    *,
    method: str,
    body: bytes,
    query: Mapping[str, list[str]],
    authorization: str,
) -> Reply:
    """Dex's token endpoint as the ATC wraps it: checks in Dex's order, opaque token out."""
    if method != "POST":
        return _oauth_error(400, "invalid_request", "method not allowed")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    def field(name: str, *, with_query: bool = False) -> str:
        values = form.get(name) or (query.get(name) if with_query else None) or [""]
        return values[0]

    if field("grant_type") != "password":
        return _oauth_error(400, "unsupported_grant_type")
    client_id, client_secret = field("client_id"), field("client_secret")
    auth = authorization
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, client_secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        except ValueError:
            client_id = client_secret = ""
    if client_id != scenario.client_id or client_secret != scenario.client_secret:
        return _oauth_error(401, "invalid_client", "Invalid client credentials.")
    scopes = field("scope", with_query=True).split()
    if "openid" not in scopes:
        return _oauth_error(400, "invalid_request", 'Missing required scope(s) ["openid"].')
    unrecognized = [s for s in scopes if s not in _SCOPES]
    if unrecognized:
        return _oauth_error(
            400, "invalid_request", f"Unrecognized scope(s) {_go_quote_list(unrecognized)}"
        )
    user = scenario.users.get(field("username", with_query=True))
    if user is None or user.password != field("password", with_query=True):
        return _oauth_error(401, "access_denied", "Invalid username or password")
    issuer = (scenario.external_url or "http://127.0.0.1") + "/sky/issuer"
    token = tokens.issue(user, issuer)
    return Reply(
        200,
        go_json(token).encode(),
        JSON,
        [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
    )

"""Who the client is to the ATC: a given token, a password login, or nobody.

Concourse (>= 6.5) only accepts the opaque `access_token` of its token endpoint as a Bearer
token; the `id_token` JWT in the same response is rejected. A password-grant token cannot be
refreshed, so an expired one is replaced by logging in again.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from fleet_guard.concourse.failures import error_for
from fleet_guard.concourse.session import HttpSession
from fleet_guard.config import SourceConfig
from fleet_guard.errors import AuthError, ConcourseError, UserError
from fleet_guard.log import Log

TOKEN_PATH = "/sky/issuer/token"
TOKEN_ENDPOINT = f"POST {TOKEN_PATH}"
# fly's client: hard-coded in fly and registered by every ATC (client_secret is base64 "fly").
FLY_CLIENT = ("fly", "Zmx5")
SCOPE = "openid profile email federated:id groups"


class BearerAuth(AuthBase):
    """Sets the header as the ATC's verifier wants it: exactly `Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class NoAuth(AuthBase):
    """Sends nothing. Passing it keeps requests from reading ~/.netrc: a stray Basic header
    would turn the ATC's public endpoints into 401."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class Credentials:
    """Hands out the auth for each API call, logging in lazily and at most when needed.

    With `source.token` the token is used as given. With `source.username`/`password` the
    client logs in on first use; when both are set, the token goes first and the password is
    the fallback once the token is refused.
    """

    def __init__(self, config: SourceConfig, session: HttpSession, log: Log) -> None:
        self._config = config
        self._session = session
        self._log = log
        self._given = _clean_token(config.token or "") or None
        self._token = self._given
        self._from_login = False
        self._lock = threading.Lock()
        for secret in (*config.secrets, self._given or ""):
            log.redact.add(secret)

    @property
    def anonymous(self) -> bool:
        return self._given is None and not self._has_password

    @property
    def can_renew(self) -> bool:
        """Whether a 401 is worth one more login: only a password can mint a new token."""
        return self._has_password

    def auth(self) -> AuthBase:
        """Streams read in parallel share one login: the first to need it logs in, under a
        lock, and the others wait for its token."""
        if self.anonymous:
            return NoAuth()
        with self._lock:
            if self._token is None:
                self._token = self._login()
                self._from_login = True
            return BearerAuth(self._token)

    def renew(self) -> None:
        """Forgets the refused token; the next `auth()` logs in afresh."""
        with self._lock:
            self._token = None

    def rejected(self, endpoint: str) -> AuthError:
        """The paragraph for a 401 that logging in again did not (or could not) cure."""
        if self.anonymous:
            message = (
                f"{endpoint} needs a logged-in user, and source sets no credentials (the ATC "
                "answered 401 Unauthorized). Set source.username and source.password (a "
                "Concourse local user) or source.token; only public endpoints, such as "
                "/api/v1/info and the builds of public pipelines, work anonymously."
            )
        elif self._from_login:
            message = (
                f"{endpoint} answered 401 Unauthorized even right after logging in again as "
                f"{self._config.username!r}: the username or password is wrong or was changed "
                "meanwhile, or the web node does not accept tokens issued to the fly client. "
                "Check source.username and source.password, and the web node's auth settings."
            )
        else:
            message = (
                f"{endpoint} refused source.token with 401 Unauthorized: the token is wrong "
                "or has expired (Concourse tokens last 24 hours by default). Set a fresh token, "
                "or set source.username and source.password so Fleet Guard logs in by itself."
            )
        return AuthError(message, status=401, endpoint=endpoint)

    @property
    def _has_password(self) -> bool:
        return bool(self._config.username and self._config.password)

    def _login(self) -> str:
        config = self._config
        if not (config.username and config.password):
            raise UserError("source.username and source.password must be set together.")
        response = self._session.send(
            "POST",
            TOKEN_PATH,
            auth=HTTPBasicAuth(*FLY_CLIENT),
            data={
                "grant_type": "password",
                "username": config.username,
                "password": config.password,
                "scope": SCOPE,
            },
        )
        with response:
            if response.status_code != 200:
                raise self._login_failure(response)
            token = _access_token(response)
        self._log.redact.add(token)  # before anything can print it
        self._log.debug(f"logged in to {self._session.shown_url} as {config.username!r}")
        return token

    def _login_failure(self, response: requests.Response) -> ConcourseError:
        error, description = _oauth_error(response)
        user = self._config.username
        if response.status_code == 401 and error == "invalid_client":
            return AuthError(
                f"{TOKEN_ENDPOINT} refused fly's client credentials (401 invalid_client), "
                "which every Concourse accepts; check that source.url is the Concourse web node.",
                status=401,
                endpoint=TOKEN_ENDPOINT,
            )
        if response.status_code == 401:
            return AuthError(
                f"Concourse refused to log in as {user!r}: {TOKEN_ENDPOINT} answered 401 "
                f"{error or 'Unauthorized'} ({description or 'invalid username or password'}). "
                "Check source.username and source.password; they must name a Concourse local "
                "user (one added with --add-local-user on the web node).",
                status=401,
                endpoint=TOKEN_ENDPOINT,
            )
        if response.status_code == 400 and "connector does not exist" in description.lower():
            return AuthError(
                f"Concourse cannot log in with a password: {TOKEN_ENDPOINT} answered 400 "
                f"({description}) because local users are not enabled on the web node. Add a "
                "local user for Fleet Guard there (--add-local-user, CONCOURSE_ADD_LOCAL_USER) "
                "and give it a role on the teams to watch, or set source.token instead of "
                "source.username and source.password.",
                status=400,
                endpoint=TOKEN_ENDPOINT,
            )
        return error_for(
            response,
            response.text,
            endpoint=TOKEN_ENDPOINT,
            role="none (anyone may ask for a token)",
            not_found="the web node has no token endpoint there; check that source.url is the "
            "Concourse web node (Concourse 6.1 or later)",
            bad_request="the web node refused the password login",
            redact=self._log.redact,
        )


def _access_token(response: requests.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ConcourseError(
            f"{TOKEN_ENDPOINT} answered 200 without an access_token; check that source.url is "
            "the Concourse web node.",
            endpoint=TOKEN_ENDPOINT,
        )
    return token


def _oauth_error(response: requests.Response) -> tuple[str, str]:
    """Dex's `{"error": ..., "error_description": ...}`, or blanks for any other body."""
    try:
        body: Any = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("error_description") or "")


_BEARER_PREFIX = re.compile(r"^bearer\s+", re.IGNORECASE)


def _clean_token(token: str) -> str:
    """The ATC splits the header on single spaces and wants exactly two parts, so a pasted
    `Bearer ...` prefix or a trailing newline from a credential manager would break it."""
    return _BEARER_PREFIX.sub("", token.strip())

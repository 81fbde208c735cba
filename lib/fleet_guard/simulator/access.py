"""Who is calling: Bearer-token verification and role checks as skymarshal's accessor does them.

The distinction between "no token" and "a bad token" matters to the ATC (a bad token turns
public endpoints into 401), so `Access` keeps both `has_token` and the verified user.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fleet_guard.simulator.model import ROLE_RANK, Scenario, User
from fleet_guard.simulator.wire import new_access_token, new_id_token


@dataclass(frozen=True)
class Access:
    has_token: bool = False
    user: User | None = None
    system: bool = False

    @property
    def authenticated(self) -> bool:
        return self.user is not None or self.system

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin

    def authorized(self, team: str, role: str = "viewer") -> bool:
        """At least `role` on `team`; admins pass every team check, as in accessor.IsAuthorized."""
        if self.is_admin:
            return True
        if self.user is None:
            return False
        return self.user.rank(team) >= ROLE_RANK[role]

    def team_names(self) -> set[str]:
        """Teams where the caller holds any role: what non-admin listings are filtered by."""
        if self.user is None:
            return set()
        return {team for team, roles in self.user.teams.items() if roles}


@dataclass
class _Issued:
    username: str
    expires_at: int
    system: bool = False


class TokenStore:
    """The `access_tokens` table: opaque tokens issued by the password grant, plus static ones."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._lock = threading.Lock()
        self._tokens: dict[str, _Issued] = {}
        for static in scenario.tokens:
            expiry = static.expires_at if static.expires_at is not None else 2**62
            self._tokens[static.token] = _Issued(static.username, expiry, static.system)

    def issue(self, user: User, issuer: str) -> dict[str, object]:
        """The token response after the ATC swapped Dex's access_token for an opaque one."""
        ttl = self._scenario.token_ttl
        expiry = int(time.time()) + ttl
        token = new_access_token(expiry)
        with self._lock:
            self._tokens[token] = _Issued(user.username, expiry)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "id_token": new_id_token(user.username, issuer, expiry),
        }

    def expire_all(self) -> int:
        """Makes every issued and static token expired, so a client's re-login can be tested."""
        with self._lock:
            for issued in self._tokens.values():
                issued.expires_at = 0
            return len(self._tokens)

    def verify(self, header: str | None) -> Access:
        """accessor/verifier.go: exactly two parts split on single spaces, scheme `bearer`."""
        if not header:
            return Access()
        parts = header.split(" ")
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return Access(has_token=True)
        with self._lock:
            issued = self._tokens.get(parts[1])
        if issued is None or issued.expires_at <= time.time():
            return Access(has_token=True)
        user = self._scenario.users.get(issued.username)
        return Access(has_token=True, user=user, system=issued.system)

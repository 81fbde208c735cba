"""Errors a user can fix, kept apart from bugs.

The protocol layer prints a `UserError` as one paragraph on stderr and exits 1; anything else
that escapes is a bug in Fleet Guard and keeps its traceback so it can be reported.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the operator can fix: bad config, credentials, reachability, permissions."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(UserError):
    """`source` or `params` failed validation; `problems` lists every one found."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid {where}: {len(problems)} {noun} found; fix them in the pipeline:\n{lines}"
        )


class ConcourseError(UserError):
    """The ATC refused, failed or could not be reached; the message names the endpoint."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class AuthError(ConcourseError):
    """401: credentials are missing, wrong or expired."""


class PermissionDenied(ConcourseError):
    """403: the credentials are valid but lack a role."""

"""Answers the simulated ATC gives, as values: route code raises or returns a `Reply`.

Bodies follow the ATC: 401/403 are plain text without a newline, most errors have an empty
body, JSON is encoded the way Go's json.Encoder writes it.
"""

from __future__ import annotations

from typing import Any

from fleet_guard.simulator.wire import go_json_body

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class Reply(Exception):
    """Raised by route code to answer immediately; keeps each check a one-liner."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers or [])


def unauthorized() -> Reply:
    return Reply(401, b"not authorized", TEXT)


def forbidden() -> Reply:
    return Reply(403, b"forbidden", TEXT)


def json_reply(
    value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Reply:
    return Reply(status, go_json_body(value), JSON, headers)

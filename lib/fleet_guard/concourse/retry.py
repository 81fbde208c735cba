"""How long to wait before asking the ATC again, and when not to ask again at all.

Retries are bounded so a check that Concourse runs every minute never piles up behind a sick
web node, and they honour `Retry-After` so a proxy that sheds load is obeyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

# Statuses that mean "not now" rather than "no": rate limits and a gateway or web node that is
# restarting or over its --concurrent-request-limit.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Exponential: base, 2*base, 4*base ... after attempt 1, 2, 3 ..., never above the cap."""
        delay: float = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return delay

    def delay_for(self, response: requests.Response | None, attempt: int) -> float:
        """`Retry-After` when the server sent one (capped), otherwise the backoff."""
        if response is not None:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None:
                return min(self.max_delay, wait)
        return self.backoff(attempt)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Both forms RFC 9110 allows: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

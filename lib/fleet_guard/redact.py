"""Scrubs secrets from any text before it leaves the process (stderr, report files, evidence)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[redacted]"

# Credential shapes that can turn up in error messages or build output even when we did not
# put them there. Each keeps its `pre` and `post` groups and masks what lies between.
_GENERIC = tuple(
    re.compile(p)
    for p in (
        r"(?i)(?P<pre>bearer\s+)[A-Za-z0-9._~+/=-]{8,}(?P<post>)",
        r"(?i)(?P<pre>authorization:\s*)\S+(?:\s+\S+)?(?P<post>)",
        r"(?i)(?P<pre>(?:password|passwd|token|secret|client_secret)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"'&,;]+(?P<post>)",
        r"(?P<pre>://[^/\s:@]+:)[^@\s/]+(?P<post>@)",
    )
)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _GENERIC:
            text = pattern.sub(rf"\g<pre>{MASK}\g<post>", text)
        return text

    def add(self, secret: str) -> None:
        """Register a secret learned at run time, such as a freshly issued access token."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

"""Scrubs secrets from any text before it leaves the process (stderr, report files, evidence)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

MASK = "[redacted]"

# Credential shapes that can turn up in error messages or build output even when we did not
# put them there. Each keeps its `pre` and `post` groups and masks what lies between.
# A key counts only as a word of its own (not `/sky/issuer/token` nor `source.password`), and
# `key: value` only when quoted as in JSON or written without a space (`token:abc`), so that
# prose such as "token: connection was refused" keeps its words.
_KEY = r"(?<![\w/.-])(?:password|passwd|secret|client_secret|(?:access_|refresh_|id_)?token)"
_GENERIC = tuple(
    re.compile(p)
    for p in (
        r"(?i)(?P<pre>bearer\s+)[A-Za-z0-9._~+/=-]{8,}(?P<post>)",
        r"(?i)(?P<pre>authorization:\s*)\S+(?:\s+\S+)?(?P<post>)",
        rf"(?i)(?P<pre>{_KEY}(?:[\"']\s*:\s*[\"']|\s*=\s*[\"']?|:(?=[^\s\"'])))"
        r"[^\s\"'&,;]+(?P<post>)",
        r"(?P<pre>://[^/\s:@]+:)[^@\s/]+(?P<post>@)",
    )
)


def _forms(secret: str) -> set[str]:
    """The secret as it is, and as JSON writes it (escaped quotes, backslashes, non-ASCII)."""
    forms = {secret}
    for ascii_only in (False, True):
        forms.add(json.dumps(secret, ensure_ascii=ascii_only)[1:-1])
    return {f for f in forms if f}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({f for s in secrets if s for f in _forms(s)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _GENERIC:
            text = pattern.sub(rf"\g<pre>{MASK}\g<post>", text)
        return text

    def add(self, secret: str) -> None:
        """Register a secret learned at run time, such as a freshly issued access token."""
        if secret:
            self._secrets = sorted({*self._secrets, *_forms(secret)}, key=len, reverse=True)

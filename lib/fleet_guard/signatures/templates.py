"""Error message → template: the variable parts masked, the stable wording kept.

So that 40 occurrences of one failure on different workers, containers and volumes become one
template. A small ordered list of masks rather than a mined clustering (see the README's
"Emerging signatures"): ATC error messages are short, one per event, and their variable parts
have recognisable shapes, so masking is deterministic, needs no state between checks, and a
template can be turned back into a regex that matches every message it came from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

# What each mask stands for, and the regex that matches it again in a drafted rule.
PLACEHOLDERS: dict[str, str] = {
    "worker": r"\S+",
    "url": r"\S+",
    "addr": r"\S+",
    "id": r"[0-9A-Za-z-]+",
    "path": r"\S+",
    "quoted": r".+?",
    "duration": r"[0-9][0-9.a-zµ]*",
    "hex": r"(?:0x)?[0-9A-Fa-f]+",
    "num": r"[0-9]+(?:\.[0-9]+)*",
}

# Longest input templated; a longer message keeps its head (and its template says so).
MAX_TEMPLATE_INPUT = 2000
TRUNCATED = " …"

_ON_WORKER = re.compile(r"\b(on worker )[^\s:]+:")
# In order: each mask sees the text the earlier ones left.
_MASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # A quoted single short word ("loopback", "EOF") is wording; anything else is a value.
    (
        "quoted",
        re.compile(r"\"(?![A-Za-z]{1,16}\")(?:[^\"\\]|\\.)*\"|'(?![A-Za-z]{1,16}')[^'\n]*'"),
    ),
    ("url", re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")),
    (
        "addr",
        re.compile(
            r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\](?::[0-9]+)?"
            r"|\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]+)?\b"
        ),
    ),
    ("path", re.compile(r"(?<![\w.<>/])(?:~|\.{1,2})?/[^\s:;,'\"()\[\]<>]+")),
    (
        "id",
        re.compile(
            r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b"
        ),
    ),
    (
        "duration",
        re.compile(
            r"\b[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h)(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m))*\b"
        ),
    ),
    ("hex", re.compile(r"\b(?:0x[0-9A-Fa-f]+|(?=[0-9A-Fa-f]*[0-9])[0-9A-Fa-f]{8,})\b")),
    ("num", re.compile(r"(?<![<\w])[0-9]+(?:\.[0-9]+)*\b|(?<=[A-Za-z_-])[0-9]+\b")),
)
# A word that could be a worker name (names are looked up, not searched for: with a thousand
# workers one pass over the message beats a thousand patterns).
_WORD = re.compile(r"[^\s:;,'\"()\[\]{}<>=/@]+")
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"<(" + "|".join(PLACEHOLDERS) + r")>")


def template_of(message: str, workers: Collection[str] = ()) -> str:
    """The message with worker names, handles, IDs, hex, numbers, paths, quoted values,
    addresses and durations replaced by `<kind>`, whitespace runs made one space."""
    text = message.strip()
    truncated = len(text) > MAX_TEMPLATE_INPUT
    text = text[:MAX_TEMPLATE_INPUT]
    text = _ON_WORKER.sub(r"\1<worker>:", text)
    if workers:
        names = workers if isinstance(workers, set | frozenset) else set(workers)
        text = _WORD.sub(lambda word: _worker_or_word(word.group(), names), text)
    for kind, pattern in _MASKS:
        text = pattern.sub(f"<{kind}>", text)
    text = _SPACE.sub(" ", text).strip()
    return text + TRUNCATED if truncated else text


def _worker_or_word(word: str, names: Collection[str]) -> str:
    if word in names:
        return "<worker>"
    trimmed = word.rstrip(".")  # a name that ends a sentence
    return "<worker>" + word[len(trimmed) :] if trimmed != word and trimmed in names else word


def template_id(template: str) -> str:
    """A short stable name: the same template gives the same id in every check and fleet."""
    return "emerging-" + hashlib.sha256(template.encode()).hexdigest()[:10]


def template_regex(template: str) -> str:
    """An anchored regex that matches every message the template was made from."""
    truncated = template.endswith(TRUNCATED)
    body = template.removesuffix(TRUNCATED) if truncated else template
    parts: list[str] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(body):
        parts.append(_literal(body[position : placeholder.start()]))
        parts.append(PLACEHOLDERS[placeholder.group(1)])
        position = placeholder.end()
    parts.append(_literal(body[position:]))
    return r"^\s*" + "".join(parts) + ("" if truncated else r"\s*$")


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(piece) for piece in text.split(" "))

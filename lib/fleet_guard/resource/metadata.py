"""What `in` and `out` print besides files: the version and the build metadata.

Concourse decodes versions as map[string]string and metadata as [{name, value}] of strings,
and errors the step on anything else. The web UI shows metadata as a two-column table, so
names are short snake_case and values one short line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleet_guard.version import Version

Metadata = list[dict[str, str]]

SHOWN_NAMES = 5


def as_version(raw: Any) -> dict[str, str]:
    """A version as Concourse saves it, every value a string; raises on anything not a mapping."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"a version is a JSON object, not {type(raw).__name__}")
    return {str(k): str(v) for k, v in raw.items()}


def metadata(pairs: Iterable[tuple[str, object]]) -> Metadata:
    return [{"name": name, "value": str(value)} for name, value in pairs]


def shorten(names: Sequence[str], limit: int = SHOWN_NAMES) -> str:
    """`w-1, w-3 (+4 more)`: the worst first, which is the order callers pass."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} (+{rest} more)" if rest > 0 else shown


def state_pairs(version: Version) -> list[tuple[str, object]]:
    """The fleet state a version stands for, as every step shows it."""
    return [
        ("status", version.status or "unknown"),
        ("advisories", ", ".join(version.advisories) or "none"),
    ]

"""Resource versions: what `check` emits, and how a new fleet state becomes a new version.

A version is `{"fingerprint", "seq", "status", "advisories"}`, every value a string (Concourse
decodes versions as map[string]string). `seq` grows whenever the fingerprint changes, so a fleet
that goes A → B → A yields three distinct versions and triggers jobs each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

AFFECTED = "affected"
HEALTHY = "healthy"
# Nothing affecting found, but the scan missed part of its scope (see report.Coverage).
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Version:
    fingerprint: str
    seq: int
    status: str
    advisories: tuple[str, ...]

    def to_json(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "seq": str(self.seq),
            "status": self.status,
            "advisories": ",".join(self.advisories),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Version:
        """Tolerant: a version saved by an older Fleet Guard must not wedge the resource."""
        seq_text = str(data.get("seq") or "0")
        advisories = str(data.get("advisories") or "")
        return cls(
            fingerprint=str(data.get("fingerprint") or ""),
            # isdigit() also accepts superscripts and other scripts' digits, which int() refuses.
            seq=int(seq_text) if seq_text.isascii() and seq_text.isdigit() else 0,
            status=str(data.get("status") or ""),
            advisories=tuple(a for a in advisories.split(",") if a),
        )


def check_versions(
    given: Mapping[str, Any] | None, current: Version, *, emit: str
) -> list[dict[str, str]]:
    """The list `check` prints: oldest first, the given version echoed unchanged when kept.

    With `emit: affected` a healthy or incomplete state is never emitted: the last affected
    version stays the latest, so recovering and relapsing into the *same* state does not
    trigger again (use `emit: all` for that). An incomplete state has nothing to remediate;
    every step warns about it instead, and the gate fails on it.
    """
    quiet = emit == "affected" and current.status in (HEALTHY, INCOMPLETE)
    if given is None:
        return [] if quiet else [_with_seq(current, 1).to_json()]
    previous = Version.from_json(given)
    echoed = {str(k): str(v) for k, v in given.items()}
    if previous.fingerprint == current.fingerprint or quiet:
        return [echoed]
    return [echoed, _with_seq(current, previous.seq + 1).to_json()]


def _with_seq(version: Version, seq: int) -> Version:
    return Version(version.fingerprint, seq, version.status, version.advisories)

"""Reading and ordering the version strings found on real workers.

Two kinds of version are compared:

- `release` (Concourse, CNI plugins, containerd, runc, the worker API): semantic versions, read
  leniently because workers report what their builds say, not what semver allows:

  - a leading `v` is dropped and missing parts are zero: `v1.6` reads as 1.6.0;
  - a suffix is a **pre-release** only when it starts with a pre-release word (`alpha`, `beta`,
    `rc`, `pre`, `preview`, `dev`, `snapshot`, `nightly`): `1.7.0-rc.1` sorts before 1.7.0,
    so a fix released in 1.7.0 is not yet in its release candidates;
  - any other suffix is a **build of that release** and ignored when ordering: `1.7.1-dirty`
    (`git describe --dirty`), `v1.4.0-k3s2` (a vendor rebuild), `1.6.2-3-gabc123` (commits
    after a tag) and `+meta` all order as the release they name. Reading them as pre-releases
    would put `1.7.0-dirty` inside `fixed: 1.7.0`, a false alarm on a fixed worker.

- `kernel`: only the leading dotted numbers count, compared numerically: `5.10.0-21-amd64` reads
  as (5, 10, 0) and `5.9` < `5.10`. Distribution suffixes (`-21-amd64`, `-91-generic`,
  `.amzn2`) are numbered independently by each distribution and say nothing about upstream
  order, so they are not compared. Missing parts are zero: `6.8` == `6.8.0`.

Ranges follow OSV: `introduced` inclusive (`"0"` means "from the beginning", so even
`0.0.0-dev` is inside), `fixed` exclusive, `last_affected` inclusive, neither means no upper
bound.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import semver

from fleet_guard.advisories.model import VersionRange

VersionKind = Literal["release", "kernel"]

# Facts whose values are versions: conditions on them compare as versions and may use ranges
# (mirrors `versionCondition` in schemas/rule.json; a test keeps the two in step).
VERSION_FACTS: tuple[str, ...] = (
    "concourse",
    "cni_plugins",
    "containerd",
    "runc",
    "kernel",
    "worker_api",
)

_RELEASE = re.compile(
    r"^[vV]?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?(?P<rest>.*)$", re.DOTALL
)
_PRERELEASE_WORD = re.compile(r"^(alpha|beta|rc|pre|preview|dev|snapshot|nightly)", re.IGNORECASE)
_SEMVER_IDENTIFIER = re.compile(r"^[0-9A-Za-z-]+$")
_KERNEL = re.compile(r"^(\d+(?:\.\d+)*)")


class VersionError(ValueError):
    """A string that cannot be read as a version of the requested kind."""


def kind_for_fact(fact: str) -> VersionKind:
    """Kernels are not semver (distribution suffixes); every other versioned fact is."""
    return "kernel" if fact == "kernel" else "release"


def parse_release(text: str) -> semver.Version:
    """Read a release version leniently (see the module docstring for the suffix rules)."""
    match = _RELEASE.match(text.strip())
    if not match:
        raise VersionError(f"cannot read {text!r} as a version")
    major, minor, patch = (int(match.group(g) or 0) for g in ("major", "minor", "patch"))
    rest = match.group("rest")
    # `1.6x` and `1.x` are typos or wildcards, not versions with a suffix; only a numeric fourth
    # part (`1.2.3.4`) may follow a dot.
    if rest and (
        rest[0] not in "-+."
        or (rest[0] == "." and not (match.group("patch") and rest[1:2].isdigit()))
    ):
        raise VersionError(f"cannot read {text!r} as a version")
    prerelease = _prerelease(rest)
    return semver.Version(major, minor, patch, prerelease=prerelease)


def _prerelease(rest: str) -> str | None:
    """The pre-release part of a suffix, or None when the suffix only names a build."""
    if not rest.startswith(("-", ".")):
        return None
    label = rest[1:].split("+", 1)[0]
    if not _PRERELEASE_WORD.match(label):
        return None
    identifiers = [part for part in re.split(r"[.]", label) if part]
    if not identifiers or not all(_SEMVER_IDENTIFIER.match(p) for p in identifiers):
        return None
    return ".".join(identifiers)


def parse_kernel(text: str) -> tuple[int, ...]:
    """The leading dotted numbers of a kernel release, trailing zeros dropped for equality."""
    match = _KERNEL.match(text.strip())
    if not match:
        raise VersionError(f"cannot read {text!r} as a kernel version")
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def compare(a: str, b: str, kind: VersionKind = "release") -> int:
    """-1, 0 or 1, like the old `cmp`; raises VersionError when either side is unreadable."""
    if kind == "kernel":
        ka, kb = parse_kernel(a), parse_kernel(b)
        return (ka > kb) - (ka < kb)
    return int(parse_release(a).compare(parse_release(b)))


def is_valid(text: str, kind: VersionKind = "release") -> bool:
    try:
        if kind == "kernel":
            parse_kernel(text)
        else:
            parse_release(text)
    except VersionError:
        return False
    return True


def in_range(value: str, affected: VersionRange, kind: VersionKind = "release") -> bool:
    """OSV semantics: introduced inclusive, fixed exclusive, last_affected inclusive."""
    if (
        affected.introduced.strip() not in ("", "0")
        and compare(value, affected.introduced, kind) < 0
    ):
        return False
    if affected.fixed is not None and compare(value, affected.fixed, kind) >= 0:
        return False
    return not (
        affected.last_affected is not None and compare(value, affected.last_affected, kind) > 0
    )


def in_ranges(value: str, ranges: Sequence[VersionRange], kind: VersionKind = "release") -> bool:
    """True when `value` is inside any range; raises VersionError when `value` is unreadable."""
    # Read the value once up front so an unreadable value fails even when `ranges` is empty.
    if kind == "kernel":
        parse_kernel(value)
    else:
        parse_release(value)
    return any(in_range(value, r, kind) for r in ranges)


def describe_range(affected: VersionRange) -> str:
    """`>=1.6.0 <1.7.0`: the form people already read in changelogs and package managers."""
    parts = []
    if affected.introduced.strip() not in ("", "0"):
        parts.append(f">={affected.introduced}")
    if affected.fixed is not None:
        parts.append(f"<{affected.fixed}")
    if affected.last_affected is not None:
        parts.append(f"<={affected.last_affected}")
    return " ".join(parts) or "any version"


def describe_ranges(ranges: Sequence[VersionRange]) -> str:
    return " or ".join(describe_range(r) for r in ranges) or "no version"

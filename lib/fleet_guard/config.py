"""Validated, frozen configuration: `source` for every step, `params` per step."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fleet_guard import schema
from fleet_guard.errors import ConfigError
from fleet_guard.severity import Severity

# Per-build cap on decoded event bytes (source.max_log_bytes): generous, since a build over it
# counts as not read whole and makes the scan incomplete.
DEFAULT_MAX_LOG_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class WorkerFactsOverride:
    """Facts for the workers whose name matches `match` (a glob) and that carry every tag."""

    match: str
    tags: tuple[str, ...]
    facts: Mapping[str, str]
    index: int = 0


@dataclass(frozen=True)
class EmergingConfig:
    """`emerging*` keys: whether to look for emerging signatures, and what they count for."""

    mode: str = "report"  # off, report, or a severity name
    sample: int = 30
    min_builds: int = 5

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def severity(self) -> Severity | None:
        """The severity a signature counts as in the verdict; None: reported only."""
        return None if self.mode in ("off", "report") else Severity.parse(self.mode)


@dataclass(frozen=True)
class SourceConfig:
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    teams: tuple[str, ...] = ()
    ca_certs: tuple[str, ...] = ()
    insecure: bool = False
    facts: Mapping[str, str] = field(default_factory=dict)
    worker_facts: tuple[WorkerFactsOverride, ...] = ()
    window: str = "24h"
    window_seconds: int = 24 * 3600
    max_builds: int = 1000
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    concurrency: int = 4  # event streams read at once, and the most connections
    request_timeout: float = 120.0
    step_timeout: float = 900.0
    scan_statuses: tuple[str, ...] = ("errored",)
    severity: Severity = Severity.HIGH
    emit: str = "affected"
    rules: tuple[Mapping[str, Any], ...] = ()
    disable_rules: tuple[str, ...] = ()
    emerging: EmergingConfig = EmergingConfig()
    debug: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed or written anywhere."""
        return tuple(s for s in (self.password, self.token) if s)


_WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> int:
    """`30m`, `6h`, `2d` → seconds (the schema has already checked the shape)."""
    return int(text[:-1]) * _WINDOW_UNITS[text[-1]]


def load_source(raw: Any) -> SourceConfig:
    """Validate `source` against schemas/source.json and the rules that JSON Schema can't say.

    Every problem is collected before raising, so an operator fixes the pipeline in one go.
    """
    if raw is None:
        raise ConfigError("source", ["source is empty: set at least `url`"])
    problems = schema.problems(raw, "source", where="source")
    if isinstance(raw, dict):
        advice = _url_advice(raw.get("url"))
        if advice:  # more useful than the pattern's general message
            problems = [p for p in problems if not p.startswith("source.url:")] + advice
        problems += _credential_problems(raw)
        rules = raw.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else ()):
            if isinstance(rule, dict):
                problems += schema.problems(rule, "rule", where=f"source.rules[{i}]")
    if problems:
        raise ConfigError("source", problems)
    return _source_config(raw)


# Paths of the web UI that people copy from the browser's address bar.
_BROWSER_PATH = re.compile(r"^/(teams|builds|pipelines|jobs|sky|login|\?)")


def _url_advice(url: Any) -> list[str]:
    """The usual ways to get `url` wrong, each with its fix."""
    if not isinstance(url, str) or not url.strip() or any(c.isspace() for c in url):
        return []
    shown = url if len(url) <= 80 else url[:79] + "…"
    if "://" not in url:
        return [f"source.url: {shown!r} has no scheme: add https:// (https://{shown})"]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [f"source.url: {shown!r} has a port that is not a number"]
    if parts.scheme == "http" and port == 443:
        return [f"source.url: {shown!r} speaks plain http:// to 443, the HTTPS port: use https://"]
    if _BROWSER_PATH.match(parts.path or "/") and parts.path not in ("", "/"):
        base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        return [
            f"source.url: {shown!r} is a page of the web UI; give the address alone, without the "
            f"path: {base}"
        ]
    return []


def _credential_problems(raw: Mapping[str, Any]) -> list[str]:
    has = {k for k in ("username", "password", "token") if raw.get(k)}
    if "token" in has and has & {"username", "password"}:
        return ["source: give either `token` or `username`/`password`, not both"]
    if has == {"username"}:
        return ["source.password: required with `username` (the local user's password)"]
    if has == {"password"}:
        return ["source.username: required with `password`"]
    return []


def _source_config(raw: Mapping[str, Any]) -> SourceConfig:
    window = str(raw.get("window", "24h"))
    return SourceConfig(
        url=str(raw["url"]).rstrip("/"),
        username=raw.get("username"),
        password=raw.get("password"),
        token=raw.get("token"),
        teams=tuple(raw.get("teams") or ()),
        ca_certs=tuple(raw.get("ca_certs") or ()),
        insecure=bool(raw.get("insecure", False)),
        facts=dict(raw.get("facts") or {}),
        worker_facts=tuple(
            WorkerFactsOverride(
                match=str(entry.get("match", "*")),
                tags=tuple(entry.get("tags") or ()),
                facts={k: str(v) for k, v in entry.items() if k not in ("match", "tags")},
                index=i,
            )
            for i, entry in enumerate(raw.get("worker_facts") or ())
        ),
        window=window,
        window_seconds=parse_window(window),
        max_builds=int(raw.get("max_builds", 1000)),
        max_log_bytes=int(raw.get("max_log_bytes", DEFAULT_MAX_LOG_BYTES)),
        concurrency=int(raw.get("concurrency", 4)),
        request_timeout=float(raw.get("request_timeout", 120)),
        step_timeout=float(raw.get("step_timeout", 900)),
        scan_statuses=tuple(raw.get("scan_statuses") or ("errored",)),
        severity=Severity.parse(str(raw.get("severity", "high"))),
        emit=str(raw.get("emit", "affected")),
        rules=tuple(raw.get("rules") or ()),
        disable_rules=tuple(raw.get("disable_rules") or ()),
        emerging=EmergingConfig(
            mode=str(raw.get("emerging", "report")),
            sample=int(raw.get("emerging_sample", 30)),
            min_builds=int(raw.get("emerging_min_builds", 5)),
        ),
        debug=bool(raw.get("debug", False)),
    )

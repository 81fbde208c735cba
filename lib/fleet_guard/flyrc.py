"""fly's targets (`~/.flyrc`), read the way fly reads them, as a `source` for the CLI.

`fly login -t NAME` saves, under `targets.NAME`: `api` (the URL), `team`, `insecure`, `token`
(`{type, value}`, the access token of the login) and `ca_cert` (PEM). fly writes the file as
YAML and reads it from `$HOME/.flyrc`; a target without a team means team `main`. Fleet Guard
only reads the file: it never writes tokens back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet_guard.errors import UserError
from fleet_guard.schema import did_you_mean

DEFAULT_TEAM = "main"


@dataclass(frozen=True)
class Target:
    name: str
    api: str
    team: str
    insecure: bool = False
    token: str = ""
    ca_cert: str = ""

    def source(self) -> dict[str, Any]:
        """The `source` keys a target fills: the URL, the token and how to trust the server."""
        if not self.token:
            raise UserError(
                f"fly target {self.name!r} has no token: log in first with "
                f"`fly -t {self.name} login`, then run fleet-guard again"
            )
        source: dict[str, Any] = {"url": self.api.rstrip("/"), "token": self.token}
        if self.ca_cert:
            source["ca_certs"] = [self.ca_cert]
        if self.insecure:
            source["insecure"] = True
        return source


def flyrc_path() -> Path:
    """`$HOME/.flyrc`, as fly finds it (HOME first, then the user's home directory)."""
    home = os.environ.get("HOME") or str(Path.home())
    return Path(home) / ".flyrc"


def load_targets(path: Path | None = None) -> dict[str, Target]:
    path = path or flyrc_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read fly's targets in {path}: {exc}") from None
    targets = data.get("targets") if isinstance(data, Mapping) else None
    if targets is None:
        return {}
    if not isinstance(targets, Mapping):
        raise UserError(f"{path}: `targets` is not a mapping of target names; is it fly's file?")
    return {str(name): _target(str(name), props, path) for name, props in targets.items()}


def load_target(name: str, path: Path | None = None) -> Target:
    path = path or flyrc_path()
    targets = load_targets(path)
    if name not in targets:
        known = f"; known targets: {', '.join(sorted(targets))}" if targets else ""
        raise UserError(
            f"unknown fly target {name!r} in {path}{did_you_mean(name, targets)}{known}. "
            f"Save one with `fly -t {name} login -c URL`."
        )
    return targets[name]


def _target(name: str, props: Any, path: Path) -> Target:
    if not isinstance(props, Mapping) or not props.get("api"):
        raise UserError(f"{path}: target {name!r} has no `api` URL; log in again with fly")
    token = props.get("token") or {}
    value = str(token.get("value") or "") if isinstance(token, Mapping) else ""
    return Target(
        name=name,
        api=str(props["api"]),
        team=str(props.get("team") or DEFAULT_TEAM),
        insecure=bool(props.get("insecure", False)),
        token=value,
        ca_cert=str(props.get("ca_cert") or ""),
    )

"""The Dockerfile builds with no build arguments, so its defaults must be the release's own."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from fleet_guard import __version__

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def defaults(name: str) -> list[str]:
    """Every `ARG NAME=default` in the Dockerfile, in order (one per stage that declares it)."""
    return re.findall(rf"^ARG {name}=(.*)$", DOCKERFILE, re.MULTILINE)


def test_every_version_default_is_the_package_version():
    found = defaults("VERSION")
    assert len(found) == 2, "the build stage checks it, the final stage labels with it"
    assert set(found) == {__version__}, (
        f"Dockerfile ARG VERSION defaults {found} != fleet_guard.__version__ {__version__}: "
        "bump them together"
    )


def test_the_source_label_default_is_pyprojects_source_url():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert defaults("SOURCE_URL") == [project["urls"]["Source"]]


def test_no_build_argument_is_required():
    """An ARG without a default that a RUN step insists on is what broke `docker build .`."""
    assert "pass --build-arg" not in DOCKERFILE
    for name in re.findall(r"^ARG ([A-Z_]+)$", DOCKERFILE, re.MULTILINE):
        # A bare ARG only re-declares an earlier global default in a later stage.
        assert defaults(name), f"ARG {name} has no default anywhere"

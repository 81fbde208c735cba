"""The release table: what each Concourse release bundles and which runtime it defaults to."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from fleet_guard import schema
from fleet_guard.facts.releases import Confidence, ReleaseTable, ReleaseTableError


@pytest.fixture(scope="module")
def table() -> ReleaseTable:
    return ReleaseTable.load()


def _raw() -> Any:
    path = resources.files("fleet_guard.facts").joinpath("data", "releases.json")
    return json.loads(path.read_text("utf-8"))


def test_the_data_file_matches_its_schema() -> None:
    assert schema.problems(_raw(), "releases", where="releases.json") == []


def test_every_release_from_7_9_0_to_8_0_1_is_listed(table: ReleaseTable) -> None:
    for version in ["7.9.0", "7.10.0", "7.11.2", "7.12.0", "7.13.2", "7.14.3", "8.0.0", "8.0.1"]:
        assert table.components(version), version


def test_every_component_has_a_reference(table: ReleaseTable) -> None:
    for rows in table.releases.values():
        for row in rows.values():
            assert row.references
            assert all(r.url.startswith("https://") for r in row.references)


@pytest.mark.parametrize(
    ("release", "cni", "confidence"),
    [
        ("7.12.0", "1.6.0", Confidence.HIGH),
        ("7.12.1", "1.5.1", Confidence.HIGH),
        ("7.13.0", "1.6.2", Confidence.HIGH),
        ("7.13.1", "1.6.2", Confidence.HIGH),
        ("7.13.2", "1.7.1", Confidence.HIGH),
        ("7.14.3", "1.8.0", Confidence.MEDIUM),
    ],
)
def test_bundled_cni_plugins(
    table: ReleaseTable, release: str, cni: str, confidence: Confidence
) -> None:
    row = table.components(release)["cni_plugins"]
    assert (row.version, row.confidence) == (cni, confidence)


def test_bundled_runc_around_the_cve_fix(table: ReleaseTable) -> None:
    assert table.components("7.11.1")["runc"].version == "1.1.11"
    assert table.components("7.11.2")["runc"].version == "1.1.12"


def test_a_doubtful_component_is_left_out(table: ReleaseTable) -> None:
    # 7.11.0 bundled containerd 1.7.7 or 1.7.8: not known, so not stated.
    assert "containerd" not in table.components("7.11.0")
    assert "cni_plugins" in table.components("7.11.0")


def test_a_primary_value_with_medium_confidence(table: ReleaseTable) -> None:
    row = table.components("7.10.0")["containerd"]
    assert (row.version, row.confidence) == ("1.7.3", Confidence.MEDIUM)


def test_lookup_tolerates_how_versions_are_written(table: ReleaseTable) -> None:
    assert table.components("v7.12.0")["cni_plugins"].version == "1.6.0"
    assert table.components("7.12.0+build.1")["cni_plugins"].version == "1.6.0"


@pytest.mark.parametrize("release", ["8.0.2", "7.8.0", "0.0.0-dev", "7.12.0-rc.1", "", None, "x"])
def test_unknown_release_bundles_nothing(table: ReleaseTable, release: str | None) -> None:
    assert table.components(release) == {}


def test_runtime_defaults(table: ReleaseTable) -> None:
    assert table.default_runtime("8.0.0", "linux") == "containerd"
    assert table.default_runtime("8.2.5", "linux") == "containerd"
    assert table.default_runtime("7.12.0", "linux") is None
    assert table.default_runtime("7.14.3", "linux") is None
    assert table.default_runtime(None, "linux") is None
    assert table.default_runtime("7.12.0", "windows") == "houdini"
    assert table.default_runtime(None, "darwin") == "houdini"
    assert table.default_runtime("8.0.0", None) is None
    assert table.default_runtime("garbage", "linux") is None


def test_runtime_default_carries_its_confidence(table: ReleaseTable) -> None:
    row = table.runtime_default("8.0.0", "linux")
    assert row is not None
    assert row.confidence is Confidence.HIGH
    assert row.references


def test_bundles_apply_to_linux(table: ReleaseTable) -> None:
    assert table.platform == "linux"


def test_broken_data_is_rejected() -> None:
    data = _raw()
    data["releases"][0]["components"]["cni_plugins"]["version"] = 1.1
    with pytest.raises(ReleaseTableError, match=r"releases\[0\]\.components\.cni_plugins"):
        ReleaseTable.from_data(data)


def test_a_release_listed_twice_is_rejected() -> None:
    data = _raw()
    data["releases"].append(copy.deepcopy(data["releases"][0]))
    with pytest.raises(ReleaseTableError, match="listed twice"):
        ReleaseTable.from_data(data)

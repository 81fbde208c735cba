"""The bundle table and what a worker's bundled resource types say about its release."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from fleet_guard import schema
from fleet_guard.advisories.engine import check, judge
from fleet_guard.advisories.loader import load_advisories
from fleet_guard.advisories.model import Condition, Outcome, VersionRange
from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig
from fleet_guard.facts import Fact, FactSource, build_facts
from fleet_guard.facts.bundles import BundleTable, BundleTableError
from fleet_guard.facts.releases import Confidence, ReleaseTable
from fleet_guard.simulator.loader import bundled_types_by_release

TABLE = ReleaseTable.load()
BUNDLES = BundleTable.load()
CONFIG = SourceConfig(url="https://ci.example.com")


def _raw() -> Any:
    path = resources.files("fleet_guard.facts").joinpath("data", "bundles.json")
    return json.loads(path.read_text("utf-8"))


def _types(release: str, **changes: str | None) -> dict[str, str]:
    types = dict(bundled_types_by_release()[release])
    for name, version in changes.items():
        if version is None:
            types.pop(name.replace("_", "-"), None)
        else:
            types[name.replace("_", "-")] = version
    return types


def _facts(worker: Worker, web: str = "7.12.0") -> dict[str, Fact]:
    info = Info(version=web, worker_version="2.5")
    return build_facts([worker], info, CONFIG, [], TABLE, BUNDLES)[worker.name]


def _linux(types: dict[str, str] | None, name: str = "w-0") -> Worker:
    return Worker(name=name, state="running", platform="linux", resource_types=types)


def test_the_data_file_matches_its_schema_and_every_row_has_references() -> None:
    assert schema.problems(_raw(), "bundles", where="bundles.json") == []
    for row in BUNDLES.rows:
        assert row.references and all(r.url.startswith("https://") for r in row.references)


def test_a_row_listed_twice_or_a_bad_version_is_refused() -> None:
    twice = copy.deepcopy(_raw())
    twice["releases"].append(twice["releases"][0])
    with pytest.raises(BundleTableError, match="listed twice"):
        BundleTable.from_data(twice)
    bad = copy.deepcopy(_raw())
    bad["releases"][0]["resource_types"]["git"] = "latest"
    with pytest.raises(BundleTableError, match="git"):
        BundleTable.from_data(bad)


def test_27_releases_fall_into_the_17_classes_of_the_reference() -> None:
    classes = {BUNDLES.match(row.resource_types).releases for row in BUNDLES.rows}
    assert len(BUNDLES.rows) == 27
    assert len(classes) == 17
    assert {c for c in classes if len(c) > 1} == {
        ("7.11.0", "7.11.1", "7.11.2"),
        ("7.14.1", "7.14.2", "7.14.3"),
        ("8.0.0", "8.0.1"),
        ("8.1.0", "8.1.1"),
        ("8.2.0", "8.2.1"),
        ("8.2.2", "8.2.3", "8.2.4", "8.2.5"),
    }


@pytest.mark.parametrize("release", sorted(bundled_types_by_release()))
def test_what_a_simulated_worker_registers_names_its_release(release: str) -> None:
    """Two transcriptions of the reference (the simulator's and the package's) must agree."""
    assert release in BUNDLES.match(bundled_types_by_release()[release]).releases


def test_every_release_bundling_cni_plugins_1_6_has_its_own_class() -> None:
    for release in ("7.12.0", "7.13.0", "7.13.1"):
        assert BUNDLES.match(_types(release)).releases == (release,)


def test_the_incident_release_is_observed_and_its_components_inferred() -> None:
    facts = _facts(_linux(_types("7.12.0")), web="7.13.2")
    concourse = facts["concourse"]
    assert (concourse.value, concourse.source) == ("7.12.0", FactSource.OBSERVED)
    assert "bundled resource types" in concourse.detail
    assert "confidence medium" in concourse.detail, "7.12.0 is a reconstructed row"
    assert (facts["cni_plugins"].value, facts["cni_plugins"].source) == ("1.6.0", "inferred")
    assert "runtime" not in facts, "7.x linux runtime stays unknown"


def test_a_class_gives_only_the_components_every_member_agrees_on() -> None:
    facts = _facts(_linux(_types("7.11.1")), web="7.11.1")
    concourse = facts["concourse"]
    assert concourse.value == "7.11.0..7.11.2"
    assert concourse.members == ("7.11.0", "7.11.1", "7.11.2")
    assert facts["cni_plugins"].value == "1.3.0"
    assert "every release of the class" in facts["cni_plugins"].detail
    assert "runc" not in facts, "7.11.2 has runc 1.1.12 (the CVE fix), 7.11.0 does not"
    assert "containerd" not in facts


@pytest.mark.parametrize(
    ("types", "said"),
    [
        (_types("7.12.0", rclone="0.4.2"), "extra type rclone 0.4.2"),
        (_types("7.12.0", git="dev"), "git dev instead of 1.17.0"),
        (_types("7.12.0", git=""), "git (no version) instead of 1.17.0"),
        (_types("7.12.0", s3=None), "no s3"),
    ],
)
def test_a_customised_bundle_falls_back_to_the_web_release_and_says_why(
    types: dict[str, str], said: str
) -> None:
    facts = _facts(_linux(types), web="7.12.0")
    concourse = facts["concourse"]
    assert (concourse.value, concourse.source) == ("7.12.0", FactSource.INFERRED)
    assert "customised bundle" in concourse.detail
    assert "nearest Concourse 7.12.0" in concourse.detail
    assert said in concourse.detail


@pytest.mark.parametrize("types", [{}, None])
def test_an_empty_bundle_is_no_match_and_says_so(types: dict[str, str] | None) -> None:
    facts = _facts(_linux(types), web="7.12.0")
    assert facts["concourse"].source is FactSource.INFERRED
    assert "registered no bundled resource types" in facts["concourse"].detail
    assert "runtime" not in facts, "a linux worker without types is no houdini worker"


def test_a_windows_worker_runs_houdini_observed() -> None:
    worker = Worker(name="win", state="running", platform="windows", resource_types=None)
    facts = _facts(worker)
    assert (facts["runtime"].value, facts["runtime"].source) == ("houdini", FactSource.OBSERVED)
    assert "cni_plugins" not in facts


def test_a_declared_release_beats_the_bundle() -> None:
    config = SourceConfig(url="https://ci.example.com", facts={"concourse": "7.13.2"})
    info = Info(version="7.13.2", worker_version="2.5")
    worker = _linux(_types("7.12.0"))
    facts = build_facts([worker], info, config, [], TABLE, BUNDLES)["w-0"]
    assert (facts["concourse"].value, facts["concourse"].source) == ("7.13.2", "operator")
    assert facts["cni_plugins"].value == "1.7.1"


def test_worker_json_tolerates_wrong_types() -> None:
    odd = Worker.from_json(
        {
            "name": "w",
            "start_time": "soon",
            "active_containers": None,
            "resource_types": [None, "git", {"type": "git", "version": None}, {"version": "1"}],
        }
    )
    assert (odd.start_time, odd.active_containers, odd.resource_types) == (0, 0, {"git": ""})
    assert Worker.from_json({"name": "w", "start_time": "1700000000"}).start_time == 1700000000
    assert Worker.from_json({"name": "w", "resource_types": "git"}).resource_types is None
    assert Worker.from_json({"name": "w", "resource_types": None}).resource_types is None


def _class_fact() -> dict[str, Fact]:
    members = ("7.11.0", "7.11.1", "7.11.2")
    return {"concourse": Fact("7.11.0..7.11.2", FactSource.OBSERVED, "bundle", members)}


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ((VersionRange(introduced="7.11.0", fixed="7.12.0"),), True),
        ((VersionRange(introduced="7.12.0"),), False),
        ((VersionRange(introduced="7.11.2"),), None),
    ],
)
def test_a_rule_on_a_class_holds_only_if_it_holds_for_every_member(
    ranges: tuple[VersionRange, ...], expected: bool | None
) -> None:
    result = check(Condition(fact="concourse", ranges=ranges), _class_fact(), {})
    assert result.result is expected


def test_release_skew_names_the_worker_whose_class_lacks_the_web_release() -> None:
    skew = next(a for a in load_advisories(CONFIG) if a.id == "worker-release-skew")
    old = _facts(_linux(_types("7.12.0")), web="7.13.2")
    assert judge(skew, "old", old, (), {"web.concourse": "7.13.2"}).outcome is Outcome.MATCHED
    new = _facts(_linux(_types("7.13.2")), web="7.13.2")
    assert judge(skew, "new", new, (), {"web.concourse": "7.13.2"}).outcome is Outcome.CLEAR
    member = {"web.concourse": "7.11.1"}
    assert judge(skew, "c", _class_fact(), (), member).outcome is Outcome.CLEAR
    customised = _facts(_linux(_types("7.12.0", rclone="1")), web="7.13.2")
    web = {"web.concourse": "7.13.2"}
    assert judge(skew, "x", customised, (), web).outcome is Outcome.CLEAR


def test_confidence_of_a_class_is_its_weakest_row() -> None:
    assert BUNDLES.match(_types("7.12.0")).confidence is Confidence.MEDIUM
    assert BUNDLES.match(_types("7.13.2")).confidence is Confidence.HIGH

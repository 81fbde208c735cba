"""Facts per worker with provenance: operator beats observed beats inferred, unknown stays out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fleet_guard.concourse.models import Info, Worker
from fleet_guard.config import SourceConfig, WorkerFactsOverride
from fleet_guard.evidence import Evidence
from fleet_guard.facts import Fact, FactSource, build_facts, gather_facts, matching_override
from fleet_guard.facts.releases import ReleaseTable

TABLE = ReleaseTable.load()


def _worker(name: str, *, tags: tuple[str, ...] = (), **kwargs: Any) -> Worker:
    values: dict[str, Any] = {"state": "running", "platform": "linux", "version": "2.5"}
    values.update(kwargs)
    return Worker(name=name, tags=tags, **values)


def _info(version: str = "7.12.0") -> Info:
    return Info(version=version, worker_version="2.5")


def _config(
    facts: Mapping[str, str] | None = None, worker_facts: tuple[WorkerFactsOverride, ...] = ()
) -> SourceConfig:
    return SourceConfig(
        url="https://ci.example.com", facts=dict(facts or {}), worker_facts=worker_facts
    )


def _evidence(
    worker: str | None,
    *,
    build_id: int = 48213,
    time: int = 1000,
    implies: Mapping[str, str] | None = None,
) -> Evidence:
    return Evidence(
        advisory="cni-netlink-eintr",
        build_id=build_id,
        team="main",
        pipeline="app",
        job="unit",
        build="311",
        worker=worker,
        message='plugin type="loopback" failed (add): interrupted system call',
        url="https://ci.example.com/builds/48213",
        time=time,
        implies={"runtime": "containerd"} if implies is None else implies,
    )


def _override(
    match: str, tags: tuple[str, ...] = (), index: int = 0, **facts: str
) -> WorkerFactsOverride:
    return WorkerFactsOverride(match=match, tags=tags, facts=facts, index=index)


def test_api_facts_are_observed() -> None:
    facts = build_facts([_worker("w1")], _info(), _config(), [], TABLE)["w1"]
    for name, value in [("platform", "linux"), ("state", "running"), ("worker_api", "2.5")]:
        assert facts[name] == Fact(value, FactSource.OBSERVED, "/api/v1/workers")


def test_release_is_inferred_from_the_web_node_and_drives_the_table() -> None:
    facts = build_facts([_worker("w1")], _info("7.12.0"), _config(), [], TABLE)["w1"]
    assert facts["concourse"].value == "7.12.0"
    assert facts["concourse"].source is FactSource.INFERRED
    assert "/api/v1/info" in facts["concourse"].detail
    cni = facts["cni_plugins"]
    assert (cni.value, cni.source) == ("1.6.0", FactSource.INFERRED)
    assert (
        cni.detail == "release table: Concourse 7.12.0 bundles CNI plugins 1.6.0 (confidence high)"
    )
    assert facts["containerd"].value == "1.7.23"
    assert facts["runc"].value == "1.1.15"


def test_unknown_stays_unknown() -> None:
    facts = build_facts([_worker("w1")], _info("7.12.0"), _config(), [], TABLE)["w1"]
    # Linux 7.x: the binary and the Helm chart default to different runtimes.
    for name in ("runtime", "kernel", "cgroup"):
        assert name not in facts
    unreleased = build_facts([_worker("w1")], _info("9.9.9"), _config(), [], TABLE)["w1"]
    assert "cni_plugins" not in unreleased and "runtime" in unreleased  # 9.x linux: containerd


def test_no_web_version_means_no_release_facts() -> None:
    facts = build_facts([_worker("w1")], _info(""), _config(), [], TABLE)["w1"]
    assert not {"concourse", "cni_plugins", "runtime"} & set(facts)


def test_runtime_default_from_the_table() -> None:
    facts = build_facts([_worker("w1")], _info("8.0.0"), _config(), [], TABLE)["w1"]
    runtime = facts["runtime"]
    assert (runtime.value, runtime.source) == ("containerd", FactSource.INFERRED)
    assert runtime.detail == (
        "release table: Concourse 8.0.0 on linux workers default to the containerd runtime "
        "(confidence high)"
    )


def test_windows_workers_run_houdini_and_none_of_the_linux_bundle() -> None:
    facts = build_facts([_worker("win", platform="windows")], _info("7.12.0"), _config(), [], TABLE)
    assert facts["win"]["runtime"].value == "houdini"
    assert "cni_plugins" not in facts["win"]
    assert "runc" not in facts["win"]


def test_evidence_implies_observed_facts() -> None:
    facts = build_facts([_worker("w1")], _info("7.12.0"), _config(), [_evidence("w1")], TABLE)
    runtime = facts["w1"]["runtime"]
    assert (runtime.value, runtime.source) == ("containerd", FactSource.OBSERVED)
    assert runtime.detail == "build 48213 (main/app/unit #311) matched cni-netlink-eintr"


def test_unattributed_evidence_implies_nothing() -> None:
    facts = build_facts([_worker("w1")], _info(), _config(), [_evidence(None)], TABLE)
    assert set(facts) == {"w1"}
    assert "runtime" not in facts["w1"]


def test_operator_beats_observed_beats_inferred() -> None:
    # 8.0.0 infers containerd; evidence observes guardian; the operator declares houdini.
    guardian = _evidence("w1", implies={"runtime": "guardian"})
    observed = build_facts([_worker("w1")], _info("8.0.0"), _config(), [guardian], TABLE)["w1"]
    assert (observed["runtime"].value, observed["runtime"].source) == ("guardian", "observed")
    sheet = gather_facts(
        [_worker("w1")], _info("8.0.0"), _config({"runtime": "houdini"}), [guardian], TABLE
    )
    declared = sheet.workers["w1"]["runtime"]
    assert declared == Fact("houdini", FactSource.OPERATOR, "source.facts")


def test_evidence_contradicting_the_operator_is_kept_out_but_reported() -> None:
    sheet = gather_facts(
        [_worker("w1")], _info(), _config({"runtime": "guardian"}), [_evidence("w1")], TABLE
    )
    assert sheet.workers["w1"]["runtime"].value == "guardian"
    (conflict,) = sheet.conflicts
    assert (conflict.worker, conflict.fact) == ("w1", "runtime")
    assert conflict.kept.source is FactSource.OPERATOR
    assert conflict.ignored.value == "containerd"
    assert "keeping 'guardian'" in conflict.describe()


def test_overriding_an_inference_is_not_a_conflict() -> None:
    sheet = gather_facts(
        [_worker("w1")], _info("7.12.0"), _config({"cni_plugins": "1.5.1"}), [], TABLE
    )
    assert sheet.workers["w1"]["cni_plugins"] == Fact("1.5.1", FactSource.OPERATOR, "source.facts")
    assert sheet.conflicts == ()


def test_newest_evidence_wins_when_builds_disagree() -> None:
    old = _evidence("w1", build_id=1, time=100, implies={"runtime": "guardian"})
    new = _evidence("w1", build_id=2, time=200)
    sheet = gather_facts([_worker("w1")], _info(), _config(), [old, new], TABLE)
    assert sheet.workers["w1"]["runtime"].value == "containerd"
    assert [c.ignored.value for c in sheet.conflicts] == ["guardian"]


def test_a_declared_release_drives_the_table() -> None:
    facts = build_facts(
        [_worker("w1")], _info("7.13.2"), _config({"concourse": "7.12.0"}), [], TABLE
    )["w1"]
    assert facts["concourse"] == Fact("7.12.0", FactSource.OPERATOR, "source.facts")
    assert facts["cni_plugins"].value == "1.6.0"
    assert "Concourse 7.12.0" in facts["cni_plugins"].detail


WORKER_FACTS = (
    _override("gpu-*", ("gpu",), index=0, runtime="guardian", cgroup="v1"),
    _override("gpu-*", index=1, runtime="containerd"),
    _override("*", index=2, cgroup="v2"),
)


@pytest.mark.parametrize(
    ("name", "tags", "runtime", "cgroup", "detail"),
    [
        ("gpu-1", ("gpu",), "guardian", "v1", 'source.worker_facts[0] (match "gpu-*", tags gpu)'),
        ("gpu-2", (), "containerd", None, 'source.worker_facts[1] (match "gpu-*")'),
        ("cpu-1", ("gpu",), "guardian", "v2", 'source.worker_facts[2] (match "*")'),
    ],
)
def test_first_matching_worker_facts_entry_wins(
    name: str, tags: tuple[str, ...], runtime: str, cgroup: str | None, detail: str
) -> None:
    config = _config({"runtime": "guardian"}, WORKER_FACTS)
    facts = build_facts([_worker(name, tags=tags)], _info(), config, [], TABLE)[name]
    assert facts["runtime"].value == runtime
    assert facts["runtime"].source is FactSource.OPERATOR
    if cgroup is None:
        assert "cgroup" not in facts
    else:
        assert facts["cgroup"] == Fact(cgroup, FactSource.OPERATOR, detail)
    # `source.facts` keys the entry does not set are kept.
    if name == "cpu-1":
        assert facts["runtime"].detail == "source.facts"


def test_worker_facts_match_is_a_case_sensitive_glob() -> None:
    assert matching_override("GPU-1", ("gpu",), WORKER_FACTS) == (2, WORKER_FACTS[2])
    assert matching_override("gpu-1", ("gpu", "ssd"), WORKER_FACTS) == (0, WORKER_FACTS[0])
    assert matching_override("x", (), WORKER_FACTS[:2]) is None


def test_ghost_workers_come_from_evidence() -> None:
    config = _config(
        worker_facts=(
            _override("gone-*", ("gpu",), cgroup="v1"),
            _override("gone-*", index=1, cgroup="v2"),
        )
    )
    facts = build_facts([_worker("w1")], _info("7.12.0"), config, [_evidence("gone-1")], TABLE)
    assert sorted(facts) == ["gone-1", "w1"]
    ghost = facts["gone-1"]
    assert ghost["runtime"].source is FactSource.OBSERVED
    assert ghost["concourse"].value == "7.12.0"
    assert ghost["cni_plugins"].value == "1.6.0"  # platform unknown: the linux bundle may apply
    assert ghost["cgroup"].value == "v2"  # tags unknown: only entries without tags fit
    assert not {"platform", "state", "worker_api"} & set(ghost)


def test_facts_are_listed_in_fact_name_order() -> None:
    facts = build_facts([_worker("w1")], _info(), _config(), [_evidence("w1")], TABLE)["w1"]
    assert list(facts) == [
        "concourse",
        "runtime",
        "cni_plugins",
        "containerd",
        "runc",
        "platform",
        "state",
        "worker_api",
    ]

"""Version arithmetic of `check`: what Concourse records for each fleet transition."""

from __future__ import annotations

from fleet_guard.version import Version, check_versions

AFFECTED = Version("aaaa", 0, "affected", ("cni-netlink-eintr",))
OTHER = Version("bbbb", 0, "affected", ("cni-netlink-eintr", "stalled-worker"))
HEALTHY = Version("cccc", 0, "healthy", ())


def test_first_check_emits_the_current_state_as_seq_1():
    assert check_versions(None, AFFECTED, emit="affected") == [
        {"fingerprint": "aaaa", "seq": "1", "status": "affected", "advisories": "cni-netlink-eintr"}
    ]


def test_first_check_of_a_healthy_fleet_emits_nothing_unless_emit_all():
    assert check_versions(None, HEALTHY, emit="affected") == []
    assert check_versions(None, HEALTHY, emit="all")[0]["status"] == "healthy"


def test_same_fingerprint_echoes_the_given_version_verbatim():
    given = {"fingerprint": "aaaa", "seq": "9", "status": "affected", "advisories": "x"}
    assert check_versions(given, AFFECTED, emit="affected") == [given]


def test_new_fingerprint_appends_with_the_next_seq():
    given = AFFECTED.to_json() | {"seq": "3"}
    versions = check_versions(given, OTHER, emit="affected")
    assert versions[0] == given
    assert versions[1]["seq"] == "4"
    assert versions[1]["advisories"] == "cni-netlink-eintr,stalled-worker"


def test_a_to_b_to_a_gives_three_distinct_versions():
    first = check_versions(None, AFFECTED, emit="affected")[-1]
    second = check_versions(first, OTHER, emit="affected")[-1]
    third = check_versions(second, AFFECTED, emit="affected")[-1]
    assert [v["seq"] for v in (first, second, third)] == ["1", "2", "3"]
    assert third["fingerprint"] == first["fingerprint"]
    assert third != first


def test_recovery_is_silent_with_emit_affected_and_a_version_with_emit_all():
    given = AFFECTED.to_json()
    assert check_versions(given, HEALTHY, emit="affected") == [given]
    assert check_versions(given, HEALTHY, emit="all")[1]["status"] == "healthy"


def test_a_foreign_version_does_not_wedge_the_resource():
    given = {"ref": "abc"}
    versions = check_versions(given, AFFECTED, emit="affected")
    assert versions == [given, AFFECTED.to_json() | {"seq": "1"}]


def test_an_incomplete_state_is_quiet_with_emit_affected_and_emitted_with_emit_all():
    blind = Version("feedfacefeedface", 0, "incomplete", ())
    assert check_versions(None, blind, emit="affected") == []
    [emitted] = check_versions(None, blind, emit="all")
    assert emitted["status"] == "incomplete"

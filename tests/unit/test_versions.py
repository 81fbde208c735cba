"""Version reading and OSV range semantics: the comparisons every rule depends on."""

from __future__ import annotations

import pytest

from fleet_guard.advisories.model import VersionRange
from fleet_guard.advisories.versions import (
    VersionError,
    compare,
    describe_ranges,
    in_range,
    in_ranges,
    kind_for_fact,
    parse_kernel,
    parse_release,
)

CNI_EINTR = (VersionRange(introduced="1.6.0", fixed="1.7.0"),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.6.2", "1.6.2"),
        ("v1.6.2", "1.6.2"),
        ("1.6", "1.6.0"),
        ("7", "7.0.0"),
        (" 1.7.1 ", "1.7.1"),
        ("1.7.1-dirty", "1.7.1"),
        ("v1.4.0-k3s2", "1.4.0"),
        ("1.6.2-3-gabc1234", "1.6.2"),
        ("1.7.0+build.5", "1.7.0"),
        ("1.2.3.4", "1.2.3"),
        ("1.7.0-rc.1", "1.7.0-rc.1"),
        ("1.7.0-beta2", "1.7.0-beta2"),
        ("0.0.0-dev", "0.0.0-dev"),
    ],
)
def test_release_versions_are_read_leniently(text: str, expected: str) -> None:
    assert str(parse_release(text)) == expected


@pytest.mark.parametrize("text", ["", "abc", "v", "1.6x", "1.x", "1.2.x", "latest"])
def test_unreadable_release_versions_raise(text: str) -> None:
    with pytest.raises(VersionError):
        parse_release(text)


def test_build_suffixes_order_as_their_release_but_prereleases_come_before() -> None:
    assert compare("1.7.0-dirty", "1.7.0") == 0
    assert compare("v1.4.0-k3s2", "1.4.0") == 0
    assert compare("1.7.0-rc.1", "1.7.0") == -1
    assert compare("1.10.0", "1.9.0") == 1


def test_a_dirty_build_of_the_fix_is_not_affected() -> None:
    assert not in_ranges("1.7.0-dirty", CNI_EINTR)
    assert in_ranges("1.7.0-rc.1", CNI_EINTR)


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        ("1.5.1", False),
        ("1.6.0", True),  # introduced is inclusive
        ("1.6.2", True),
        ("v1.6.1", True),
        ("1.6", True),
        ("1.7.0", False),  # fixed is exclusive
        ("1.7.1", False),
        ("1.9.0", False),
    ],
)
def test_introduced_inclusive_fixed_exclusive(value: str, inside: bool) -> None:
    assert in_ranges(value, CNI_EINTR) is inside


def test_last_affected_is_inclusive() -> None:
    affected = VersionRange(introduced="1.1.0", last_affected="1.1.11")
    assert in_range("1.1.11", affected)
    assert not in_range("1.1.12", affected)
    assert not in_range("1.0.9", affected)


def test_introduced_zero_means_from_the_beginning() -> None:
    affected = VersionRange(introduced="0", fixed="7.13.0")
    assert in_range("0.0.0-dev", affected)
    assert in_range("7.12.1", affected)
    assert not in_range("7.13.0", affected)


def test_no_upper_bound_means_every_later_version() -> None:
    assert in_range("99.0.0", VersionRange(introduced="8.0.0"))


def test_in_ranges_means_any_range() -> None:
    ranges = (VersionRange("1.0.0", fixed="1.1.0"), VersionRange("2.0.0", fixed="2.0.5"))
    assert in_ranges("2.0.4", ranges)
    assert not in_ranges("1.5.0", ranges)


def test_in_ranges_rejects_an_unreadable_value() -> None:
    with pytest.raises(VersionError):
        in_ranges("unknown", CNI_EINTR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.10.0-21-amd64", (5, 10)),
        ("5.10.0", (5, 10)),
        ("4.14.355-275.570.amzn2.x86_64", (4, 14, 355)),
        ("6.8.0-91-generic", (6, 8)),
        ("5.9", (5, 9)),
    ],
)
def test_kernel_reads_leading_dotted_numbers(text: str, expected: tuple[int, ...]) -> None:
    assert parse_kernel(text) == expected


def test_kernel_compares_numerically() -> None:
    assert compare("5.9", "5.10", "kernel") == -1
    assert compare("5.10.0-21-amd64", "5.10", "kernel") == 0
    assert compare("6.1.0", "5.15.0-91-generic", "kernel") == 1
    assert in_ranges("5.10.0-21-amd64", (VersionRange("5.4", fixed="5.11"),), "kernel")
    assert not in_ranges("5.9.16", (VersionRange("5.10", fixed="5.11"),), "kernel")


def test_unreadable_kernel_raises() -> None:
    with pytest.raises(VersionError):
        parse_kernel("generic")


def test_kind_for_fact() -> None:
    assert kind_for_fact("kernel") == "kernel"
    assert kind_for_fact("cni_plugins") == "release"


def test_ranges_are_described_as_people_write_them() -> None:
    assert describe_ranges(CNI_EINTR) == ">=1.6.0 <1.7.0"
    assert describe_ranges((VersionRange("0", fixed="1.1.12"),)) == "<1.1.12"
    assert describe_ranges((VersionRange("1.0", last_affected="1.2"),)) == ">=1.0 <=1.2"

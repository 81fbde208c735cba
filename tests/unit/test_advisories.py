"""Rule data, its schema and the loader: built-ins load, bad rules report every problem."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from fleet_guard import schema
from fleet_guard.advisories.loader import compile_rule, load_advisories, load_builtin_rules
from fleet_guard.advisories.model import Outcome, VersionRange
from fleet_guard.advisories.versions import VERSION_FACTS
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConfigError
from fleet_guard.evidence import is_container_creation
from fleet_guard.facts import DECLARABLE_FACTS, FACT_NAMES
from fleet_guard.severity import Severity

BUILTIN_IDS = [
    "cni-netlink-eintr",
    "containerd-task-not-found",
    "guardian-backend-eof",
    "guardian-cgroup-v2",
    "guardian-kernel-parameter",
    "netlink-dump-interrupted",
    "runc-cve-2024-21626",
    "stalled-worker",
    "worker-api-behind",
    "worker-max-containers",
    "worker-release-skew",
    "worker-version-skew",
    "worker-volume-create-failed",
]


def _rule_files() -> list[tuple[str, Any]]:
    directory = resources.files("fleet_guard.advisories").joinpath("data", "rules")
    return [
        (entry.name, json.loads(entry.read_text("utf-8")))
        for entry in sorted(directory.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


def _valid_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "my-rule",
        "summary": "something breaks",
        "severity": "high",
        "conditions": {"runtime": {"equals": "containerd"}},
        "remediation": {"fix": "upgrade"},
    }
    rule.update(changes)
    return rule


def _config(**kwargs: Any) -> SourceConfig:
    return SourceConfig(url="https://ci.example.com", **kwargs)


def _problems(raw: Any, *, builtin: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_rule(raw, where="source.rules[0]", builtin=builtin)
    return caught.value.problems


# --- built-in rules ---------------------------------------------------------------------------


def test_every_builtin_rule_loads() -> None:
    assert [r.id for r in load_builtin_rules()] == BUILTIN_IDS
    assert all(r.builtin and r.references for r in load_builtin_rules())


@pytest.mark.parametrize(("name", "raw"), _rule_files())
def test_every_builtin_rule_file_validates_and_is_named_after_its_id(name: str, raw: Any) -> None:
    assert schema.problems(raw, "rule", where=name) == []
    assert name == f"{raw['id']}.json"


def test_the_schema_knows_every_fact_and_only_facts() -> None:
    rule_schema = schema.load_schema("rule")
    conditions = rule_schema["properties"]["conditions"]["properties"]
    assert set(conditions) == set(FACT_NAMES)
    versioned = {f for f, s in conditions.items() if s["$ref"].endswith("/versionCondition")}
    assert versioned == set(VERSION_FACTS)
    implies = rule_schema["$defs"]["pattern"]["properties"]["implies"]["properties"]
    assert set(implies) == set(DECLARABLE_FACTS)


def test_cni_netlink_eintr_compiles_as_the_incident_says() -> None:
    rule = {r.id: r for r in load_builtin_rules()}["cni-netlink-eintr"]
    assert rule.severity is Severity.HIGH
    assert not rule.evidence_required
    facts = {c.fact: c for c in rule.conditions}
    assert facts["runtime"].equals == "containerd"
    assert facts["cni_plugins"].ranges == (VersionRange(introduced="1.6.0", fixed="1.7.0"),)
    assert rule.patterns[0].event == "error"
    assert dict(rule.patterns[0].implies) == {"runtime": "containerd"}
    urls = [r.url for r in rule.references]
    assert "https://github.com/concourse/concourse/issues/9027" in urls
    assert "https://github.com/containernetworking/plugins/issues/1121" in urls
    assert "https://github.com/containernetworking/plugins/pull/1154" in urls
    assert "7.13.2" in rule.remediation.fix
    assert "--containerd-cni-plugins-dir" in rule.remediation.workaround


def test_symptom_rule_defers_to_the_specific_one() -> None:
    rule = {r.id: r for r in load_builtin_rules()}["netlink-dump-interrupted"]
    assert rule.conditions == ()
    assert rule.evidence_required
    assert rule.explained_by == ("cni-netlink-eintr",)


def test_runc_cve_carries_its_aliases() -> None:
    rule = {r.id: r for r in load_builtin_rules()}["runc-cve-2024-21626"]
    assert rule.severity is Severity.CRITICAL
    assert rule.aliases == ("CVE-2024-21626", "GHSA-xr7r-f8xq-vfvv")


# --- the evidence regexes ---------------------------------------------------------------------

REPORTED = (
    "find or create container on worker w1: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


def _patterns(rule_id: str) -> list[Any]:
    return list({r.id: r for r in load_builtin_rules()}[rule_id].patterns)


@pytest.mark.parametrize(
    "message",
    [
        REPORTED,
        'plugin type="loopback" failed (add): interrupted system call',
        'cni net setup: plugin type="bridge" name="x" failed (del): interrupted system call',
        'plugin type="bridge" name="concourse" failed (delete): interrupted system call',
        'plugin type="firewall" failed (check): interrupted system call',
        'plugin type="host-local" name="" failed (add): interrupted system call',
    ],
)
def test_cni_eintr_regex_matches_every_plugin_and_command(message: str) -> None:
    assert any(p.regex.search(message) for p in _patterns("cni-netlink-eintr"))


@pytest.mark.parametrize(
    "message",
    [
        "interrupted",
        "read: interrupted system call",
        "find or create container on worker w1: read tcp: interrupted system call",
        'plugin type="loopback" failed (add): operation not permitted',
        'plugin type="loopback" failed (add): results may be incomplete or inconsistent',
    ],
)
def test_cni_eintr_regex_needs_the_cni_context(message: str) -> None:
    assert not any(p.regex.search(message) for p in _patterns("cni-netlink-eintr"))


def _creation_matches(rule_id: str, message: str) -> bool:
    """Whether a pattern of the rule matches `message` as the matcher applies it."""
    creation = is_container_creation(message)
    return any(
        p.regex.search(message) and (creation or not p.container_creation)
        for p in _patterns(rule_id)
    )


@pytest.mark.parametrize(
    "message",
    [
        REPORTED,  # also matches: explained_by keeps it out of this rule's evidence
        "find or create container on worker w1: starting task: network add: cni net setup: "
        "results may be incomplete or inconsistent",
        "find or create container on worker w2: starting task: interrupted system call",
        # libcni's raw form, which the old `failed (add)\b` branch could never match
        'plugin type="aws-cni" name="aws-cni" failed (add): add command: could not list '
        "addresses: results may be incomplete or inconsistent",
    ],
)
def test_netlink_symptom_matches_container_creation(message: str) -> None:
    assert _creation_matches("netlink-dump-interrupted", message)


@pytest.mark.parametrize(
    "message",
    [
        "interrupted",
        "read: interrupted system call",
        "task failed: results may be incomplete",
        "resource script '/opt/resource/out []' failed: exit status 1\n\nstderr:\n"
        'plugin type="aws-cni" failed (add): results may be incomplete or inconsistent',
    ],
)
def test_netlink_symptom_ignores_other_errors(message: str) -> None:
    assert not _creation_matches("netlink-dump-interrupted", message)


def test_every_network_and_cgroup_pattern_is_tied_to_container_creation() -> None:
    """The worker's CNI and runc fail while creating a container; elsewhere the words are a
    step's own program talking (buildkit in a task, a put to a Kubernetes cluster)."""
    for rule_id in ("cni-netlink-eintr", "netlink-dump-interrupted", "guardian-cgroup-v2"):
        assert all(p.container_creation and p.event == "error" for p in _patterns(rule_id))


def test_guardian_cgroup_signatures() -> None:
    patterns = _patterns("guardian-cgroup-v2")
    runc = (
        "find or create container on worker w1: runc run: exit status 1: container_linux.go:380: "
        "starting container process caused: process_linux.go:545: container init caused: "
        'rootfs_linux.go:76: mounting "cgroup" to rootfs at "/sys/fs/cgroup" caused: invalid '
        "argument"
    )
    first = next(p for p in patterns if p.regex.search(runc))
    assert dict(first.implies) == {"runtime": "guardian"}
    assert _creation_matches("guardian-cgroup-v2", runc.replace('"', '\\"'))
    assert not any(p.regex.search(REPORTED) for p in patterns)
    # gdn's start-up failure is only in the worker's own log: no pattern can see it.
    bulk = "bulk starter: mounting subsystem 'cpuset' in '/sys/fs/cgroup/cpuset': not permitted"
    assert not any(p.regex.search(bulk) for p in patterns)


# --- the schema rejects bad rules, every problem at its path -----------------------------------


def test_a_bad_rule_lists_every_problem_at_its_path() -> None:
    raw = _valid_rule(
        severity="urgent",
        colour="red",
        conditions={
            "kernal": {"equals": "5.10"},
            "cni_plugins": {"ranges": [{"introduced": 1.6, "fixed": "1.7.0"}]},
        },
        evidence={"patterns": [{"event": "error", "regex": "plugin (add"}]},
    )
    problems = _problems(raw)
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    assert "source.rules[0].colour: unknown key" in text
    assert (
        "source.rules[0].severity: 'urgent' is not one of ['low', 'medium', 'high', 'critical']"
        in text
    )
    assert "source.rules[0].conditions.kernal: unknown fact (did you mean 'kernel'?)" in text
    assert (
        "source.rules[0].conditions.cni_plugins.ranges[0].introduced: a version must be a string"
        in text
    )
    assert "source.rules[0].evidence.patterns[0].regex: does not compile" in text


def test_the_config_error_names_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"invalid source\.rules\[0\]: 1 problem found"):
        compile_rule(_valid_rule(severity="urgent"), where="source.rules[0]", builtin=False)


def test_missing_keys_are_named() -> None:
    problems = _problems({"id": "x"})
    assert "source.rules[0].summary: required key is missing" in problems
    assert "source.rules[0].severity: required key is missing" in problems
    assert "source.rules[0].remediation: required key is missing" in problems


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"runtime": "containerd"}, "conditions.runtime: a condition is an object"),
        ({"runtime": {"equals": "docker"}}, "conditions.runtime.equals: 'docker' is not one of"),
        ({"runtime": {"ranges": [{"introduced": "1"}]}}, "conditions.runtime.ranges: unknown key"),
        (
            {"runc": {"equals": "1.1.12", "one_of": ["1.1.11"]}},
            "conditions.runc: give exactly one test",
        ),
        ({"runc": {}}, "conditions.runc: give exactly one test"),
        (
            {"runc": {"ranges": [{"introduced": "0", "fixed": "1", "last_affected": "1"}]}},
            "ranges[0]: give either `fixed` or `last_affected`, not both",
        ),
        ({"runc": {"ranges": [{"introduced": "latest"}]}}, "introduced: a version starts with"),
        ({"runc": {"ranges": [{"introduced": "1.x"}]}}, "introduced: cannot read '1.x'"),
        ({"runc": {"ranges": [{"introduced": "1.7.0", "fixed": "1.6.0"}]}}, "must be above"),
        ({"runc": {"equals": 1.1}}, "conditions.runc.equals: a version must be a string"),
        (
            {"worker_api": {"differs_from": "web.version"}},
            "differs_from: 'web.version' is not one of",
        ),
    ],
)
def test_bad_conditions(conditions: dict[str, Any], expected: str) -> None:
    problems = _problems(_valid_rule(conditions=conditions))
    assert any(expected in p for p in problems), problems


def test_a_rule_must_be_able_to_not_match() -> None:
    problems = _problems(_valid_rule(conditions={}))
    assert any("must set evidence.required: true" in p for p in problems), problems


def test_required_evidence_needs_a_pattern() -> None:
    problems = _problems(_valid_rule(conditions={}, evidence={"required": True}))
    assert any("needs at least one pattern" in p for p in problems), problems


def test_implies_only_declarable_facts() -> None:
    pattern = {"event": "error", "regex": "x", "implies": {"state": "stalled"}}
    problems = _problems(_valid_rule(evidence={"patterns": [pattern]}))
    assert any("implies.state: not a fact evidence can imply" in p for p in problems), problems


def test_reference_types_and_urls() -> None:
    problems = _problems(_valid_rule(references=[{"type": "BLOG", "url": "ftp://x"}]))
    assert any("references[0].type" in p for p in problems)
    assert any("references[0].url: a reference url starts with" in p for p in problems)


def test_builtin_rules_need_references() -> None:
    problems = _problems(_valid_rule(), builtin=True)
    assert any("a built-in rule needs at least one reference" in p for p in problems)


def test_a_valid_user_rule_compiles() -> None:
    raw = _valid_rule(
        conditions={"kernel": {"ranges": [{"introduced": "5.4", "fixed": "5.10"}]}},
        evidence={
            "patterns": [{"event": "log", "regex": "(?i)oops", "implies": {"kernel": "5.4"}}]
        },
        aliases=["CVE-0000-0001"],
    )
    rule = compile_rule(raw, where="source.rules[0]", builtin=False)
    assert not rule.builtin
    assert rule.conditions[0].fact == "kernel"
    assert rule.patterns[0].regex.search("OOPS")
    assert rule.aliases == ("CVE-0000-0001",)
    assert rule.remediation.workaround == ""


def test_a_non_object_rule_is_reported() -> None:
    problems = _problems("not a rule")
    assert problems == ["source.rules[0]: 'not a rule' is not of type 'object'"]


# --- load_advisories --------------------------------------------------------------------------


def test_load_advisories_defaults_to_every_builtin() -> None:
    assert [a.id for a in load_advisories(_config())] == BUILTIN_IDS


def test_disable_rules_removes_builtins_and_user_rules_are_added_sorted() -> None:
    config = _config(
        disable_rules=("stalled-worker",),
        rules=(_valid_rule(id="aaa-first"), _valid_rule(id="zzz-last")),
    )
    ids = [a.id for a in load_advisories(config)]
    assert ids[0] == "aaa-first"
    assert ids[-1] == "zzz-last"
    assert "stalled-worker" not in ids


def test_unknown_disabled_rule_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as caught:
        load_advisories(_config(disable_rules=("cni-netlink-eintrr",)))
    (problem,) = caught.value.problems
    assert problem.startswith("source.disable_rules[0]: no built-in rule 'cni-netlink-eintrr'")
    assert "did you mean 'cni-netlink-eintr'?" in problem


def test_unknown_disabled_rule_without_close_match_lists_the_builtins() -> None:
    with pytest.raises(ConfigError) as caught:
        load_advisories(_config(disable_rules=("zzzz",)))
    assert caught.value.problems[0].endswith("built-in rules: " + ", ".join(BUILTIN_IDS))


def test_a_user_rule_cannot_take_a_builtin_id() -> None:
    with pytest.raises(ConfigError) as caught:
        load_advisories(_config(rules=(_valid_rule(id="stalled-worker"),)))
    (problem,) = caught.value.problems
    assert problem.startswith("source.rules[0].id: 'stalled-worker' is the id of a built-in rule")


def test_a_collision_is_an_error_even_when_the_builtin_is_disabled() -> None:
    config = _config(disable_rules=("stalled-worker",), rules=(_valid_rule(id="stalled-worker"),))
    with pytest.raises(ConfigError):
        load_advisories(config)


def test_user_rule_ids_are_unique() -> None:
    with pytest.raises(ConfigError) as caught:
        load_advisories(_config(rules=(_valid_rule(), _valid_rule())))
    assert caught.value.problems == [
        "source.rules[1].id: 'my-rule' is already the id of source.rules[0]"
    ]


def test_explained_by_must_name_a_rule() -> None:
    rule = _valid_rule(evidence={"explained_by": ["cni-netlink-eintrr"]})
    with pytest.raises(ConfigError) as caught:
        load_advisories(_config(rules=(rule,)))
    assert caught.value.problems == [
        "source.rules[0].evidence.explained_by[0]: no rule 'cni-netlink-eintrr' "
        "(did you mean 'cni-netlink-eintr'?)"
    ]


def test_explained_by_may_name_a_disabled_builtin() -> None:
    rule = _valid_rule(evidence={"explained_by": ["cni-netlink-eintr"]})
    config = _config(disable_rules=("cni-netlink-eintr",), rules=(rule,))
    assert "my-rule" in [a.id for a in load_advisories(config)]


def test_every_problem_of_every_rule_is_reported_together() -> None:
    config = _config(
        disable_rules=("nope",),
        rules=(_valid_rule(severity="urgent"), _valid_rule(id="Bad Id")),
    )
    with pytest.raises(ConfigError) as caught:
        load_advisories(config)
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("source.disable_rules[0]")
    assert problems[1].startswith("source.rules[0].severity")
    assert problems[2].startswith("source.rules[1].id")


def test_outcomes_that_affect_the_fleet() -> None:
    assert Outcome.MATCHED.affects and Outcome.EVIDENCE_ONLY.affects
    assert not Outcome.POSSIBLE.affects and not Outcome.CLEAR.affects


def test_container_creation_is_refused_on_log_patterns() -> None:
    raw = _valid_rule(
        evidence={"patterns": [{"event": "log", "regex": "x", "container_creation": True}]}
    )
    (problem,) = _problems(raw)
    assert problem.startswith("source.rules[0].evidence.patterns[0].container_creation:")
    ok = _valid_rule(
        evidence={"patterns": [{"event": "error", "regex": "x", "container_creation": True}]}
    )
    (pattern,) = compile_rule(ok, where="source.rules[0]", builtin=False).patterns
    assert pattern.container_creation

"""The example pipelines are loaded and validated as the resource would see them, so an example
that drifts from the schemas or the code fails here rather than in an operator's Concourse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_guard.advisories.loader import rule_problems
from fleet_guard.config import load_source
from fleet_guard.params import Action, load_get_params, load_put_params

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "example-pipelines").glob("*.yml"))
IMAGE = "concourse-fleet-guard"
_NESTING = ("do", "in_parallel", "aggregate", "try", "steps")
_HOOKS = ("on_success", "on_failure", "on_error", "on_abort", "ensure")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a pipeline"
    return data


def fleet_types(pipeline: dict[str, Any]) -> set[str]:
    return {
        t["name"]
        for t in pipeline.get("resource_types", ())
        if t.get("source", {}).get("repository", "").endswith(IMAGE)
    }


def fleet_resources(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    types = fleet_types(pipeline)
    return {r["name"]: r for r in pipeline.get("resources", ()) if r["type"] in types}


def steps(node: Any) -> Iterator[dict[str, Any]]:
    """Every step of a plan, hooks and nested steps included, in plan order."""
    if isinstance(node, list):
        for item in node:
            yield from steps(item)
        return
    if not isinstance(node, dict):
        return
    if any(k in node for k in ("get", "put", "task", "set_pipeline", "load_var")):
        yield node
    for key in (*_NESTING, *_HOOKS):
        if key in node:
            yield from steps(node[key])


def job_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [*steps(job.get("plan", [])), *(s for h in _HOOKS for s in steps(job.get(h)))]


def resource_of(step: dict[str, Any]) -> str:
    return str(step.get("resource") or step.get("get") or step.get("put"))


def fleet_steps(pipeline: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    resources = fleet_resources(pipeline)
    for job in pipeline.get("jobs", ()):
        for step in job_steps(job):
            if kind in step and resource_of(step) in resources:
                yield job["name"], step


def test_there_are_the_three_examples_the_readme_names():
    assert {p.name for p in PIPELINES} >= {"gate-deploys.yml", "remediate.yml", "custom-rules.yml"}


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_each_example_starts_with_a_comment_block_explaining_it(path):
    lines = path.read_text().splitlines()
    header = [line for line in lines[: lines.index("")] if line.startswith("#")]
    assert lines[0].startswith(f"# {path.name}:")
    assert len(header) >= 8, "say what the pipeline does, why, and how to set it"


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_the_resource_type_comes_from_a_registry_image(path):
    pipeline = load(path)
    assert fleet_types(pipeline), "declare the fleet-guard resource type"
    for entry in pipeline["resource_types"]:
        assert entry["type"] == "registry-image"
    assert fleet_resources(pipeline), "use the resource"


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_source_is_valid_and_keeps_its_credentials_in_vars(path):
    for name, resource in fleet_resources(load(path)).items():
        source = resource["source"]
        config = load_source(source)  # raises ConfigError with every problem
        assert config.url.startswith("https://"), name
        for key in ("password", "token"):
            if key in source:
                assert source[key].startswith("((") and source[key].endswith("))"), (name, key)
        for i, rule in enumerate(source.get("rules", ())):
            assert rule_problems(rule, where=f"{name}.rules[{i}]", builtin=False) == []


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_get_and_put_params_is_valid(path):
    pipeline = load(path)
    for _, step in fleet_steps(pipeline, "get"):
        load_get_params(step.get("params"))
    for _, step in fleet_steps(pipeline, "put"):
        load_put_params(step.get("params"))
        load_get_params(step.get("get_params"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_put_from_names_a_scanning_get_earlier_in_the_same_job(path):
    pipeline = load(path)
    resources = fleet_resources(pipeline)
    for job in pipeline.get("jobs", ()):
        fetched: set[str] = set()
        for step in job_steps(job):
            ours = resource_of(step) in resources
            if ours and "get" in step and load_get_params(step.get("params")).scan:
                fetched.add(step["get"])
            if ours and "put" in step:
                source_dir = load_put_params(step.get("params")).from_dir
                assert source_dir is None or source_dir in fetched, (job["name"], source_dir)


def actions(path: str) -> list[tuple[str, Action, dict[str, Any]]]:
    pipeline = load(ROOT / "example-pipelines" / path)
    return [
        (job, load_put_params(step["params"]).action, step)
        for job, step in fleet_steps(pipeline, "put")
    ]


def test_gate_deploys_gates_before_the_deploy_task():
    pipeline = load(ROOT / "example-pipelines" / "gate-deploys.yml")
    [deploy] = pipeline["jobs"]
    kinds = [("put" if "put" in s else "task" if "task" in s else "get") for s in job_steps(deploy)]
    assert kinds.index("put") < kinds.index("task")
    assert [a for _, a, _ in actions("gate-deploys.yml")] == [Action.GATE]


def test_remediate_reruns_then_lands_at_most_one_worker_and_prints_the_summary():
    pipeline = load(ROOT / "example-pipelines" / "remediate.yml")
    [job] = pipeline["jobs"]
    assert job.get("serial") is True
    gets = [s for s in job_steps(job) if "get" in s]
    assert gets[0].get("trigger") is True
    puts = actions("remediate.yml")
    assert [a for _, a, _ in puts] == [Action.RERUN, Action.LAND]
    assert load_put_params(puts[1][2]["params"]).max_workers == 1
    tasks = [s for s in job_steps(job) if "task" in s]
    assert any("summary.md" in str(t["config"]["run"]) for t in tasks)


def test_custom_rules_declares_facts_per_worker_group_and_adds_a_rule():
    [fleet] = fleet_resources(load(ROOT / "example-pipelines" / "custom-rules.yml")).values()
    config = load_source(fleet["source"])
    assert len(config.worker_facts) >= 2
    assert [r["id"] for r in config.rules] == ["our-kernel-6-1-overlay"]


def test_notify_posts_the_files_the_get_writes_for_chat_and_metrics():
    from fleet_guard.resource.get import HEADLINE_FILE, MESSAGE_FILE, METRICS_FILE

    pipeline = load(ROOT / "example-pipelines" / "notify.yml")
    [job] = pipeline["jobs"]
    [(_, get)] = list(fleet_steps(pipeline, "get"))
    assert get.get("trigger") is True and load_get_params(get.get("params")).scan
    fetched = get["get"]
    posts = [s for s in job_steps(job) if "put" in s and s["put"] == "on-call"]
    assert [p["params"]["text_file"] for p in posts] == [f"{fetched}/{MESSAGE_FILE}"]
    [task] = [s for s in job_steps(job) if "task" in s]
    script = str(task["config"]["run"])
    assert f"{fetched}/{METRICS_FILE}" in script and f"{fetched}/{HEADLINE_FILE}" in script


def test_publish_image_builds_with_no_build_args_and_pushes_what_the_type_uses():
    pipeline = load(ROOT / "example-pipelines" / "publish-image.yml")
    jobs = {j["name"]: j for j in pipeline["jobs"]}
    build_steps = job_steps(jobs["build-and-push"])
    [build] = [s for s in build_steps if s.get("task") == "build"]
    assert build["privileged"] is True
    assert build["config"]["image_resource"]["source"]["repository"] == "concourse/oci-build-task"
    params = build["config"].get("params", {})
    assert not [k for k in params if k.startswith("BUILD_ARG_")], "the Dockerfile needs none"
    [push] = [s for s in build_steps if "put" in s]
    assert push["params"]["image"] == "image/image.tar"
    resources = {r["name"]: r for r in pipeline["resources"]}
    pushed = resources[push["put"]]
    assert pushed["type"] == "registry-image"
    [fleet_type] = [t for t in pipeline["resource_types"] if t["name"] in fleet_types(pipeline)]
    assert fleet_type["source"]["repository"] == pushed["source"]["repository"]
    smoke = job_steps(jobs["smoke"])
    assert smoke[0]["passed"] == ["build-and-push"] and smoke[0].get("trigger") is True
    assert [s["get"] for s in smoke if resource_of(s) in fleet_resources(pipeline)] == ["fleet"]

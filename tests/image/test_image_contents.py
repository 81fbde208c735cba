"""What the built image holds and what it must not: the Dockerfile's promises, checked in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fleet_guard
from tests.image.conftest import IMAGE, SKIP_REASON, Container

pytestmark = [pytest.mark.image, pytest.mark.skipif(not IMAGE, reason=SKIP_REASON)]

VENV_PYTHON = "/opt/venv/bin/python3"
SCRIPTS = ("check", "in", "out")
LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def python_in(container: Container, code: str) -> Any:
    """Run `code` with the venv's interpreter in the image; it prints one JSON document."""
    ran = container.run(VENV_PYTHON, "-c", code)
    assert ran.code == 0, ran.stderr
    return ran.json()


def test_resource_scripts_are_the_three_executables_with_the_venv_shebang(container):
    resource = container.path("/opt/resource")
    assert sorted(p.name for p in resource.iterdir()) == sorted(SCRIPTS)
    for name in SCRIPTS:
        script = resource / name
        assert script.stat().st_mode & 0o111 == 0o111, f"{script} is not executable"
        first = script.read_text().splitlines()[0]
        assert first == f"#!{VENV_PYTHON}", f"/opt/resource/{name} starts with {first!r}"


def test_the_venv_imports_the_package_and_its_pinned_dependencies(container):
    found = python_in(
        container,
        "import json, sys, fleet_guard, requests, jsonschema, semver\n"
        "from importlib.metadata import version\n"
        "print(json.dumps({'python': list(sys.version_info[:2]), 'prefix': sys.prefix,\n"
        "  'package': fleet_guard.__file__, 'version': fleet_guard.__version__,\n"
        "  'deps': {d: version(d) for d in ('requests', 'jsonschema', 'semver')}}))",
    )
    assert found["python"] >= [3, 11]
    assert found["prefix"] == "/opt/venv"
    assert found["package"].startswith("/opt/venv/lib/"), found["package"]
    assert found["version"] == fleet_guard.__version__
    locked = lock_pins()
    for name, installed in found["deps"].items():
        assert locked[name] == installed, f"{name} {installed} is not the locked {locked[name]}"


def lock_pins() -> dict[str, str]:
    """`name==version` lines of requirements.lock (the hashes follow on indented lines)."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins[name.strip().lower()] = rest.split()[0]
    return pins


def test_ssl_default_paths_resolve_to_the_system_store_in_etc_ssl_certs(container):
    found = python_in(
        container,
        "import json, os, ssl\n"
        "paths = ssl.get_default_verify_paths()\n"
        "context = ssl.create_default_context()\n"
        "print(json.dumps({'capath': os.path.realpath(paths.openssl_capath),\n"
        "  'cas': context.cert_store_stats()['x509_ca']}))",
    )
    assert found["capath"] == "/etc/ssl/certs"
    assert found["cas"] > 0, "no CA loaded from the system store: is ca-certificates installed?"
    assert container.path("/etc/ssl/certs/ca-certificates.crt").is_file()


def test_path_puts_the_venv_first(image_config):
    env = dict(item.split("=", 1) for item in image_config["config"].get("Env", []))
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"


def test_labels_carry_the_package_version_source_and_description(image_config):
    labels = image_config["config"].get("Labels") or {}
    assert labels["org.opencontainers.image.version"] == fleet_guard.__version__
    assert "org.opencontainers.image.source" in labels
    assert labels["org.opencontainers.image.description"]


def test_no_compiler_pip_build_tools_or_tests_in_the_image(container):
    ran = container.run(
        "/bin/sh", "-c", "for t in gcc cc c++ g++ clang make; do command -v $t; done; true"
    )
    assert ran.stdout.strip() == "", f"compilers or build tools on PATH: {ran.stdout}"
    found = python_in(
        container,
        "import importlib.util, json\n"
        "print(json.dumps([m for m in ('pip', 'setuptools', 'wheel', 'pytest', 'responses')\n"
        "  if importlib.util.find_spec(m)]))",
    )
    assert found == [], f"build or test tools importable in the venv: {found}"
    for leftover in ("/root/.cache/pip", "/wheels", "/src", "/opt/build", "/tmp/wheels"):
        assert not container.path(leftover).exists(), f"{leftover} is in the image"
    package = container.path("/opt/venv/lib")
    assert not [p for p in package.glob("python3*/site-packages/fleet_guard/**/test*")]
    assert not list(package.glob("python3*/site-packages/tests"))


def test_the_build_ca_bundle_and_pip_cert_argument_are_not_kept(container, image_config):
    assert not container.path("/tmp/host-ca.crt").exists()
    assert not [e for e in image_config["config"].get("Env", []) if e.startswith("PIP_")]
    history = json.dumps(image_config["history"])
    assert "PIP_CERT" not in history
    assert "host-ca" not in history

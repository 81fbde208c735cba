"""/opt/resource/{check,in,out} in the built image, as Concourse runs them, against the simulator.

The simulator runs on the host; the scripts run in a container of the image (same network).
Stdin is Concourse's JSON, stdout must be exactly one JSON document, and the password must
never show on stdout or stderr.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.image.conftest import IMAGE, PASSWORD, SKIP_REASON, Container, Ran, source_for

pytestmark = [pytest.mark.image, pytest.mark.skipif(not IMAGE, reason=SKIP_REASON)]


def script(container: Container, name: str, payload: Any, *args: str, **kw: Any) -> Ran:
    ran = container.run(f"/opt/resource/{name}", *args, stdin=json.dumps(payload), **kw)
    assert PASSWORD not in ran.stdout + ran.stderr, f"{name} printed the password"
    assert "Traceback" not in ran.stderr, f"{name} crashed:\n{ran.stderr}"
    if ran.stdout.strip():
        ran.json()  # whatever a script prints on stdout is one JSON document
    return ran


@pytest.fixture(scope="module")
def incident(simulator) -> str:
    return simulator("incident")


@pytest.fixture(scope="module")
def healthy(simulator) -> str:
    return simulator("healthy")


@pytest.fixture(scope="module")
def incident_tls(simulator, tls_cert) -> str:
    url = simulator("incident", tls=tls_cert)
    assert url.startswith("https://"), url
    return url


def affected_version(container: Container, source: dict[str, Any]) -> dict[str, str]:
    ran = script(container, "check", {"source": source})
    assert ran.code == 0, ran.stderr
    versions = ran.json()
    assert isinstance(versions, list) and versions, f"check emitted no version: {versions}"
    version = versions[-1]
    assert all(isinstance(v, str) for v in version.values()), "Concourse needs string values"
    assert version.get("status") == "affected", version
    return version


def test_check_emits_an_affected_version_for_the_incident(container, incident):
    affected_version(container, source_for(incident))


def test_in_writes_the_report_files(container, incident):
    source = source_for(incident)
    version = affected_version(container, source)
    dest = container.new_dir("get")
    ran = script(container, "in", {"source": source, "version": version, "params": {}}, dest)
    assert ran.code == 0, ran.stderr
    assert ran.json()["version"] == version

    files = container.path(dest)
    report = json.loads((files / "report.json").read_text())
    assert isinstance(report, dict) and report
    assert (files / "summary.md").read_text().strip()
    assert (files / "affected_workers").read_text().strip(), "the incident affects workers"
    assert json.loads((files / "version.json").read_text()) == version


def test_out_gate_fails_on_the_incident(container, incident):
    ran = script(
        container,
        "out",
        {"source": source_for(incident), "params": {"action": "gate"}},
        container.new_dir("put"),
    )
    assert ran.code == 1, f"exit {ran.code}; stderr:\n{ran.stderr}"
    assert ran.stderr.strip(), "a failed gate says why on stderr"


def test_out_gate_passes_on_a_healthy_fleet(container, healthy):
    ran = script(
        container,
        "out",
        {"source": source_for(healthy), "params": {"action": "gate"}},
        container.new_dir("put"),
    )
    assert ran.code == 0, ran.stderr
    assert "version" in ran.json()


def test_scripts_need_no_venv_on_path(container, healthy):
    """The shebang names the venv's python: a PATH without /opt/venv/bin still works."""
    ran = script(
        container,
        "check",
        {"source": source_for(healthy)},
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert ran.code == 0, ran.stderr
    assert isinstance(ran.json(), list)


def test_ca_certs_in_source_trust_a_self_signed_concourse(container, incident_tls, tls_cert):
    pem = tls_cert[0].read_text()
    affected_version(container, source_for(incident_tls, ca_certs=[pem]))


def test_without_ca_certs_a_self_signed_concourse_fails_with_a_tls_message(container, incident_tls):
    ran = script(container, "check", {"source": source_for(incident_tls)})
    assert ran.code == 1, f"exit {ran.code}; stdout: {ran.stdout}"
    assert ran.stdout.strip() == ""
    message = ran.stderr.lower()
    assert "certificate" in message or "ca_certs" in message, ran.stderr


def test_insecure_skips_verification(container, incident_tls):
    affected_version(container, source_for(incident_tls, insecure=True))

"""Fixtures for the tests that run inside the built image (`make image-test`).

They need root, buildah and an image named by FLEET_GUARD_IMAGE; without that variable every
test here is skipped, so the plain `make test` run passes on any machine. The scripts run in a
buildah container with chroot isolation, which shares the host's network: the simulator, started
on the host from this checkout, is reached on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

IMAGE = os.environ.get("FLEET_GUARD_IMAGE", "")
SKIP_REASON = "FLEET_GUARD_IMAGE is not set: run `make image image-test` (needs root and buildah)"
PASSWORD = "admin-pass"


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Stdout as one JSON document (json.loads rejects anything after the first one)."""
        assert self.stdout.strip(), f"nothing on stdout; stderr:\n{self.stderr}"
        return json.loads(self.stdout)


@dataclass
class Container:
    """A working container of the image; `root` is its filesystem, mounted on the host."""

    name: str
    root: Path

    def run(
        self, *argv: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 120
    ) -> Ran:
        command = ["buildah", "run", "--isolation", "chroot"]
        for key, value in (env or {}).items():
            command += ["--env", f"{key}={value}"]
        done = subprocess.run(
            [*command, self.name, "--", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        # buildah adds its own line about a non-zero exit; the script's stderr is the rest.
        stderr = "\n".join(
            line for line in done.stderr.splitlines() if not line.startswith("subprocess exited")
        )
        return Ran(done.returncode, done.stdout, stderr)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def new_dir(self, prefix: str) -> str:
        """A fresh, empty directory inside the container; returns its path there."""
        inside = f"/tmp/{prefix}-{uuid.uuid4().hex[:8]}"
        self.path(inside).mkdir(parents=True)
        return inside


def buildah(*args: str) -> str:
    done = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"buildah {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def image() -> str:
    if not IMAGE:
        pytest.skip(SKIP_REASON)
    if shutil.which("buildah") is None:
        pytest.fail("FLEET_GUARD_IMAGE is set but buildah is not installed")
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (buildah containers with chroot isolation)")
    return IMAGE


@pytest.fixture(scope="session")
def image_config(image: str) -> dict[str, Any]:
    """The image's OCI config (Env, Labels, ...) and history, as buildah reports them."""
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    oci: dict[str, Any] = inspected["OCIv1"]
    return {"config": oci.get("config", {}), "history": oci.get("history", [])}


@pytest.fixture(scope="session")
def container(image: str) -> Iterator[Container]:
    name = buildah("from", "--name", f"fleet-guard-image-test-{uuid.uuid4().hex[:8]}", image)
    try:
        root = Path(buildah("mount", name))
        yield Container(name, root)
    finally:
        subprocess.run(["buildah", "umount", name], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """start(scenario, tls=None) -> base URL of a simulator running on the host."""
    started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(scenario: str, tls: tuple[Path, Path] | None = None) -> str:
        directory = tmp_path_factory.mktemp(f"simulator-{scenario}")
        ready = directory / "ready"
        command = [
            sys.executable, "-m", "fleet_guard.simulator", scenario,
            "--port", "0", "--ready-file", str(ready),
        ]  # fmt: skip
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        log = (directory / "log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        started.append((process, log))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = ready.read_text().strip() if ready.exists() else ""
            if "://" in url:
                return url
            if process.poll() is not None:
                break
            time.sleep(0.1)
        process.kill()
        pytest.fail(
            f"the {scenario} simulator did not become ready ({' '.join(command)}):\n"
            + (directory / "log").read_text(errors="replace")
        )

    yield start
    for process, _ in started:
        process.terminate()
    for process, log in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def source_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "username": "admin", "password": PASSWORD, **extra}

"""TLS against a real HTTPS server whose CA is made at test time with the openssl CLI."""

from __future__ import annotations

import io
import json
import shlex
import shutil
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import certifi
import pytest

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError, UserError
from fleet_guard.log import Log

INFO = {"version": "7.13.2", "worker_version": "2.5"}


def openssl(command: str, *, cwd: Path) -> None:
    args = ["openssl", *shlex.split(command)]
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a server certificate for 127.0.0.1 that it signed."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    where = tmp_path_factory.mktemp("pki")
    key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    openssl(
        f"req -x509 {key} -days 2 -keyout ca.key -out ca.pem -subj /CN=fleet-guard-test-ca"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        cwd=where,
    )
    openssl(f"req {key} -keyout server.key -out server.csr -subj /CN=127.0.0.1", cwd=where)
    (where / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -out server.pem -extfile server.ext",
        cwd=where,
    )
    return where


class InfoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(INFO).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https_url(pki: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), InfoHandler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(url: str, **source: object) -> tuple[ConcourseClient, io.StringIO]:
    stderr = io.StringIO()
    config = SourceConfig(url=url, **source)
    return ConcourseClient(config, Log(stream=stderr), sleep=lambda _: None), stderr


def test_the_ca_in_source_ca_certs_makes_the_server_trusted(https_url, pki):
    c, _ = client(https_url, ca_certs=((pki / "ca.pem").read_text(),))
    assert c.info().version == "7.13.2"


def test_a_chain_in_one_item_works_too(https_url, pki):
    chain = (pki / "server.pem").read_text() + (pki / "ca.pem").read_text()
    c, _ = client(https_url, ca_certs=("not used, but valid:\n" + chain,))
    assert c.info().version == "7.13.2"


def test_without_the_ca_the_error_says_what_to_add_and_is_not_retried(https_url):
    c, _ = client(https_url)
    with pytest.raises(ConcourseError) as caught:
        c.info()
    message = caught.value.message
    assert "could not be verified" in message
    assert "source.ca_certs" in message and "insecure: true" in message
    assert https_url in message
    assert "\n" not in message
    assert c.calls == 1


@pytest.mark.parametrize("bundle", [certifi.where(), "/nonexistent/bundle.pem"])
def test_an_environment_bundle_neither_replaces_nor_breaks_our_trust(
    https_url, pki, monkeypatch, bundle
):
    # With trust_env, requests points every pool at REQUESTS_CA_BUNDLE (or certifi), and
    # raises OSError for a missing one, unless the adapter keeps the pool on our context.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    c, _ = client(https_url, ca_certs=((pki / "ca.pem").read_text(),))
    assert c.info().version == "7.13.2"


def test_insecure_skips_verification_and_warns_once_not_per_request(https_url):
    c, stderr = client(https_url, insecure=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c.info()
        c.info()
    assert stderr.getvalue().count("warning: source.insecure is true") == 1
    assert [w for w in caught if "Unverified HTTPS" in str(w.message)] == []


@pytest.mark.parametrize(
    "pem",
    [
        "hello",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    ],
    ids=["no-pem-block", "garbage-in-block"],
)
def test_a_bad_pem_names_its_index_in_source_ca_certs(pki, pem):
    good = (pki / "ca.pem").read_text()
    c, _ = client("https://127.0.0.1:9", ca_certs=(good, pem))
    with pytest.raises(UserError, match=r"source\.ca_certs\[1\]"):
        c.info()
    assert c.calls == 0

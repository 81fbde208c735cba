"""Which certificates the client trusts, and an adapter that makes `requests` honour that.

Concourse bind-mounts the worker's CA store into `/etc/ssl/certs` of resource containers, so a
private CA that the operator installed on the workers is only found through the system store:
`requests` on its own trusts certifi's bundle and nothing else. The operator can add more CAs
inline with `source.ca_certs`.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import certifi
from requests import PreparedRequest
from requests.adapters import HTTPAdapter

from fleet_guard.errors import UserError

# CA bundles that distributions keep outside OpenSSL's compiled-in default, so a Debian-built
# mount under an Alpine-built image (or the reverse) is still found.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


def trust_context(ca_certs: tuple[str, ...], *, insecure: bool = False) -> ssl.SSLContext:
    """The system CAs plus every PEM in `source.ca_certs`; no verification when insecure.

    certifi is added only when the system store yielded no CA file at all (a slim image with
    no ca-certificates package), so public CAs keep working there too; it never replaces
    the system store.
    """
    context = ssl.create_default_context()  # loads the system store
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    _load_system_bundles(context)
    if context.cert_store_stats()["x509_ca"] == 0:
        context.load_verify_locations(cafile=certifi.where())
    for index, pem in enumerate(ca_certs):
        _load_pem(context, pem, f"source.ca_certs[{index}]")
    return context


def _load_system_bundles(context: ssl.SSLContext) -> None:
    default = ssl.get_default_verify_paths().cafile
    for path in _SYSTEM_BUNDLES:
        if path != default and os.path.isfile(path):
            try:
                context.load_verify_locations(cafile=path)
            except (ssl.SSLError, OSError):
                continue  # a broken system bundle must not stop us; the others may suffice


def _load_pem(context: ssl.SSLContext, pem: str, key: str) -> None:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise UserError(
            f"{key} is not a PEM certificate: it must contain a block starting with "
            "'-----BEGIN CERTIFICATE-----'. Paste the CA certificate (or chain) in PEM form."
        )
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise UserError(
            f"{key} could not be read as a PEM certificate ({reason}); check that the whole "
            "certificate, including its BEGIN and END lines, was pasted without changes."
        ) from None


class TrustingAdapter(HTTPAdapter):
    """Sends HTTPS through our SSLContext, whatever `verify` requests computes.

    Without this, requests points every pool at certifi's bundle (or at REQUESTS_CA_BUNDLE from
    the environment) and some 2.32.x releases even swap in a preloaded certifi-only context.
    Proxy settings from the environment are untouched: they select the pool, not the trust.
    """

    def __init__(self, context: ssl.SSLContext, *, verify: bool = True, **pool: Any) -> None:
        self._context = context
        self._verify = verify
        super().__init__(**pool)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        trust: dict[str, Any] = dict(pool_kwargs)
        trust.pop("ca_certs", None)
        trust.pop("ca_cert_dir", None)
        trust["ssl_context"] = self._context
        trust["cert_reqs"] = self._cert_reqs
        return host_params, trust

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Keeps requests from pointing the pool at certifi; client certificates are unused."""
        conn.cert_reqs = self._cert_reqs
        conn.ca_certs = None
        conn.ca_cert_dir = None

    @property
    def _cert_reqs(self) -> str:
        return "CERT_REQUIRED" if self._verify else "CERT_NONE"

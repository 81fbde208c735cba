"""The wire: one place that sends HTTP requests to the ATC, with timeouts, retries and TLS.

Everything above this module deals in API paths and HTTP statuses; everything that can go
wrong below a status (DNS, refused connections, certificates, proxies, timeouts) is turned
into one paragraph here, naming the URL and the `source` key to fix.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from fleet_guard import __version__
from fleet_guard.concourse.retry import RETRY_STATUSES, RetryPolicy
from fleet_guard.concourse.tls import TrustingAdapter, trust_context
from fleet_guard.config import SourceConfig
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]

# The largest answer read into memory; the biggest real ones (a worker list of a thousand
# workers, a page of a hundred builds) are a few MB. Event streams are read incrementally.
MAX_BODY = 64 * 1024 * 1024
_READ_SIZE = 64 * 1024


class _TooSlow(Exception):
    """The answer was still arriving when the request's total deadline passed."""


class _TooBig(Exception):
    """The answer was longer than MAX_BODY."""


class HttpSession:
    """Sends requests to `source.url` and counts every one of them, retries included.

    Nothing happens on construction: the TLS context is built (for an https:// URL only), and
    the insecure warning printed, on the first request, so creating a client is free. Safe to
    share between threads: connections come from one pool of at most `source.concurrency`,
    and a thread that wants one more waits for one to be free.
    """

    def __init__(
        self,
        config: SourceConfig,
        log: Log,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = config.url.rstrip("/")
        self.calls = 0
        self._config = config
        self._log = log
        self._timeout = (connect_timeout, read_timeout)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        # A read timeout bounds silence, not a server that drips a byte every few seconds:
        # these bound the total, per request and for the whole step.
        self.request_deadline = config.request_timeout
        self.step_deadline = time.monotonic() + config.step_timeout
        self._step_timeout = config.step_timeout

    @property
    def shown_url(self) -> str:
        """`source.url` without any user:password@ part, fit for a message."""
        parts = urlsplit(self.base_url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def send(
        self,
        method: str,
        path: str,
        *,
        auth: AuthBase,
        params: Params | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        replayable: bool = True,
    ) -> requests.Response:
        """Send, retrying what is safe to retry; the last response is returned whatever it is.

        `replayable=False` is for requests that must not run twice (rerunning a build): they
        are retried only when the connection was never made, so the ATC cannot have seen them.
        """
        session = self._ready()
        shown = _with_query(path, params)
        attempts = self._retry.attempts
        first = time.monotonic()
        for attempt in range(1, attempts + 1):
            self._check_step_deadline(method, path, attempt)
            with self._lock:
                self.calls += 1
            started = time.monotonic()
            try:
                with warnings.catch_warnings():
                    if self._config.insecure:  # warned once already; not on every request
                        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                    response = session.request(
                        method,
                        self.base_url + path,
                        params=params,
                        data=data,
                        headers=dict(headers or {}),
                        auth=auth,
                        stream=True,  # the body is read below, within the deadlines
                        timeout=self._timeout,
                        allow_redirects=False,
                    )
                if not stream:
                    self._read_body(response, started)
            except (_TooSlow, _TooBig) as exc:
                raise self._bounded_error(exc, method, path, attempt) from None
            except requests.RequestException as exc:
                elapsed = _ms_since(started)
                retry = attempt < attempts and _may_retry(exc, replayable)
                self._log.debug(
                    f"{method} {shown} -> {type(exc).__name__} in {elapsed} ms "
                    f"(attempt {attempt}/{attempts}){'; retrying' if retry else ''}"
                )
                if not retry:
                    tried = f"{attempt} attempt{'s' * (attempt != 1)}"
                    if attempt > 1:
                        tried += f" over {time.monotonic() - first:.0f} s"
                    raise self._transport_error(exc, method, path, replayable, tried) from None
                self._sleep(self._retry.backoff(attempt))
                continue
            self._log.debug(
                f"{method} {shown} -> {response.status_code} in {_ms_since(started)} ms "
                f"(attempt {attempt}/{attempts})"
            )
            if attempt < attempts and replayable and response.status_code in RETRY_STATUSES:
                delay = self._retry.delay_for(response, attempt)
                response.close()
                self._sleep(delay)
                continue
            return response
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def deadline_for_stream(self) -> float:
        """When an event stream must be done: five request deadlines, never past the step's."""
        return min(time.monotonic() + 5 * self.request_deadline, self.step_deadline)

    def _read_body(self, response: requests.Response, started: float) -> None:
        """Reads the whole answer into the response, within the deadlines and MAX_BODY.

        A body cut short raises the ChunkedEncodingError requests would, so it is retried.
        """
        until = min(started + self.request_deadline, self.step_deadline)
        parts: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = response.raw.read1(_READ_SIZE, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY:
                    raise _TooBig()
                if time.monotonic() > until:
                    raise _TooSlow()
                parts.append(chunk)
        except (_TooBig, _TooSlow):
            response.close()
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
                raise requests.exceptions.ReadTimeout(exc) from None
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        response._content = b"".join(parts)
        response._content_consumed = True  # type: ignore[attr-defined]
        response.close()

    def _check_step_deadline(self, method: str, path: str, attempt: int) -> None:
        if time.monotonic() < self.step_deadline:
            return
        tried = f" (attempt {attempt} would have been next)" if attempt > 1 else ""
        raise ConcourseError(
            f"{method} {path} on {self.shown_url}: the step ran out of time: source.step_timeout "
            f"({self._step_timeout:g} s) passed after {self.calls} requests{tried}. The web "
            "node answers too slowly; raise step_timeout, or shorten source.window.",
            endpoint=f"{method} {path}",
        )

    def _bounded_error(
        self, exc: Exception, method: str, path: str, attempt: int
    ) -> ConcourseError:
        where = f"{method} {path}"
        if isinstance(exc, _TooBig):
            return ConcourseError(
                f"{where} on {self.shown_url} answered with more than {MAX_BODY // 2**20} MiB, "
                "far more than the Concourse API sends; check that source.url is the web node.",
                endpoint=where,
            )
        return ConcourseError(
            f"{where} on {self.shown_url} was still sending its answer after "
            f"source.request_timeout ({self.request_deadline:g} s) in total, on attempt "
            f"{attempt}: the web node or a proxy in front of it sends very slowly. Not retried; "
            "try again later, or raise request_timeout.",
            endpoint=where,
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _ready(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self) -> requests.Session:
        insecure = self._config.insecure
        # One pool for source.url; when all its connections are busy a request waits.
        pool: dict[str, Any] = {
            "pool_connections": 1,
            "pool_maxsize": self._config.concurrency,
            "pool_block": True,
        }
        session = requests.Session()
        session.verify = not insecure
        session.headers["User-Agent"] = f"fleet-guard/{__version__}"
        if urlsplit(self.base_url).scheme != "https":
            # Plain HTTP (a sidecar, a test): no certificates to load, nothing to verify.
            session.mount("http://", HTTPAdapter(**pool))
            return session
        context = trust_context(self._config.ca_certs, insecure=insecure)
        if insecure:
            self._log.warn(
                f"source.insecure is true: the TLS certificate of {self.shown_url} is not "
                "verified, so anyone on the path can read the credentials; prefer "
                "source.ca_certs"
            )
        session.mount("https://", TrustingAdapter(context, verify=not insecure, **pool))
        return session

    def _transport_error(
        self, exc: requests.RequestException, method: str, path: str, replayable: bool, tried: str
    ) -> Exception:
        where = f"{method} {path}"
        url = self.shown_url
        connect, read = self._timeout
        if isinstance(exc, requests.exceptions.SSLError):
            return ConcourseError(_tls_message(exc, url, where), endpoint=where)
        if isinstance(exc, requests.exceptions.ProxyError):
            return ConcourseError(
                f"could not reach Concourse at {url} (source.url) for {where} through the HTTP "
                "proxy configured in the environment (https_proxy/http_proxy): the proxy "
                "refused or failed the connection. Check the proxy, or add the host to no_proxy.",
                endpoint=where,
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return ConcourseError(
                f"could not reach Concourse at {url} (source.url) for {where}: no connection "
                f"within {connect:g} s, {tried}. Check source.url and that the workers can reach "
                "the web node.",
                endpoint=where,
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):
            outcome = "" if replayable else " It may have been carried out anyway; check first."
            return ConcourseError(
                f"{where} on {url} got no answer within {read:g} s, {tried}; the web node is "
                f"overloaded or stuck. Try again later.{outcome}",
                endpoint=where,
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return ConcourseError(
                f"could not reach Concourse at {url} (source.url) for {where}: "
                f"{_connection_reason(exc)} ({tried}). Check source.url and that the web node "
                "is up and reachable from the workers.",
                endpoint=where,
            )
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return ConcourseError(
                f"source.url {url!r} is not a usable URL; it must look like "
                "https://ci.example.com.",
                endpoint=where,
            )
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return ConcourseError(
                f"{where} on {url}: the answer was cut off before its end ({tried}); a proxy "
                "or the web node is dropping connections. Try again later.",
                endpoint=where,
            )
        return ConcourseError(
            f"{where} on {url} failed: {type(exc).__name__} ({tried}); try again, and report "
            "it if it persists.",
            endpoint=where,
        )


def _may_retry(exc: requests.RequestException, replayable: bool) -> bool:
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return False  # a certificate or URL will not fix itself between attempts
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return replayable  # the answer was cut mid-body: the request reached the ATC
    if not isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return False
    return replayable or never_connected(exc)


def never_connected(exc: BaseException) -> bool:
    """True when the request cannot have reached the ATC: DNS, refusal or a connect timeout."""
    return any(
        isinstance(
            cause,
            requests.exceptions.ConnectTimeout
            | urllib3.exceptions.NewConnectionError
            | ConnectionRefusedError
            | socket.gaierror,
        )
        for cause in _causes(exc)
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps; requests nests urllib3 errors several deep."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in linked if isinstance(e, BaseException)]


def _connection_reason(exc: BaseException) -> str:
    causes = list(_causes(exc))
    if any(isinstance(c, urllib3.exceptions.NameResolutionError | socket.gaierror) for c in causes):
        return "the host name could not be resolved (DNS)"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "the connection was refused"
    # RemoteDisconnected is a ConnectionResetError too: ask the more telling question first.
    if any(
        isinstance(c, http.client.BadStatusLine | http.client.RemoteDisconnected) for c in causes
    ):
        return (
            "the server did not answer in HTTP (if it speaks TLS on this port, use https:// "
            "in source.url)"
        )
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "the connection was reset"
    return "the connection failed"


_VERIFY_REASON = re.compile(r"certificate verify failed: (.+?)(?: \(_ssl\.c|['\"),]|$)")


def _tls_message(exc: BaseException, url: str, where: str) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or "verification failed"
            break
    else:
        match = _VERIFY_REASON.search(str(exc))
        if not match:
            return (
                f"the TLS handshake with {url} (source.url) for {where} failed; check that "
                "source.url is the HTTPS address of the Concourse web node."
            )
        detail = match.group(1)
    return (
        f"the TLS certificate of {url} (source.url) could not be verified ({detail}) for "
        f"{where}. If "
        "Concourse uses a private or self-signed CA, add that CA certificate in PEM form to "
        "source.ca_certs; as a last resort, set insecure: true."
    )


def _with_query(path: str, params: Params | None) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)

"""Runs the simulated ATC on loopback in a background thread, optionally over TLS.

Handler threads are daemons and held event streams poll a stop flag, so stopping never waits
for a client that is (deliberately or not) still reading an event stream.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import select
import socket
import ssl
import sys
import termios
import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from fleet_guard.simulator.access import TokenStore
from fleet_guard.simulator.handler import Handler
from fleet_guard.simulator.loader import add_builds, fault_from_json
from fleet_guard.simulator.model import Build, Fault, Scenario
from fleet_guard.simulator.recorder import RecordedRequest, Recorder


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        scenario: Scenario,
        *,
        tls_context: ssl.SSLContext | None = None,
        hold_seconds: float | None = None,
        verbose: bool = False,
    ) -> None:
        self.scenario = scenario
        self.tokens = TokenStore(scenario)
        self.recorder = Recorder(scenario.faults)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.tls_context = tls_context
        self.hold_seconds = (
            scenario.stream.hold_seconds if hold_seconds is None else float(hold_seconds)
        )
        self.verbose = verbose
        # (build id, gzip) -> the stream's wire bytes, when scenario.stream.cache is on.
        self.stream_cache: dict[tuple[int, bool], bytes] = {}
        self._connections: set[Any] = set()
        self.peak_connections = 0  # most connections open at once since the last clear
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self._connections.add(request)
            # A connection the client has already closed, whose thread has not noticed yet,
            # is not the client's any more: it does not count towards the peak.
            held = sum(1 for conn in self._connections if not _closed_by_peer(conn))
            self.peak_connections = max(self.peak_connections, held)
        super().process_request(request, client_address)

    @property
    def open_connections(self) -> int:
        with self.lock:
            return len(self._connections)

    def add_builds(self, specs: list[Any]) -> list[Build]:
        """New or replaced builds; a replaced build's cached stream is forgotten."""
        with self.lock:
            added = add_builds(self.scenario, list(specs))
            for build in added:
                for compress in (True, False):
                    self.stream_cache.pop((build.id, compress), None)
        return added

    def reset_peak(self) -> None:
        """From now on; connections still open are counted again at the next connection."""
        with self.lock:
            self.peak_connections = 0

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Stopping also hangs up on idle keep-alive clients, so none talks to a dead server."""
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        # Go's net/http sets TCP_NODELAY; without it a response written in two pieces (headers,
        # then body) waits ~40 ms for the client's delayed ACK, every request.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:
            # The handshake happens in the handler thread, so a slow client can't block accept().
            sock = self.tls_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response are normal here; anything else is a simulator bug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _closed_by_peer(conn: Any) -> bool:
    """True when the client has hung up: readable, with nothing to read (EOF). Never blocks:
    a peek could wait out the socket's timeout if its handler read first, stalling the whole
    server. TLS sockets cannot be looked into, so they count as open."""
    if isinstance(conn, ssl.SSLSocket):
        return False
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        waiting = array.array("i", [0])
        fcntl.ioctl(conn.fileno(), termios.FIONREAD, waiting)
        return waiting[0] == 0
    except (OSError, ValueError):
        return True


class Simulator:
    """A running simulated ATC. Use as a context manager; `url` is where clients connect."""

    def __init__(
        self,
        scenario: Scenario,
        tls: tuple[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hold_seconds: float | None = None,
        verbose: bool = False,
    ) -> None:
        self.scenario = scenario
        self._tls = tls
        self._host = host
        self._port = port
        self._hold_seconds = hold_seconds
        self._verbose = verbose
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Simulator:
        context = None
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile=self._tls[0], keyfile=self._tls[1])
        self._server = SimServer(
            (self._host, self._port),
            self.scenario,
            tls_context=context,
            hold_seconds=self._hold_seconds,
            verbose=self._verbose,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fleet-guard-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _running(self) -> SimServer:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use `with`")
        return self._server

    @property
    def port(self) -> int:
        return int(self._running.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._running.recorder.requests

    @property
    def mutations(self) -> list[RecordedRequest]:
        return self._running.recorder.mutations

    def clear_requests(self) -> None:
        """Forgets the requests so far, and restarts the connection peak."""
        self._running.recorder.clear()
        self._running.reset_peak()

    @property
    def peak_connections(self) -> int:
        return self._running.peak_connections

    def set_network(self, *, latency: float | None = None, rate: float | None = None) -> None:
        """Per-request latency (seconds) and per-stream rate (bytes/s, 0: unlimited) from now."""
        options = self._running.scenario.stream
        if latency is not None:
            options.latency = float(latency)
        if rate is not None:
            options.rate = float(rate)

    def add_builds(self, specs: list[Mapping[str, Any]]) -> list[Build]:
        """Adds or replaces builds (scenario `builds[]` entries) while running."""
        return self._running.add_builds(specs)

    def add_fault(self, fault: Fault | Mapping[str, Any]) -> None:
        """Adds a fault while running, e.g. `{"path": "/api/v1/workers", "status": 503}`."""
        if not isinstance(fault, Fault):
            fault = fault_from_json(fault)
        self._running.recorder.add_fault(fault)

    def expire_tokens(self) -> int:
        """Expires every token handed out so far (and static ones): the next call gets 401."""
        return self._running.tokens.expire_all()

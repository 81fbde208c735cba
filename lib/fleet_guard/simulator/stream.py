"""`GET /api/v1/builds/:id/events`: SSE exactly as the ATC writes it, awkward parts included.

The ATC gzips the stream whenever the client allows it (flushing after every event), sends no
keep-alives, and after `end` blocks until the client goes away. A client that reads to EOF
therefore hangs; here it hangs for `hold_seconds` and then the connection is cut *without*
the terminating chunk, so such a client fails loudly instead of silently succeeding late.
"""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fleet_guard.simulator.model import Build
from fleet_guard.simulator.steps import LazyLog
from fleet_guard.simulator.wire import go_json, sse_event

if TYPE_CHECKING:
    from fleet_guard.simulator.handler import Handler

EVENT_HEADERS = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("X-Accel-Buffering", "no"),
    ("X-ATC-Stream-Version", "2.0"),
)


def accepts_gzip(header: str | None) -> bool:
    """gzhttp's check: `gzip` (or `*`) listed with a non-zero q-value."""
    if not header:
        return False
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _envelopes(build: Build, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(event id, envelope) from `start` on; lazy log runs are generated only when reached."""
    index = 0
    for item in build.events:
        if isinstance(item, LazyLog):
            if index + item.count <= start:
                index += item.count
                continue
            skip = max(start - index, 0)
            for offset, env in enumerate(item.envelopes(skip)):
                yield index + skip + offset, env
            index += item.count
            continue
        if index >= start:
            yield index, item
        index += 1


class _ChunkWriter:
    """Chunked transfer encoding, optionally gzip with Z_SYNC_FLUSH so each event leaves now.

    With a `rate` the writer paces itself to that many bytes per second, as a stream from a
    remote ATC arrives; `recording` collects the exact wire bytes for the stream cache.
    """

    def __init__(self, handler: Handler, compress: bool, *, rate: float = 0.0) -> None:
        self.wfile = handler.wfile
        self.gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        self.rate = rate
        self.stopping = handler.server.stopping
        self.sent = 0
        self.started = time.monotonic()
        self.recording: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.gzip is not None:
            data = self.gzip.compress(data) + self.gzip.flush(zlib.Z_SYNC_FLUSH)
        if data:
            framed = f"{len(data):x}\r\n".encode() + data + b"\r\n"
            if self.recording is not None:
                self.recording.append(framed)
            self.send(framed)

    def send(self, wire: bytes) -> None:
        """Bytes already framed; paced in slices when a rate is set."""
        if not self.rate:
            self.wfile.write(wire)
            return
        view = memoryview(wire)
        for offset in range(0, len(wire), _PACE_SLICE):
            part = view[offset : offset + _PACE_SLICE]
            self.wfile.write(part)
            self.sent += len(part)
            ahead = self.sent / self.rate - (time.monotonic() - self.started)
            if ahead > 0 and self.stopping.wait(ahead):
                raise ConnectionAbortedError("simulator stopping")


_PACE_SLICE = 16 * 1024


def stream_events(
    handler: Handler, build: Build, start: int, *, cut_after: int | None = None
) -> None:
    """Streams the build's events, then `end` if it finished, then holds the connection.

    `cut_after` (a fault) ends the body cleanly after that many events, as a proxy that
    times streams out does: no `end`, so the client has to resume.
    """
    server = handler.server
    options = server.scenario.stream
    compress = accepts_gzip(handler.headers.get("Accept-Encoding"))
    handler.send_response(200)
    for name, value in EVENT_HEADERS:
        handler.send_header(name, value)
    handler.send_header("X-Concourse-Version", server.scenario.version)
    handler.send_header("Vary", "Accept-Encoding")
    if compress:
        handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.close_connection = True
    if handler.command == "HEAD":
        return
    writer = _ChunkWriter(handler, compress, rate=options.rate)
    delay = build.event_delay if build.event_delay is not None else options.event_delay
    cache_key = (build.id, compress)
    cacheable = options.cache and start == 0 and not build.running and not delay
    next_id = start
    try:
        cached = server.stream_cache.get(cache_key) if cacheable else None
        if cached is not None:
            writer.send(cached)
            _hold(handler, server.hold_seconds)
            return
        if cacheable:
            writer.recording = []
        for event_id, env in _envelopes(build, start):
            if cut_after is not None and next_id - start >= cut_after:
                handler.wfile.write(b"0\r\n\r\n")  # the terminating chunk: a clean EOF
                handler.wfile.flush()
                # ...and the connection goes, as a proxy's would: a client must not reuse it.
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if delay and next_id > start and server.stopping.wait(delay):
                return
            writer.write(sse_event(event_id, "event", go_json({**env, "event_id": str(event_id)})))
            next_id = event_id + 1
        if build.running:
            # A running build: the real server waits for more events and never sends `end`.
            _hold(handler, server.hold_seconds)
            return
        writer.write(sse_event(next_id, "end", ""))
        if writer.recording is not None:
            server.stream_cache[cache_key] = b"".join(writer.recording)
        _hold(handler, server.hold_seconds)
    except OSError:  # the client went away (ssl.SSLError is an OSError too)
        return


def _hold(handler: Handler, seconds: float) -> None:
    """Keeps the socket open like `<-r.Context().Done()` until the client leaves or time's up."""
    sock = handler.connection
    deadline = time.monotonic() + seconds
    stopping = handler.server.stopping
    while not stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            sock.settimeout(min(0.2, remaining))
            data = sock.recv(1)
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        except OSError:
            return
        if not data:
            return

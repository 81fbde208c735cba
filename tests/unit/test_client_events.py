"""Build event streams: parsed incrementally and closed at `end`, although the ATC never hangs up.

The server tests use a real HTTP/1.1 server on 127.0.0.1 that behaves like the ATC: chunked,
gzip flushed per event, and the connection held open after `end`. A client that waits for EOF
hangs there, so each test bounds its own duration.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.events import Message, SseParser, to_event
from fleet_guard.config import SourceConfig
from fleet_guard.log import Log

DATA = Path(__file__).parent / "data"
HOLD = 20.0  # how long the fake ATC keeps a finished stream open, like the real one (forever)


def event_bytes(n: int, kind: str = "log", **data: object) -> bytes:
    envelope = {"data": data, "event": kind, "version": "5.1", "event_id": str(n)}
    return f"id: {n}\nevent: event\ndata: {json.dumps(envelope)}\n\n".encode()


def end_bytes(n: int) -> bytes:
    return f"id: {n}\nevent: end\ndata\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeAtc

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        try:
            self.server.script(self, len(self.server.requests))
        except (BrokenPipeError, ConnectionResetError):
            self.server.client_closed.set()

    # the building blocks a script uses

    def start_stream(self, *, gzip: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Accel-Buffering", "no")
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self._gzip = zlib.compressobj(wbits=31) if gzip else None

    def send_event(self, raw: bytes) -> None:
        if self._gzip is not None:
            raw = self._gzip.compress(raw) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        if raw:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()

    def end_chunks(self) -> None:
        """A clean end of body without `end`: what the ATC does when reading events fails."""
        if self._gzip is not None:
            self.send_event(b"")
            tail = self._gzip.flush()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def hold_open(self, seconds: float = HOLD) -> None:
        """Like the ATC after `end`: wait for the client to hang up, never close first."""
        self.connection.settimeout(0.05)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.server.released.is_set():
            try:
                if self.connection.recv(1) == b"":
                    self.server.client_closed.set()
                    return
            except TimeoutError:
                continue
            except OSError:
                self.server.client_closed.set()
                return
        self.close_connection = True


class FakeAtc(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Callable[[Handler, int], None]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.client_closed = threading.Event()
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Handler, int], None]], FakeAtc]]:
    servers: list[FakeAtc] = []

    def start(script: Callable[[Handler, int], None]) -> FakeAtc:
        server = FakeAtc(script)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.released.set()
        server.shutdown()
        server.server_close()


def client_for(server: FakeAtc, **kwargs: object) -> tuple[ConcourseClient, io.StringIO]:
    stream = io.StringIO()
    log = Log(debug=True, stream=stream)
    return ConcourseClient(SourceConfig(url=server.url), log, **kwargs), stream


def finished_build(*, gzip: bool, count: int = 5) -> Callable[[Handler, int], None]:
    def script(handler: Handler, _: int) -> None:
        handler.start_stream(gzip=gzip)
        for n in range(count):
            handler.send_event(event_bytes(n, payload=f"line {n}\n"))
        handler.send_event(end_bytes(count))
        handler.hold_open()

    return script


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_all_events_arrive_promptly_and_the_held_connection_is_closed(serve, gzip):
    server = serve(finished_build(gzip=gzip))
    client, _ = client_for(server)
    started = time.monotonic()
    events = list(client.build_events(7))
    elapsed = time.monotonic() - started

    assert [e.data["payload"] for e in events] == [f"line {n}\n" for n in range(5)]
    assert [e.event_id for e in events] == ["0", "1", "2", "3", "4"]
    assert elapsed < 2, "the client waited for EOF instead of stopping at `end`"
    assert server.client_closed.wait(2), "the client left the connection open"
    path, headers = server.requests[0]
    assert path == "/api/v1/builds/7/events"
    assert "gzip" in headers.get("Accept-Encoding", "")
    assert client.calls == 1


def test_stopping_early_closes_the_response(serve):
    server = serve(finished_build(gzip=True, count=50))
    client, _ = client_for(server)
    events = client.build_events(7)
    first = next(events)
    events.close()  # what a `break` out of a for loop does, once the generator is dropped
    assert first.event_id == "0"
    assert server.client_closed.wait(2)


def test_a_huge_log_is_cut_at_max_bytes(serve):
    line = "x" * 900

    def script(handler: Handler, _: int) -> None:
        handler.start_stream(gzip=True)
        for n in range(20_000):  # about 20 MB decoded, never ending
            handler.send_event(event_bytes(n, payload=line))
        handler.hold_open()

    server = serve(script)
    client, stderr = client_for(server)
    started = time.monotonic()
    stream = client.build_events(9, max_bytes=64 * 1024)
    events = list(stream)
    assert stream.outcome == "over_cap" and not stream.complete
    assert time.monotonic() - started < 5
    assert 40 < len(events) < 70  # about 64 KiB worth of ~1 KiB events
    assert "truncated at max_bytes" in stderr.getvalue()
    assert server.client_closed.wait(5)
    assert len(server.requests) == 1, "a truncated log must not be resumed"


def test_a_stream_cut_before_end_is_resumed_once_after_the_last_event(serve):
    def script(handler: Handler, request: int) -> None:
        handler.start_stream(gzip=True)
        if request == 1:
            for n in range(3):
                handler.send_event(event_bytes(n, payload=f"{n}"))
            handler.end_chunks()
            return
        for n in range(3, 5):
            handler.send_event(event_bytes(n, payload=f"{n}"))
        handler.send_event(end_bytes(5))
        handler.hold_open()

    server = serve(script)
    client, stderr = client_for(server)
    stream = client.build_events(3)
    events = list(stream)
    assert stream.outcome == "complete"
    assert [e.event_id for e in events] == ["0", "1", "2", "3", "4"]
    assert [r[1].get("Last-Event-ID") for r in server.requests] == [None, "2"]
    assert "resuming after event 2" in stderr.getvalue()


def test_a_stream_cut_twice_gives_up_with_the_events_it_has(serve):
    def script(handler: Handler, request: int) -> None:
        handler.start_stream(gzip=False)
        handler.send_event(event_bytes(request, payload="x"))
        handler.end_chunks()

    server = serve(script)
    client, stderr = client_for(server)
    stream = client.build_events(3)
    events = list(stream)
    assert stream.outcome == "cut"
    assert [e.event_id for e in events] == ["1", "2"]
    assert len(server.requests) == 2
    assert "log incomplete" in stderr.getvalue()


def test_a_stalled_stream_stops_at_the_read_timeout_without_resuming(serve):
    def script(handler: Handler, _: int) -> None:
        handler.start_stream(gzip=True)
        handler.send_event(event_bytes(0, payload="still running"))
        handler.hold_open()

    server = serve(script)
    client, stderr = client_for(server, read_timeout=0.3)
    started = time.monotonic()
    events = list(client.build_events(3))
    assert [e.event_id for e in events] == ["0"]
    assert time.monotonic() - started < 3
    assert len(server.requests) == 1
    assert "may still be running" in stderr.getvalue()


def test_a_missing_build_is_a_clear_error(serve):
    def script(handler: Handler, _: int) -> None:
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server = serve(script)
    client, _ = client_for(server)
    with pytest.raises(Exception, match=r"GET /api/v1/builds/3/events returned 404.*no build 3"):
        list(client.build_events(3))


# The parser alone, fed the sample stream in awkward pieces.


def parse_all(raw: bytes, piece: int) -> list[Message]:
    parser = SseParser()
    messages: list[Message] = []
    for start in range(0, len(raw), piece):
        messages += parser.feed(raw[start : start + piece])
    return messages


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_the_eintr_sample_parses_to_its_events_whatever_the_chunking(piece):
    raw = (DATA / "events-eintr.sse").read_bytes()
    messages = parse_all(raw, piece)
    assert [m.name for m in messages] == ["event"] * 21 + ["end"]
    assert messages[-1] == Message(name="end", data="", id="21")

    log = Log()
    events = [e for m in messages if (e := to_event(m, log))]
    assert [e.type for e in events][:4] == [
        "status",
        "initialize-get",
        "start-get",
        "selected-worker",
    ]
    worker = [e for e in events if e.type == "selected-worker"][-1]
    assert worker.data["selected_worker"] == "concourse-worker-3"
    assert worker.origin_id == "6829e1a2"
    error = next(e for e in events if e.type == "error")
    assert error.version == "4.1" and error.event_id == "19"
    assert error.data["message"].endswith(
        'cni net setup: plugin type="loopback" failed (add): interrupted system call'
    )
    assert events[-1].data["status"] == "errored"


def test_the_parser_follows_the_sse_rules_the_atc_and_proxies_use():
    raw = (
        b": a proxy comment\r\n"
        b'id: 4\r\nevent: event\r\ndata: {"a":\r\ndata:1}\r\n\r\n'  # CRLF, two data lines
        b"event: end\ndata\n\n"  # a bare `data` line is an empty data field
    )
    messages = parse_all(raw, 3)
    assert messages == [
        Message(name="event", data='{"a":\n1}', id="4"),
        Message(name="end", data="", id="4"),
    ]


def test_unreadable_or_unknown_events_are_skipped_or_passed_on():
    log = Log()
    assert to_event(Message("event", "not json", "1"), log) is None
    assert to_event(Message("event", '{"no": "envelope"}', "2"), log) is None
    future = to_event(Message("event", '{"event":"log","version":"9.0","data":{"x":1}}', "3"), log)
    assert future is not None
    assert (future.type, future.version, future.event_id) == ("log", "9.0", "3")

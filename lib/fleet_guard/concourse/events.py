"""Build event streams: server-sent events read incrementally, stopped at `end`.

The ATC never closes an event stream: after the `end` event its handler waits for the client
to hang up. Anything that reads to EOF (`response.text`, `iter_lines()` to the end, even
`iter_content(512)`, which blocks until 512 bytes arrive) therefore hangs. This module reads
whatever bytes are available (`read1`), parses them as they come, and closes the response as
soon as `end` is seen, the byte budget is spent or the caller stops iterating.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import zlib
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
import urllib3

from fleet_guard.concourse.models import Event
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

READ_SIZE = 256 * 1024  # bytes asked of the socket at once: many of the ATC's tiny chunks
DECODED_MAX = 256 * 1024  # gunzip output per step, so a well-compressed block stays small

# Opens the stream, resuming after the given event id when there is one.
StreamOpener = Callable[[str | None], requests.Response]


@dataclass(frozen=True)
class Message:
    """One dispatched server-sent event: its `event:` name, joined `data:` lines and `id:`."""

    name: str
    data: str
    id: str


# One message as bytes: (name, id, data). Decoding to text waits until someone needs it.
RawMessage = tuple[bytes, bytes, bytes]

# The tail of an envelope as Go marshals it: `,"event":"<type>","version":"<v>"` and, since
# 7.3, `,"event_id":"<n>"`, then the closing brace. No quote in it can be escaped, so when it
# ends the line it is the envelope's own `event` key, never text inside a string.
_TAIL = rb',"event":"([^"\\\n]+)","version":"[^"\\\n]*"(?:,"event_id":"[^"\\\n]*")?}'
_ENVELOPE_TAIL = re.compile(rb"[^\n]*" + _TAIL)
# What go-sse writes for every event but `end`: id, name, one data line holding an envelope.
_FAST_EVENT = re.compile(rb"id: ([^\n]*)\nevent: event\ndata: ([^\n]*" + _TAIL + rb")")


class MessageSplitter:
    """Incremental SSE parsing at the byte level: feed bytes as they arrive, get back messages.

    The ATC frames every event the same way (`id:`, `event: event`, one `data:` line with a
    compact envelope, a blank line), so messages are found with one split on blank lines and
    each is recognised, its event type included, by one regular expression. A message of an
    event type not `wanted` is dropped right there, undecoded. Anything else (comments,
    several data lines, CR line ends or re-encoded JSON from a proxy) goes through the
    line-by-line rules of the SSE spec and is passed on whole. Only the unfinished last message
    is kept between feeds, so memory is bounded by the longest event, not by the stream.
    """

    def __init__(self, wanted: Collection[str] | None = None) -> None:
        self._pending: list[bytes] = []
        self._id = b""
        self._wanted = None if wanted is None else frozenset(t.encode() for t in wanted)

    @property
    def last_id(self) -> str:
        """The `id` of the last message seen, skipped ones included: where to resume."""
        return _text(self._id)

    def feed(self, chunk: bytes) -> list[RawMessage]:
        self._pending.append(chunk)
        if b"\n" not in chunk and b"\r" not in chunk:
            return []
        text = b"".join(self._pending)
        if b"\r" in text:
            # CR LF or a lone CR end a line too; a CR at the very end may be half of a CR LF.
            held = text[-1:] if text.endswith(b"\r") else b""
            text = text[: len(text) - len(held)].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            text += held
        *complete, rest = text.split(b"\n\n")
        self._pending = [rest] if rest else []
        messages = []
        fast = _FAST_EVENT.fullmatch
        wanted = self._wanted
        for raw in complete:
            match = fast(raw)
            if match is None:
                message = self._general(raw)
                if message is not None:
                    messages.append(message)
                continue
            ident = match.group(1)
            if b"\0" not in ident:
                self._id = ident
            if wanted is None or match.group(3) in wanted:
                messages.append((b"event", self._id, match.group(2)))
        return messages

    def _general(self, raw: bytes) -> RawMessage | None:
        name = b""
        data: list[bytes] = []
        started = False
        for line in raw.split(b"\n"):
            if not line or line.startswith(b":"):
                continue  # a leading blank line, or a comment (the ATC sends none, proxies might)
            field, colon, value = line.partition(b":")
            if colon and value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                data.append(value)
                started = True
            elif field == b"event":
                name = value
                started = True
            elif field == b"id" and b"\0" not in value:
                self._id = value
        if not started:
            return None
        return name or b"message", self._id, b"\n".join(data)


class SseParser:
    """`MessageSplitter` with the messages as text, for callers that want every one of them."""

    def __init__(self) -> None:
        self._splitter = MessageSplitter()

    def feed(self, chunk: bytes) -> list[Message]:
        return [
            Message(name=_text(name), data=_text(data), id=_text(ident))
            for name, ident, data in self._splitter.feed(chunk)
        ]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def sniff_type(data: bytes) -> bytes | None:
    """The envelope's event type read from its tail, or None when unsure.

    Unsure (another key order, spaces, escapes, not an envelope) means: decode it all.
    """
    match = _ENVELOPE_TAIL.fullmatch(data)
    return match.group(1) if match else None


def to_event(message: Message, log: Log) -> Event | None:
    """The envelope of an `event: event` message; anything unreadable is skipped, not fatal."""
    return _decode(message.data, message.id, log)


def _decode(data: str | bytes, ident: str, log: Log) -> Event | None:
    """Event versions are not checked: unknown majors are still passed on, because callers
    only read a few fields (`message`, `selected_worker`, `payload`) that have never changed.
    """
    try:
        envelope: Any = json.loads(data)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        log.debug(f"skipped event {ident or '?'}: its data is not JSON")
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
        log.debug(f"skipped event {ident or '?'}: not an event envelope")
        return None
    body = envelope.get("data")
    return Event(
        type=envelope["event"],
        data=body if isinstance(body, dict) else {},
        version=str(envelope.get("version") or ""),
        event_id=str(envelope.get("event_id") or ident),
    )


class EventFilter:
    """Which event types to decode; the others are recognised cheaply and passed over.

    Most of a big build's stream is `log` events that no rule reads: sniffing their type from
    the last bytes of the envelope saves a JSON decode of every one. Whenever the sniff is
    unsure, the event is decoded in full and filtered on its real type, so none is misread.
    """

    def __init__(self, types: Collection[str] | None) -> None:
        self.types = None if types is None else frozenset(types)
        self._sniffed = None if types is None else frozenset(t.encode() for t in types)

    def event(self, data: bytes, ident: bytes, log: Log) -> Event | None:
        if self._sniffed is not None:
            sniffed = sniff_type(data)
            if sniffed is not None and sniffed not in self._sniffed:
                return None
        event = _decode(data, _text(ident), log)
        if event is None or (self.types is not None and event.type not in self.types):
            return None
        return event


class StreamOutcome(StrEnum):
    """How reading one build's events ended. Only `complete` means the log was read whole;
    the others are part of the scan's coverage, because the error that matters may be in
    the part not read."""

    COMPLETE = "complete"  # the `end` event was reached
    CUT = "cut"  # ended before `end` even after resuming, stalled, or could not resume
    OVER_CAP = "over_cap"  # stopped at `max_bytes`


class EventStream:
    """A build's events, iterated once; `outcome` says how the reading ended.

    A caller that remembers what a finished build showed must know the log was read whole:
    a stream cut short or truncated at `max_bytes` may have missed the error that matters.
    Until iteration has ended, `outcome` is `cut` (not read whole).
    """

    def __init__(
        self,
        open_stream: StreamOpener,
        *,
        max_bytes: int,
        log: Log,
        label: str,
        events: Collection[str] | None = None,
        max_seconds: float | None = None,
    ) -> None:
        self._events: Generator[Event, None, None] = read_events(
            open_stream,
            max_bytes=max_bytes,
            log=log,
            label=label,
            on_outcome=self._ended,
            events=events,
            max_seconds=max_seconds,
        )
        self.outcome = StreamOutcome.CUT

    @property
    def complete(self) -> bool:
        return self.outcome is StreamOutcome.COMPLETE

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Stop early: closes the response, as leaving a `for` loop over it does."""
        self._events.close()

    def _ended(self, outcome: StreamOutcome) -> None:
        self.outcome = outcome


def read_events(
    open_stream: StreamOpener,
    *,
    max_bytes: int,
    log: Log,
    label: str,
    on_outcome: Callable[[StreamOutcome], None] = lambda _: None,
    events: Collection[str] | None = None,
    max_seconds: float | None = None,
) -> Generator[Event, None, None]:
    """Events until `end`; a stream cut short is resumed once after the last event seen.

    `events` limits which types are decoded and yielded (None: all of them). `max_bytes`
    counts decoded bytes across both attempts. Stopping early (budget spent, a second cut, a
    stall) is logged at debug and the events so far stand: for finding failures a partial
    log beats none. `on_outcome` hears how it ended, unless the caller stopped first.
    `max_seconds` bounds the whole read: a server that drips a byte at a time never trips
    the read timeout, so past it the stream counts as cut.
    """
    until = None if max_seconds is None else time.monotonic() + max_seconds
    wanted = EventFilter(events)
    spent = 0
    last_id: str | None = None
    for attempt in (1, 2):
        if attempt == 2:
            log.debug(f"{label}: stream ended before `end`; resuming after event {last_id}")
        try:
            response = open_stream(last_id)
        except ConcourseError as exc:
            if attempt == 1:
                raise
            log.debug(f"{label}: could not resume, the log is incomplete: {exc.message}")
            on_outcome(StreamOutcome.CUT)
            return
        splitter = MessageSplitter(events)
        outcome = "eof"
        try:
            for chunk in body_blocks(response):
                if until is not None and time.monotonic() > until:
                    raise _StreamDeadline(
                        f"still streaming after {max_seconds:g} s; log incomplete"
                    )
                if spent + len(chunk) > max_bytes:
                    chunk = chunk[: max_bytes - spent]
                    outcome = "truncated"
                spent += len(chunk)
                for name, ident, data in splitter.feed(chunk):
                    if name == b"end":
                        on_outcome(StreamOutcome.COMPLETE)
                        return
                    event = wanted.event(data, ident, log) if name == b"event" else None
                    if event is not None:
                        yield event
                if outcome == "truncated":
                    log.debug(f"{label}: log truncated at max_bytes ({max_bytes} bytes)")
                    on_outcome(StreamOutcome.OVER_CAP)
                    return
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            deadline = isinstance(exc, _StreamDeadline)
            why = (
                str(exc)
                if deadline
                else "no data for the read timeout; the build may still be running"
            )
            log.debug(f"{label}: {why}")
            on_outcome(StreamOutcome.CUT)
            return
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            outcome = type(exc).__name__
        finally:
            response.close()
            last_id = splitter.last_id or last_id
        if attempt == 2:
            log.debug(f"{label}: stream ended before `end` again ({outcome}); log incomplete")
            on_outcome(StreamOutcome.CUT)


class _StreamDeadline(TimeoutError):
    """The stream's total time ran out while data still came (a server dripping bytes)."""


def body_blocks(response: requests.Response) -> Iterator[bytes]:
    """The decoded body in large blocks, as fast as the socket delivers it; never waits for
    more than the socket has, because the ATC never ends the body."""
    wire = _WireBody.open(response)
    if wire is not None:
        yield from wire.blocks()
        return
    raw = response.raw
    while True:  # anything unusual: urllib3's own reading, one HTTP chunk at a time
        chunk = raw.read1(READ_SIZE, decode_content=True)
        if not chunk:
            return
        yield chunk


class _WireBody:
    """Reads the socket under http.client directly and undoes chunking and gzip in batches.

    The ATC flushes every event as its own HTTP chunk of a few hundred bytes; reading those one
    by one through urllib3 costs more than everything else a check does with them. One
    `read1` here takes whatever the socket holds (hundreds of chunks), strips the framing in a
    loop over bytes, and inflates the lot in one call.
    """

    def __init__(self, fp: Any, *, chunked: bool, length: int | None, gzipped: bool) -> None:
        self._fp = fp
        self._chunked = chunked
        self._length = length  # bytes left when the body has a Content-Length
        self._inflate = zlib.decompressobj(31) if gzipped else None
        self._pending = b""  # an unfinished chunk-size line
        self._left = 0  # bytes of chunk data still to come
        self._crlf = 0  # bytes of the CR LF after chunk data still to skip
        self._done = False

    @classmethod
    def open(cls, response: requests.Response) -> _WireBody | None:
        """None when the response is not the plain http.client one this knows how to read."""
        inner = getattr(response.raw, "_fp", None)
        fp = getattr(inner, "fp", None)
        if not isinstance(inner, http.client.HTTPResponse) or not hasattr(fp, "read1"):
            return None
        if getattr(inner, "chunk_left", None) is not None:
            return None  # http.client has started on the body already
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            return None
        return cls(
            fp,
            chunked=bool(inner.chunked),
            length=inner.length,
            gzipped=encoding in ("gzip", "x-gzip"),
        )

    def blocks(self) -> Iterator[bytes]:
        while not self._done:
            block = self._fp.read1(READ_SIZE)
            if not block:
                return  # the connection closed: a cut, if `end` has not been seen
            data = self._dechunk(block) if self._chunked else self._limit(block)
            if self._inflate is None:
                if data:
                    yield data
                continue
            try:
                decoded = self._inflate.decompress(data, DECODED_MAX)
                while True:
                    if decoded:
                        yield decoded
                    if not self._inflate.unconsumed_tail:
                        break
                    decoded = self._inflate.decompress(self._inflate.unconsumed_tail, DECODED_MAX)
            except zlib.error as exc:
                raise urllib3.exceptions.DecodeError(f"bad gzip data: {exc}") from None

    def _limit(self, block: bytes) -> bytes:
        if self._length is None:
            return block
        block = block[: self._length]
        self._length -= len(block)
        self._done = self._length == 0
        return block

    def _dechunk(self, block: bytes) -> bytes:
        """The data of every complete chunk in `block`; a partial one continues next time."""
        buf = self._pending + block if self._pending else block
        self._pending = b""
        parts: list[bytes] = []
        at, end = 0, len(buf)
        find, append = buf.find, parts.append
        while at < end:
            if not (self._left or self._crlf):
                # The common case first: a whole `size CRLF data CRLF` chunk in the buffer.
                eol = find(b"\r\n", at, at + 20)
                if eol > at:
                    try:
                        size = int(buf[at:eol], 16)
                    except ValueError:
                        size = -1  # an extension or odd spacing: the careful path below
                    if size > 0 and eol + 4 + size <= end:
                        append(buf[eol + 2 : eol + 2 + size])
                        at = eol + 4 + size
                        continue
                at = self._size_line(buf, at)
                if at < 0:
                    break
                continue
            if self._left:
                take = min(self._left, end - at)
                append(buf[at : at + take])
                at += take
                self._left -= take
                self._crlf = 0 if self._left else 2
                continue
            skip = min(self._crlf, end - at)
            at += skip
            self._crlf -= skip
        return b"".join(parts)

    def _size_line(self, buf: bytes, at: int) -> int:
        """Reads one chunk-size line; where its data starts, or -1 when it is not all here."""
        eol = buf.find(b"\n", at)
        if eol < 0:
            if len(buf) - at > 1024:
                raise urllib3.exceptions.ProtocolError("chunk size line too long")
            self._pending = buf[at:]
            return -1
        size_text = buf[at:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise urllib3.exceptions.ProtocolError(f"bad chunk size {size_text!r}") from None
        if size < 0:
            raise urllib3.exceptions.ProtocolError(f"bad chunk size {size_text!r}")
        if size == 0:
            self._done = True  # trailers, if any, are of no interest
            return -1
        self._left = size
        return eol + 1

"""Build event streams: server-sent events read incrementally, stopped at `end`.

The ATC never closes an event stream: after the `end` event its handler waits for the client
to hang up. Anything that reads to EOF (`response.text`, `iter_lines()` to the end, even
`iter_content(512)`, which blocks until 512 bytes arrive) therefore hangs. This module reads
whatever bytes are available (`read1`), parses them as they come, and closes the response as
soon as `end` is seen, the byte budget is spent or the caller stops iterating.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
import urllib3

from fleet_guard.concourse.models import Event
from fleet_guard.errors import ConcourseError
from fleet_guard.log import Log

READ_SIZE = 64 * 1024

# Opens the stream, resuming after the given event id when there is one.
StreamOpener = Callable[[str | None], requests.Response]


@dataclass(frozen=True)
class Message:
    """One dispatched server-sent event: its `event:` name, joined `data:` lines and `id:`."""

    name: str
    data: str
    id: str


class SseParser:
    """Incremental SSE parsing: feed bytes as they arrive, get back the complete messages.

    Only the unfinished last line is kept between feeds, so memory is bounded by the longest
    line, not by the stream.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._name = ""
        self._data: list[str] = []
        self._id = ""
        self._started = False

    def feed(self, chunk: bytes) -> list[Message]:
        if b"\n" not in chunk:
            self._pending.append(chunk)
            return []
        self._pending.append(chunk)
        *lines, rest = b"".join(self._pending).split(b"\n")
        self._pending = [rest] if rest else []
        messages = []
        for raw in lines:
            message = self._line(raw.removesuffix(b"\r").decode("utf-8", "replace"))
            if message is not None:
                messages.append(message)
        return messages

    def _line(self, line: str) -> Message | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment; the ATC sends none, proxies might
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._started = True
        elif field == "event":
            self._name = value
            self._started = True
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Message | None:
        if not self._started:
            return None
        message = Message(name=self._name or "message", data="\n".join(self._data), id=self._id)
        self._name, self._data, self._started = "", [], False
        return message


def to_event(message: Message, log: Log) -> Event | None:
    """The envelope of an `event: event` message; anything unreadable is skipped, not fatal.

    Event versions are not checked: unknown majors are still passed on, because callers only
    read a few fields (`message`, `selected_worker`, `payload`) that have never changed.
    """
    try:
        envelope: Any = json.loads(message.data)
    except ValueError:
        log.debug(f"skipped event {message.id or '?'}: its data is not JSON")
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), str):
        log.debug(f"skipped event {message.id or '?'}: not an event envelope")
        return None
    data = envelope.get("data")
    return Event(
        type=envelope["event"],
        data=data if isinstance(data, dict) else {},
        version=str(envelope.get("version") or ""),
        event_id=str(envelope.get("event_id") or message.id),
    )


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

    def __init__(self, open_stream: StreamOpener, *, max_bytes: int, log: Log, label: str) -> None:
        self._events: Generator[Event, None, None] = read_events(
            open_stream, max_bytes=max_bytes, log=log, label=label, on_outcome=self._ended
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
) -> Generator[Event, None, None]:
    """Events until `end`; a stream cut short is resumed once after the last event seen.

    `max_bytes` counts decoded bytes across both attempts. Stopping early (budget spent, a
    second cut, a stall) is logged at debug and the events so far stand: for finding failures
    a partial log beats none. `on_outcome` hears how it ended, unless the caller stopped first.
    """
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
        parser = SseParser()
        outcome = "eof"
        try:
            for chunk in _chunks(response):
                if spent + len(chunk) > max_bytes:
                    chunk = chunk[: max_bytes - spent]
                    outcome = "truncated"
                spent += len(chunk)
                for message in parser.feed(chunk):
                    last_id = message.id or last_id
                    if message.name == "end":
                        on_outcome(StreamOutcome.COMPLETE)
                        return
                    event = to_event(message, log) if message.name == "event" else None
                    if event is not None:
                        yield event
                if outcome == "truncated":
                    log.debug(f"{label}: log truncated at max_bytes ({max_bytes} bytes)")
                    on_outcome(StreamOutcome.OVER_CAP)
                    return
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            log.debug(f"{label}: no data for the read timeout; the build may still be running")
            on_outcome(StreamOutcome.CUT)
            return
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            outcome = type(exc).__name__
        finally:
            response.close()
        if attempt == 2:
            log.debug(f"{label}: stream ended before `end` again ({outcome}); log incomplete")
            on_outcome(StreamOutcome.CUT)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """Whatever the socket has, decoded; `read1` never waits to fill a buffer."""
    raw = response.raw
    while True:
        chunk = raw.read1(READ_SIZE, decode_content=True)
        if not chunk:
            return
        yield chunk

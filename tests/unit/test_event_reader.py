"""The event-stream reader's fast paths: chunk framing and gzip undone in batches, messages
split at the byte level, JSON decoded only for wanted types. Each fast path must give exactly
what the slow, obvious reading gives, whatever the bytes and however they arrive."""

from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from pathlib import Path

import pytest
import urllib3

from fleet_guard.concourse.client import ConcourseClient
from fleet_guard.concourse.events import (
    DECODED_MAX,
    EventFilter,
    MessageSplitter,
    _WireBody,
    sniff_type,
)
from fleet_guard.config import SourceConfig
from fleet_guard.log import Log
from fleet_guard.simulator import Simulator
from fleet_guard.simulator.loader import add_builds, load_scenario
from fleet_guard.simulator.wire import go_json

DATA = Path(__file__).parent / "data"
EINTR = (
    "find or create container on worker w-2: starting task: network add: cni net setup: "
    'plugin type="loopback" failed (add): interrupted system call'
)


def split_all(raw: bytes, pieces: list[int]) -> list[tuple[bytes, bytes, bytes]]:
    splitter = MessageSplitter()
    out = []
    at = 0
    for size in pieces:
        out += splitter.feed(raw[at : at + size])
        at += size
    return out + splitter.feed(raw[at:])


def random_pieces(rng: random.Random, total: int) -> list[int]:
    pieces = []
    while sum(pieces) < total:
        pieces.append(rng.choice([1, 2, 3, 5, 17, 100, 4096]))
    return pieces


@pytest.mark.parametrize("seed", range(20))
def test_messages_are_the_same_however_the_bytes_arrive(seed):
    rng = random.Random(seed)
    raw = (DATA / "events-eintr.sse").read_bytes()
    if seed % 2:
        raw = raw.replace(b"\n", b"\r\n")  # a proxy that rewrites line ends
    expected = split_all(raw, [len(raw)])
    assert len(expected) == 22 and expected[-1] == (b"end", b"21", b"")
    assert split_all(raw, random_pieces(rng, len(raw))) == expected


def test_the_general_sse_rules_still_apply_off_the_fast_path():
    raw = (
        b": a comment\n\n"
        b"\n\n\n"  # stray blank lines dispatch nothing
        b'id: 4\nevent: event\ndata: {"a":\ndata:1}\n\n'  # two data lines, one without a space
        b"data: no name\n\n"  # the default name, and the id carries over
        b"id: 7\x00\nevent: end\ndata\n\n"  # an id with a NUL is ignored
    )
    assert split_all(raw, [5] * 40) == [
        (b"event", b"4", b'{"a":\n1}'),
        (b"message", b"4", b"no name"),
        (b"end", b"4", b""),
    ]


def envelope(kind: str, data: dict[str, object], event_id: int = 3) -> bytes:
    body = {"data": data, "event": kind, "version": "1.0", "event_id": str(event_id)}
    return go_json(body).encode()


def test_the_type_is_read_from_the_envelope_tail_as_go_writes_it():
    assert sniff_type(envelope("log", {"payload": "x"})) == b"log"
    assert sniff_type(b'{"data":{},"event":"status","version":"1.0"}') == b"status"  # < 7.3
    # Unsure, so the caller decodes in full: other key orders, spaces, escapes.
    assert sniff_type(b'{"event":"log","version":"5.1","data":{}}') is None
    assert sniff_type(b'{"data": {}, "event": "log", "version": "5.1"}') is None
    assert sniff_type(b'{"data":{},"event":"\\u006cog","version":"5.1","event_id":"1"}') is None
    assert sniff_type(b"not json at all") is None


TRICKY_TEXT = [
    "plain",
    '","event":"log","version":"5.1","event_id":"1"}',
    ',"event":"error"',
    '\\"event\\":\\"log\\"',
    "\u00e9\u2028<&>\n",
    "}" * 50,
    "x" * 300 + ',"event":"log","version":"1","event_id":"2"}',
]


def tricky_envelopes(rng: random.Random) -> list[bytes]:
    kinds = ["log", "error", "selected-worker", "status", "finish-task", "lo", "errors"]
    out = []
    for n in range(300):
        kind = rng.choice(kinds)
        data = {"origin": {"id": "a1"}, "payload": rng.choice(TRICKY_TEXT)}
        if kind == "error":
            data = {"message": rng.choice(TRICKY_TEXT), "origin": {"id": "a1"}}
        style = rng.randrange(5)
        if style == 0:
            raw = envelope(kind, data, n)
        elif style == 1:  # Python's spacing
            raw = json.dumps({"data": data, "event": kind, "version": "1.0"}).encode()
        elif style == 2:  # another key order
            raw = json.dumps({"event": kind, "data": data}, separators=(",", ":")).encode()
        elif style == 3:  # not an envelope, or not JSON
            raw = rng.choice([b"[1,2]", b'{"event":3}', b"{broken", envelope(kind, data)[:-1]])
        else:  # a payload that ends the way an envelope does
            raw = envelope("log", {"payload": '"},"event":"error","version":"4.1"}'}, n)
        out.append(raw)
    return out


@pytest.mark.parametrize("wanted", [{"error"}, {"error", "selected-worker"}, {"log"}, set()])
def test_filtered_decoding_gives_what_a_full_decode_then_a_filter_gives(wanted):
    log = Log(stream=io.StringIO())
    everything = EventFilter(None)
    only = EventFilter(wanted)
    for raw in tricky_envelopes(random.Random(len(wanted))):
        full = everything.event(raw, b"9", log)
        expected = full if full is not None and full.type in wanted else None
        assert only.event(raw, b"9", log) == expected, raw


class Socket:
    """read1 in random pieces, like a socket that has whatever arrived."""

    def __init__(self, data: bytes, rng: random.Random) -> None:
        self._data = data
        self._rng = rng

    def read1(self, size: int) -> bytes:
        take = min(size, self._rng.choice([1, 7, 500, 70_000, 1 << 20]))
        out, self._data = self._data[:take], self._data[take:]
        return out


def chunked(body: bytes, rng: random.Random) -> bytes:
    out = b""
    at = 0
    while at < len(body):
        size = rng.choice([1, 13, 800, 20_000, 400_000])
        part = body[at : at + size]
        extension = b";x=1" if rng.random() < 0.1 else b""
        out += b"%x%s\r\n%s\r\n" % (len(part), extension, part)
        at += size
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("seed", range(12))
def test_chunk_framing_and_gzip_are_undone_whatever_the_pieces(seed):
    rng = random.Random(seed)
    body = b"".join(rng.randbytes(rng.choice([10, 3000])) * rng.randint(1, 40) for _ in range(60))
    gzipped = seed % 2 == 0
    wire = gzip.compress(body) if gzipped else body
    reader = _WireBody(Socket(chunked(wire, rng), rng), chunked=True, length=None, gzipped=gzipped)
    blocks = list(reader.blocks())
    assert b"".join(blocks) == body
    assert max(len(b) for b in blocks) <= DECODED_MAX  # gunzip output is bounded per step


def test_a_content_length_body_stops_at_its_length():
    reader = _WireBody(
        Socket(b"abcdefXYZ", random.Random(1)), chunked=False, length=6, gzipped=False
    )
    assert b"".join(reader.blocks()) == b"abcdef"


def test_bad_framing_and_bad_gzip_are_http_errors_that_count_as_a_cut():
    bad_size = _WireBody(
        Socket(b"zz\r\nhello\r\n", random.Random(1)), chunked=True, length=None, gzipped=False
    )
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(bad_size.blocks())
    garbage = b"%x\r\n%s\r\n" % (20, b"not gzip at all, no.")
    bad_gzip = _WireBody(Socket(garbage, random.Random(1)), chunked=True, length=None, gzipped=True)
    with pytest.raises(urllib3.exceptions.DecodeError):
        list(bad_gzip.blocks())


def test_a_body_cut_mid_chunk_just_ends():
    data = zlib.compress(b"x")  # never mind the format; the body stops half way
    reader = _WireBody(
        Socket(b"%x\r\n%s" % (100, data), random.Random(2)),
        chunked=True,
        length=None,
        gzipped=False,
    )
    assert b"".join(reader.blocks()) == data


def test_over_http_only_the_wanted_events_arrive_and_nothing_is_misread():
    scenario = load_scenario("healthy")
    add_builds(
        scenario,
        [
            {
                "id": 9001,
                "team": "main",
                "pipeline": "app",
                "job": "big",
                "started_ago": 60,
                "steps": [
                    {"get": "repo", "worker": "w-2", "log_bytes": 3_000_000, "log_text": "varied"},
                    {"task": "test", "worker": "w-2", "error": EINTR},
                ],
            }
        ],
    )
    scenario.stream.hold_seconds = 20
    with Simulator(scenario) as sim:
        config = SourceConfig(url=sim.url, username="admin", password="admin-pass")
        with ConcourseClient(config, Log(stream=io.StringIO())) as client:
            every = list(client.build_events(9001, max_bytes=1 << 30))
            wanted = {"error", "selected-worker"}
            stream = client.build_events(9001, max_bytes=1 << 30, events=wanted)
            some = list(stream)
    assert stream.complete
    assert len(every) > 5000
    assert some == [e for e in every if e.type in wanted]
    assert [e.type for e in some] == ["selected-worker", "selected-worker", "error"]
    assert some[-1].data["message"] == EINTR

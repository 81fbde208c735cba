"""Byte-level formats the ATC produces, reproduced so clients meet the real bytes in tests.

Go's `encoding/json` differs from Python's defaults in ways a sloppy client can trip over: it
escapes `<`, `>` and `&` inside strings, writes UTF-8 rather than `\\uXXXX`, and `Encoder.Encode`
appends a newline. SSE framing follows vito/go-sse; tokens follow skymarshal's opaque format.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json(value: Any) -> str:
    """Compact JSON as Go's json.Marshal writes it (HTML-escaped, UTF-8, no spaces)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # These characters can only occur inside JSON strings, so a global replace is exact.
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def go_json_body(value: Any) -> bytes:
    """A response body as json.NewEncoder(w).Encode writes it: compact plus a newline."""
    return (go_json(value) + "\n").encode()


def sse_event(event_id: int, name: str, data: str) -> bytes:
    """One event as go-sse's Event.Write frames it; an empty payload becomes a bare `data`."""
    lines = [f"id: {event_id}", f"event: {name}"]
    if data:
        lines.extend(f"data: {line}" for line in data.split("\n"))
    else:
        lines.append("data")
    return ("\n".join(lines) + "\n\n").encode()


def new_access_token(expiry: int) -> str:
    """skymarshal's opaque token: 20 random bytes + LE uint64 expiry, base64 std, unpadded."""
    raw = os.urandom(20) + struct.pack("<Q", expiry)
    return base64.b64encode(raw).decode().rstrip("=")


def access_token_expiry(token: str) -> int | None:
    """Reads the expiry a client could also read locally; None if the token is not opaque."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except ValueError:
        return None
    if len(raw) != 28:
        return None
    return int(struct.unpack("<Q", raw[20:])[0])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def dex_subject(username: str, connector: str = "local") -> str:
    """Dex encodes (user id, connector id) as a small protobuf; clients see it as `sub`."""
    user = username.encode()
    conn = connector.encode()
    proto = b"\x0a" + bytes([len(user)]) + user + b"\x12" + bytes([len(conn)]) + conn
    return _b64url(proto)


def new_id_token(username: str, issuer: str, expiry: int) -> str:
    """A JWT-shaped id_token. It is never a valid Bearer token, which is the point of having it."""
    header = {"alg": "RS256", "kid": "5a0d1c"}
    claims = {
        "iss": issuer,
        "sub": dex_subject(username),
        "aud": "fly",
        "exp": expiry,
        "iat": int(time.time()),
        "email": username,
        "email_verified": True,
        "name": username,
        "federated_claims": {"connector_id": "local", "user_id": username},
    }
    head = _b64url(json.dumps(header, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_b64url(os.urandom(32))}"

"""Logging for a resource: everything goes to stderr (Concourse shows it), always redacted."""

from __future__ import annotations

import sys
from typing import TextIO

from fleet_guard.redact import Redactor


class Log:
    """Short by default; `debug: true` in `source` adds detail, still redacted."""

    def __init__(
        self, *, debug: bool = False, redactor: Redactor | None = None, stream: TextIO | None = None
    ) -> None:
        self.debug_enabled = debug
        self.redact = redactor or Redactor()
        self._stream = stream

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        # A lone surrogate (from `\ud800` in a pipeline's JSON) cannot be encoded: escape it.
        shown = self.redact(text).encode("utf-8", "backslashreplace").decode("utf-8")
        stream.write(shown + "\n")
        stream.flush()

    def info(self, message: str) -> None:
        self._write(message)

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self._write(f"debug: {message}")

"""Text for a terminal: tables that fit its width, and colour only where a person sees it.

Colour is for a TTY only (never in a pipe, a file or cron mail) and off with `NO_COLOR` or
`TERM=dumb`, as https://no-color.org asks. Tables fit 80 columns by default: the widest
column that can give gives first, its cells shortened with "…".
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

_RESET = "\033[0m"
_CODES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}

# The colour a status or worker state is shown in, when colour is on.
TONE = {
    "affected": "red",
    "matched": "red",
    "evidence-only": "red",
    "incomplete": "yellow",
    "possible": "yellow",
    "stalled": "red",
    "landing": "yellow",
    "retiring": "yellow",
    "landed": "dim",
    "healthy": "green",
    "running": "green",
}

MIN_WIDTH = 40


def wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def width_of(stream: TextIO) -> int:
    """The terminal's width on a TTY; 80 anywhere else, so piped output is stable."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    return 80


@dataclass(frozen=True)
class Style:
    colour: bool = False

    def paint(self, text: str, tone: str | None = None) -> str:
        """`text` in the colour its tone names (or TONE[text]), when colour is on."""
        name = tone or TONE.get(text)
        if not self.colour or not name or name not in _CODES:
            return text
        return f"\033[{_CODES[name]}m{text}{_RESET}"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int = 80,
    style: Style | None = None,
    tones: Sequence[int] = (),
) -> str:
    """Columns two spaces apart, no wider than `width`; `tones` are the column indexes whose
    cells are painted by their value (a state, an outcome)."""
    style = style or Style()
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    _fit(widths, [len(h) for h in headers], width - 2 * (len(headers) - 1))
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, cell in enumerate(row):
            text = _shorten(cell, widths[i])
            pad = " " * (widths[i] - len(text))
            if n == 0:
                text = style.paint(text, "bold")
            elif i in tones:
                text = style.paint(text)
            parts.append(text + pad)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _fit(widths: list[int], floors: list[int], room: int) -> None:
    """Narrows the widest columns, one character at a time, until the row fits in `room`."""
    floors = [max(f, 6) for f in floors]
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i] - floors[i])
        if widths[widest] <= floors[widest]:
            return
        widths[widest] -= 1


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"

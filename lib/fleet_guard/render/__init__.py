"""What people read, one module per medium.

- `summary`: summary.md, the Markdown report (get, `fleet-guard scan`, the demo);
- `text`: plain-text lines for a build log (get and put);
- `chat`: `headline` and `message.md`, for a notification step;
- `metrics`: `metrics.prom`, OpenMetrics text;
- `explain`: the condition-by-condition text of `fleet-guard explain`;
- `view`: what all of them share (findings per advisory, outcome words, times).

The names below are the package's public surface, so `from fleet_guard.render import ...`
keeps working wherever a module lives inside it.
"""

from fleet_guard.render.chat import render_headline, render_message
from fleet_guard.render.explain import render_explanation
from fleet_guard.render.metrics import render_metrics
from fleet_guard.render.summary import render_markdown
from fleet_guard.render.text import render_text

__all__ = [
    "render_explanation",
    "render_headline",
    "render_markdown",
    "render_message",
    "render_metrics",
    "render_text",
]

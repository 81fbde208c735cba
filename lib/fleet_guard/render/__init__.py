"""What people read, one module per medium.

- `summary`: summary.md, the Markdown report (get, `fleet-guard scan`, the demo);
- `explain`: the condition-by-condition text of `fleet-guard explain`.

The names below are the package's public surface, so `from fleet_guard.render import ...`
keeps working wherever a module lives inside it.
"""

from fleet_guard.render.explain import render_explanation
from fleet_guard.render.summary import render_markdown

__all__ = ["render_explanation", "render_markdown"]

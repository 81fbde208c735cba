"""The one error a scenario author sees: it names the file part that is wrong."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario file does not follow the documented format (see scenarios/README.md)."""

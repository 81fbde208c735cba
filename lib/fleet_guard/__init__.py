"""Fleet Guard: a Concourse resource type that watches the worker fleet for known-bad software."""

__version__ = "0.1.0"

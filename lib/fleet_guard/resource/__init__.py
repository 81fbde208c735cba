"""The Concourse resource protocol: one module per step, one runner that owns stdin/stdout."""

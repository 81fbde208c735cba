"""Known-bad combinations: the rule model, the built-in data and the engine that applies them."""

"""Training recipes, one JSON file per model family (``<family>.json``); loaded by ``core.engine.trainer``."""

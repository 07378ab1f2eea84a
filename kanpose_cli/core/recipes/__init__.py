"""Training recipes, one JSON file per model family (``<family>.json``), loaded by
:mod:`kanpose_cli.core.engine.train.config`: only what differs from the config defaults, plus per-variant
``variants`` sections."""

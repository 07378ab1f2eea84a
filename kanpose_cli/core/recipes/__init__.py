"""Training recipes, one JSON file per model family (``<family>.json``), loaded by
:mod:`kanpose_cli.core.training.config`: only what differs from the config defaults, plus per-variant
``variants`` sections."""

"""Per-model facts for ``kanpose models`` (params, MACs, weights), with MACs cached in the kanpose cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from kanpose_cli import __version__
from kanpose_cli.core.io import write_json_atomic
from kanpose_cli.core.models.complexity import count_macs, count_params
from kanpose_cli.core.models.registry import create_model, get_spec, list_models, shipped_weights
from kanpose_cli.core.paths import cache_dir


MAC_RULE = "mac-rule-2"  # bump when complexity.py's counting rule changes, so cached figures are recomputed


def _key(name: str) -> str:
    spec = get_spec(name)
    blob = json.dumps([__version__, MAC_RULE, name, dataclasses.asdict(spec.config)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_complexity(name: str, use_cache: bool = True) -> tuple[int, int]:
    """``(params, MACs)`` of a registered model at its input size (see ``complexity.py`` for the convention)."""
    path = cache_dir() / "model_complexity.json"
    try:
        cache = json.loads(path.read_text()) if use_cache and path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    key = _key(name)
    if key in cache:
        return tuple(cache[key])
    model = create_model(name)
    result = (count_params(model), count_macs(model, model.input_size))
    cache[key] = list(result)
    try:
        write_json_atomic(path, cache, indent=None)
    except OSError:
        pass
    return result


def hub_summary(name: str) -> str:
    """Short text of a model's published weights for tables: ``coco 75.8 · plus 77.0`` (tag and reported COCO AP;
    the first is the default), ``init: vitpose-s`` for models that start from another model's, or ``–``."""
    spec = get_spec(name)
    if spec.published:
        return " · ".join(f"{w.tag} {w.ap}" if w.ap is not None else w.tag for w in spec.published)
    return f"init: {spec.init_from}" if spec.init_from else "–"


def model_rows(pattern: str | None = None) -> list[dict]:
    """One dict per registered model whose name matches ``pattern`` (a substring, or a shell pattern such as
    ``vitpose-*``): name, family, input size, exact params and MACs, paper numbers, shipped weights, published
    weights (``hub``: one record per :class:`~kanpose_cli.core.models.registry.PublishedWeights`) and
    ``init_from``."""
    rows = []
    for name in list_models(pattern=pattern):
        spec = get_spec(name)
        params, macs = model_complexity(name)
        shipped = shipped_weights(name)
        rows.append({"model": name, "family": spec.family, "input_size": list(spec.input_size), "params": params,
                     "macs": macs, "paper": spec.paper, "weights": shipped.name if shipped else "none",
                     "hub": [w.record() for w in spec.published], "init_from": spec.init_from,
                     "description": spec.description})
    return rows

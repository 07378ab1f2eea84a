"""The one dict -> dataclass loader (core/config_io.py) behind the training config, recipes, ``--set`` and the model
configs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kanpose_cli.core.config_io import coerce, from_dict, to_plain
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.models.registry import create_model


@dataclass
class Inner:
    size: tuple[int, int] = (256, 192)
    rate: float = 0.5
    keys: tuple[str, ...] = ("a",)


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    steps: list[int] = field(default_factory=list)
    flag: bool = False
    limit: int | None = None
    anything: int | str | None = None


def test_nested_build_with_coercion_and_defaults():
    cfg = from_dict(Outer, {"name": "x", "inner": {"size": [128, 96], "rate": 1}, "maybe": {}, "steps": [1.0, 2],
                            "limit": None, "anything": "all"})
    assert cfg.inner == Inner((128, 96), 1.0, ("a",)) and isinstance(cfg.inner.rate, float)
    assert cfg.maybe == Inner() and cfg.steps == [1, 2] and isinstance(cfg.steps[0], int)
    assert cfg.limit is None and cfg.anything == "all" and cfg.flag is False
    assert to_plain(cfg) == {"name": "x", "inner": {"size": [128, 96], "rate": 1.0, "keys": ["a"]},
                             "maybe": {"size": [256, 192], "rate": 0.5, "keys": ["a"]}, "steps": [1, 2],
                             "flag": False, "limit": None, "anything": "all"}
    assert from_dict(Outer, to_plain(cfg)) == cfg


@pytest.mark.parametrize("values, message", [
    ({"name": "x", "inner": {"rat": 1}}, "unknown config key 'inner.rat'; did you mean inner.rate?"),
    ({"name": "x", "zzz": 1}, "unknown config key 'zzz'; known: name, inner, maybe, steps, flag, limit, anything"),
    ({}, "config: missing name"),
    ({"name": "x", "flag": 1}, "config key flag: expected true or false, got 1"),
    ({"name": "x", "limit": 2.5}, "config key limit: expected an integer, got 2.5"),
    ({"name": "x", "inner": {"rate": float("nan")}}, "config key inner.rate: expected a number"),
    ({"name": "x", "inner": {"size": [1]}}, r"config key inner.size: expected 2 values, got \[1\]"),
    ({"name": "x", "inner": {"keys": [1]}}, r"config key inner.keys\[0\]: expected a string, got 1"),
    ({"name": "x", "inner": None}, "config key inner: null is not allowed"),
    ({"name": "x", "inner": 3}, "inner: expected a mapping, got 3"),
    ({"name": "x", "steps": "1,2"}, "config key steps: expected a list"),
])
def test_errors_name_the_key(values, message):
    with pytest.raises(UsageError, match=message):
        from_dict(Outer, values)


def test_coerce_leaves_unions_to_post_init():
    assert coerce("k", 3, int | str | None) == 3 and coerce("k", "full", int | str | None) == "full"


def test_model_overrides_go_through_the_same_loader():
    m = create_model("amfacpose-r18-256x192", overrides={"input_size": [128, 96], "rkan_stages": [4],
                                                         "head_hidden": 16})
    assert m.config.input_size == (128, 96) and m.config.rkan_stages == (4,) and m.input_size == (128, 96)
    with pytest.raises(UsageError, match="model amfacpose-r18-256x192: unknown config key 'afpnn'; did you mean afpn"):
        create_model("amfacpose-r18-256x192", overrides={"afpnn": False})
    with pytest.raises(UsageError, match="config key maxpool: expected true or false"):
        create_model("amfacpose-r18-256x192", overrides={"maxpool": "yes"})

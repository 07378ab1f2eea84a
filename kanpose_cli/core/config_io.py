"""Plain dicts (JSON, recipes, ``--set`` values, model config overrides) to typed dataclasses and back.

One loader for every config of kanpose: the training config (:class:`~kanpose_cli.core.training.config.TrainConfig`,
its recipes and ``--set key=value``) and the model family configs (``create_model(name, overrides=...)``, the config
stored in a checkpoint). :func:`from_dict` builds nested dataclasses from the field type hints, coerces JSON values
to them (lists to tuples, integers to floats) and rejects what does not fit with a one-line
:class:`~kanpose_cli.core.errors.UsageError` naming the key; :func:`to_plain` is its inverse. Validation of values
(allowed choices, ranges) stays in each dataclass's ``__post_init__``.

Types understood: ``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``,
``list[X]``, ``dict``, nested dataclasses; any other annotation (``Any``, ``int | str | None``, ``Literal``) takes
the value as it is and leaves the check to ``__post_init__``.

It sits at the bottom of ``kanpose_cli.core``; :mod:`~kanpose_cli.core.errors` is the only kanpose module it imports.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.registry import close_matches

T = TypeVar("T")


def to_plain(value):
    """JSON types, recursively: dataclasses become dicts, tuples become lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def optional(tp) -> tuple[Any, bool]:
    """``(X, True)`` for the annotation ``X | None`` (``Optional[X]``), else ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def dataclass_in(tp):
    """The dataclass of an annotation ``C`` or ``C | None``, else None."""
    inner, _ = optional(tp)
    return inner if dataclasses.is_dataclass(inner) else None


def from_dict(cls: type[T], values, path: str = "") -> T:
    """Build the dataclass ``cls`` from a (partial) dict: missing keys take the field defaults, values are coerced
    to the field types (:func:`coerce`), nested dataclasses are built from nested dicts.

    Args:
        cls: a dataclass type. values: a dict (or already a ``cls``, returned as it is).
        path: dotted prefix of ``values`` in the enclosing config (``"optim."``), for the messages.

    Returns:
        A ``cls`` instance (its ``__post_init__`` ran).

    Raises:
        UsageError: not a mapping; an unknown key (``unknown config key 'optim.lrr'; did you mean optim.lr?``, or
            the list of known keys when nothing is close); a required field missing; a value of the wrong type.
    """
    name = path.rstrip(".") or "config"
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise UsageError(f"{name}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = [k for k in values if k not in names]
    if unknown:
        close = close_matches(unknown[0], names, n=1)  # case-insensitive, as every name lookup
        raise UsageError(f"unknown config key {path + unknown[0]!r}"
                         + (f"; did you mean {path + close[0]}?" if close else f"; known: {', '.join(names)}"))
    missing = [f.name for f in fields if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UsageError(f"{name}: missing {', '.join(missing)}")
    return cls(**{k: coerce(path + k, v, hints[k]) for k, v in values.items()})


def coerce(key: str, value, tp):
    """``value`` (JSON types: what ``json.loads`` gives for a recipe or a ``--set`` value) as the annotation ``tp``.

    Lists become tuples (``tuple[int, int]``, ``tuple[float, ...]``) and integers floats; a dict for a dataclass
    field goes through :func:`from_dict`; ``None`` only where the annotation allows it.

    Raises:
        UsageError: naming ``key``: null where not allowed, a non-list for a list, a wrong tuple length, a
            non-bool for a bool, a non-integer for an int, a non-finite or non-number for a float, a non-string for
            a str, a non-mapping for a dict or dataclass.
    """
    tp, nullable = optional(tp)
    if value is None:
        if nullable:
            return None
        raise UsageError(f"config key {key}: null is not allowed")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"config key {key}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
        if origin is tuple:
            if len(value) != len(args):
                raise UsageError(f"config key {key}: expected {len(args)} values, got {value!r}")
            return tuple(coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
        return [coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)] if args else list(value)
    if tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"config key {key}: expected a list, got {value!r}")
        return tuple(value)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise UsageError(f"config key {key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise UsageError(f"config key {key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise UsageError(f"config key {key}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"config key {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UsageError(f"config key {key}: expected a string, got {value!r}")
        return value
    return value

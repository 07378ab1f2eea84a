"""The keypoint set of a dataset as users have it, and how one set's keypoints land on another's.

A training or evaluation set names its keypoints in its own file (a COCO ``categories[0]``, an ultralytics
``data.yaml``) or not at all; the user may name a set (``--keypoint-set NAME|FILE``). This module turns each of these
into a :class:`~kanpose_cli.core.keypoints.KeypointSet` and decides how a source's keypoints reach the model's set:

- :func:`resolve_keypoint_set`: ``--keypoint-set`` (a built-in name, or a ``.json`` / ``.yaml`` file in the
  :meth:`KeypointSet.to_dict` form). The one call site of the keypoint-set loader.
- :func:`set_from_names`: a set from a file's keypoint names: the built-in set with the same names (so a COCO person
  file is ``coco17``, with COCO's OKS sigmas), else a new set whose flip pairs pair each ``left…`` name with its
  ``right…`` name, with ultralytics' 1/K OKS sigmas (``ultralytics/utils/metrics.py``: sets without published
  sigmas use ``1 / K``).
- :func:`source_mapping`: the same keypoints (equal names, or positionally when the source's names are unknown or
  the user declared the set), a declared :class:`~kanpose_cli.core.keypoints.JointMapping` (mmpose's
  ``KeypointConverter``, as data), or a one-line error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import KEYPOINT_SETS, JointMapping, KeypointSet, get_joint_mapping, get_keypoint_set

GENERIC_PREFIX = "kpt_"
"""Names given to keypoints a file does not name: ``kpt_0`` … ``kpt_{K-1}``."""


def builtin_keypoint_sets() -> list[KeypointSet]:
    """The keypoint sets kanpose ships (``coco17``, ``lsp14`` …)."""
    return list(KEYPOINT_SETS.values())


def resolve_keypoint_set(spec: str | Path) -> KeypointSet:
    """``--keypoint-set``: a built-in set's name, or a ``.json`` / ``.yaml`` / ``.yml`` file holding one set in the
    :meth:`KeypointSet.to_dict` form (``name``, ``names``; optional ``flip_index``, ``skeleton`` 0-based,
    ``sigmas``, ``upper_body``).

    Raises:
        UsageError: an unknown name. InputError: a missing, unreadable or malformed file (one line naming it and
            the entry).
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        try:
            return get_keypoint_set(text)
        except KeyError as exc:
            raise UsageError(f"--keypoint-set: {exc.args[0]} (or give a .json / .yaml file)") from None
    if not path.is_file():
        raise InputError(f"keypoint-set file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read keypoint-set file {path}: {exc}") from None
    data = parse_json_or_yaml(raw, path)
    try:
        return KeypointSet.from_dict(data, where=str(path))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_json_or_yaml(text: str, path: Path):
    """The content of a ``.json`` file (``json``) or of any other file (YAML, ``yaml.safe_load``: no Python objects).

    Raises:
        InputError: not valid JSON / YAML (one line naming ``path`` and the parser's first line).
    """
    import yaml

    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InputError(f"{path} is not valid {kind}: {first}") from None


def _norm(name: str) -> str:
    """A keypoint name compared loosely: lower case, spaces and hyphens as underscores (``Right Shoulder`` ==
    ``right_shoulder``)."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def match_builtin(names) -> KeypointSet | None:
    """The built-in set whose keypoint names equal ``names`` (compared by :func:`_norm`, in order), or None."""
    key = tuple(_norm(n) for n in names)
    for kset in builtin_keypoint_sets():
        if tuple(_norm(n) for n in kset.names) == key:
            return kset
    return None


_SIDE = re.compile(r"left|right", re.IGNORECASE)
_SIDE_LETTER = re.compile(r"(^|[_\-\s.])([lrLR])(?=$|[_\-\s.])")


def _mirror_name(name: str) -> str:
    """``name`` with its side swapped: ``left``↔``right`` anywhere (case kept), or a lone ``l``/``r`` token
    (``l_knee``, ``knee_R``)."""
    def swap(m):
        word = m.group(0)
        other = "right" if word.lower() == "left" else "left"
        return other.upper() if word.isupper() else other.capitalize() if word[0].isupper() else other

    if _SIDE.search(name):
        return _SIDE.sub(swap, name)

    def swap_letter(m):
        c = m.group(2)
        return m.group(1) + {"l": "r", "r": "l", "L": "R", "R": "L"}[c]

    return _SIDE_LETTER.sub(swap_letter, name)


def flip_index_from_names(names) -> tuple[int, ...]:
    """The flip index of a set from its names: keypoint ``k`` becomes the keypoint named like ``k`` with left and
    right swapped (:func:`_mirror_name`), or stays ``k`` when no such name exists. Always an involution."""
    index = {_norm(n): i for i, n in enumerate(names)}
    flip = [index.get(_norm(_mirror_name(n)), i) for i, n in enumerate(names)]
    # keep only symmetric pairs (a name list such as [left_a, right_a, right_a2] cannot break the involution)
    return tuple(j if flip[j] == i else i for i, j in enumerate(flip))


def generic_names(k: int) -> tuple[str, ...]:
    """``kpt_0`` … ``kpt_{k-1}``: the names of keypoints a file does not name."""
    return tuple(f"{GENERIC_PREFIX}{i}" for i in range(k))


def has_generic_names(kset: KeypointSet) -> bool:
    """True for a set whose names are :func:`generic_names` (its file named no keypoint)."""
    return kset.names == generic_names(kset.num_keypoints)


def set_from_names(name: str, names, skeleton=None, flip_index=None, where: str = "keypoint set") -> KeypointSet:
    """A keypoint set from a dataset file's description.

    Args:
        name: the set's name when it is not a built-in one (e.g. ``hand21``).
        names: K keypoint names (None or empty: :func:`generic_names` of ``len(flip_index)``).
        skeleton: 0-based links (drawing only); links naming keypoints beyond K are dropped (CrowdPose's file, for
            one, carries COCO's 17-keypoint skeleton with its 14 keypoints).
        flip_index: the file's own flip index (ultralytics' ``flip_idx``); default from the names
            (:func:`flip_index_from_names`).

    Returns:
        The built-in set with the same names when there is one (its flip pairs, skeleton and OKS sigmas), else a new
        set with OKS sigmas 1/K and every keypoint in ``upper_body`` (half-body augmentation off).

    Raises:
        InputError: a malformed description (one line naming ``where``).
    """
    if names:
        builtin = match_builtin(names)
        if builtin is not None and (flip_index is None or tuple(flip_index) == builtin.flip_index):
            return builtin
    k = len(names) if names else len(flip_index or ())
    names = tuple(str(n) for n in names) if names else generic_names(k)
    links = []
    for link in skeleton or []:
        try:
            a, b = (int(v) for v in link)
        except (TypeError, ValueError):
            raise InputError(f"{where}: skeleton link {link!r} is not a pair of keypoint indices") from None
        if 0 <= a < k and 0 <= b < k:
            links.append([a, b])
    d = {"name": name, "names": list(names), "skeleton": links,
         "flip_index": list(flip_index) if flip_index is not None else list(flip_index_from_names(names))}
    try:
        return KeypointSet.from_dict(d, where=where)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def source_mapping(source: KeypointSet, target: KeypointSet, where: str,
                   positional: bool = False) -> JointMapping | None:
    """How keypoints of ``source`` become keypoints of ``target``.

    Args:
        source: the set a dataset file describes. target: the model's set.
        where: the file, for the error message.
        positional: take the source's keypoints as the target's, in order, when both have K keypoints (the user
            declared the set with ``--keypoint-set``).

    Returns:
        None when the keypoints are the same (equal names by :func:`_norm`; or equal K and the source names none,
        or ``positional``), else the declared :class:`JointMapping` from ``source.name`` to ``target.name``.

    Raises:
        InputError: neither the same keypoints nor a declared mapping (one line).
    """
    same_k = source.num_keypoints == target.num_keypoints
    if same_k and (positional or has_generic_names(source)
                   or tuple(map(_norm, source.names)) == tuple(map(_norm, target.names))):
        return None
    try:
        return get_joint_mapping(source.name, target.name)
    except KeyError:
        hint = ("; give --keypoint-set when the file's keypoints are the set's under other names" if same_k
                else "; train on one keypoint set")
        raise InputError(f"{where}: its {source.num_keypoints} keypoints ({source.name}) are not the model's "
                         f"{target.num_keypoints} ({target.name}) and no joint mapping from {source.name} to "
                         f"{target.name} is declared{hint}") from None


def apply_mapping(keypoints: np.ndarray, mapping: JointMapping | None, target: KeypointSet) -> np.ndarray:
    """``keypoints`` (..., K_src, 3) ``x, y, v`` on the target set (unchanged when ``mapping`` is None; unmapped
    target joints ``(0, 0, 0)``, unlabelled)."""
    if mapping is None:
        return np.asarray(keypoints, dtype=np.float64)
    return mapping.apply(keypoints, target.num_keypoints)

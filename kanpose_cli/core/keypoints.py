"""Keypoint sets as data: names, flip index, skeleton, OKS sigmas, upper body; joint mappings between sets.

:class:`KeypointSet` describes the K keypoints a model predicts. The built-in sets are JSON files in
``kanpose_cli/core/keypoint_sets/`` (one per set, the :meth:`KeypointSet.to_dict` form plus provenance fields), read
when this module is imported into :data:`KEYPOINT_SETS`: ``coco17``, ``lsp14``, ``mpii16``, ``aic14``,
``crowdpose14``, ``halpe26``, ``ap10k17`` (animals), ``onehand21`` (hand), ``wflw98`` (face) and
``coco_wholebody133``. Set names are lower case, words joined by ``_``, ending in K; lookups ignore case and read
``-`` as ``_`` (``COCO-WholeBody133`` finds ``coco_wholebody133``). Names, flip pairs, skeletons and OKS sigmas
restate open-mmlab/mmpose ``configs/_base_/datasets/*.py`` (each file's ``"source"`` says which, and at which
commit); sets without published sigmas use ultralytics' ``1/K`` rule and say so in ``"sigmas_source"``.

:func:`load_keypoint_set` reads what a user names (``--keypoint-set``): a built-in name, a keypoint-set file (JSON
or YAML), a COCO annotation file (:func:`keypoint_set_from_coco`) or an ultralytics YOLO-pose dataset YAML
(:func:`keypoint_set_from_yolo`). These, and the dataset readers, make a set from a file's keypoint names only
through :func:`keypoint_set_from_names` (a built-in set whole when the names are its, else a new set with flip pairs
from the left/right names, :func:`flip_index_from_names`, and OKS sigmas ``1/K``); names are compared only through
:func:`normalise_keypoint_name`.
:class:`JointMapping` (:func:`get_joint_mapping`) declares how the joints of one set land on another
(``keypoint_sets/joint_mappings.json``).

It sits at the bottom of ``kanpose_cli.core`` and imports nothing from kanpose but
:mod:`~kanpose_cli.core.errors` (numpy, and PyYAML when a YAML file is read), so results, models, codecs, data,
drawing (by duck typing) and the task packages can all use it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError, UsageError


@dataclass(frozen=True)
class KeypointSet:
    """A keypoint definition.

    Attributes:
        name: identifier stored in checkpoints and output JSON (e.g. ``"coco17"``).
        names: K keypoint names in model-output order.
        flip_index: permutation of length K; ``flip_index[k]`` is the keypoint that ``k`` becomes in a
            horizontally mirrored image. It is an involution.
        skeleton: links as 0-based index pairs, for drawing.
        sigmas: K per-keypoint OKS sigmas (COCO), used by OKS-NMS and COCOeval.
        upper_body: indices used by half-body augmentation as the upper body.
    """

    name: str
    names: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    upper_body: tuple[int, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def lower_body(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_keypoints) if i not in self.upper_body)

    def sides(self) -> tuple[str, ...]:
        """``"left"``, ``"right"`` or ``"centre"`` per keypoint, from the flip index (used to colour drawings).

        Keypoint ``k`` is ``"centre"`` when ``flip_index[k] == k``. Of a flip pair, the ``"left"`` one is the one
        whose name says left (:func:`name_side`: ``left``, a word ``l``) or whose partner's name says right, else the
        lower index. The side is the person's (or animal's) own, as the names say, not the image's.
        """
        out = []
        for k, j in enumerate(self.flip_index):
            if j == k:
                out.append("centre")
                continue
            mine, theirs = name_side(self.names[k]), name_side(self.names[j])
            if mine != theirs and (mine is not None or theirs is not None):
                left = mine == "left" or theirs == "right"
            else:
                left = k < j
            out.append("left" if left else "right")
        return tuple(out)

    def sigmas_array(self) -> np.ndarray:
        """OKS sigmas as a float64 array of shape (K,)."""
        return np.asarray(self.sigmas, dtype=np.float64)

    def to_dict(self) -> dict:
        """JSON-able definition, the form stored in checkpoints, ONNX metadata and keypoint-set files;
        :meth:`from_dict` reads it back to an equal set."""
        return {
            "name": self.name,
            "names": list(self.names),
            "flip_index": list(self.flip_index),
            "skeleton": [list(p) for p in self.skeleton],
            "sigmas": list(self.sigmas),
            "upper_body": list(self.upper_body),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "keypoint set") -> "KeypointSet":
        """A set from its :meth:`to_dict` form (also a hand-written keypoint-set file).

        Required: ``name``, ``names`` (K strings). Optional: ``flip_index`` (default: identity, no left/right),
        ``skeleton`` (default none), ``sigmas`` (default ``1/K`` each, ultralytics' rule for sets without published
        OKS sigmas), ``upper_body`` (default: all keypoints).

        Raises:
            ValueError: one line naming ``where`` and the offending entry (wrong length, index out of range,
                a flip index that is not an involution, a non-positive sigma).
        """
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a mapping with 'name' and 'names', got {type(d).__name__}")
        names = d.get("names")
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: 'names' must be a non-empty list of keypoint names")
        k = len(names)
        if len(set(names)) != k:
            dup = next(n for n in names if list(names).count(n) > 1)
            raise ValueError(f"{where}: keypoint name {dup!r} appears twice in 'names'")

        def indices(key, default, length=None):
            val = d.get(key, default)
            if val is None:
                val = default
            try:
                out = tuple(int(v) for v in val)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: '{key}' must be a list of integers") from None
            if length is not None and len(out) != length:
                raise ValueError(f"{where}: '{key}' has {len(out)} entries, expected {length} (one per keypoint)")
            bad = [v for v in out if not 0 <= v < k]
            if bad:
                raise ValueError(f"{where}: '{key}' index {bad[0]} is out of range for {k} keypoints")
            return out

        flip = indices("flip_index", range(k), k)
        for i, j in enumerate(flip):
            if flip[j] != i:
                raise ValueError(f"{where}: 'flip_index' is not symmetric: {i} -> {j} but {j} -> {flip[j]}")
        skeleton_raw = d.get("skeleton") or []
        try:
            skeleton = tuple((int(a), int(b)) for a, b in skeleton_raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: 'skeleton' must be a list of [a, b] index pairs") from None
        for a, b in skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"{where}: 'skeleton' link [{a}, {b}] is out of range for {k} keypoints")
        sigmas_raw = d.get("sigmas")
        if sigmas_raw is None:
            sigmas = tuple(1.0 / k for _ in range(k))
        else:
            try:
                sigmas = tuple(float(v) for v in sigmas_raw)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: 'sigmas' must be a list of numbers") from None
            if len(sigmas) != k:
                raise ValueError(f"{where}: 'sigmas' has {len(sigmas)} entries, expected {k} (one per keypoint)")
            if any(not (s > 0) for s in sigmas):
                raise ValueError(f"{where}: 'sigmas' must all be positive")
        upper = indices("upper_body", range(k))
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: 'name' must be a non-empty string")
        return cls(name=name, names=tuple(names), flip_index=flip, skeleton=skeleton, sigmas=sigmas,
                   upper_body=upper)


# ---------------------------------------------------------------------------------------------------------------------
# Built-in sets: one JSON file per set in keypoint_sets/ (the to_dict form plus provenance fields that from_dict
# ignores: "dataset", "source", "names_source", "sigmas_source", "upper_body_source").

SET_DIR = Path(__file__).resolve().with_name("keypoint_sets")
_MAPPINGS_FILE = "joint_mappings.json"


def _set_key(name: str) -> str:
    """Lookup key of a set name: lower case, ``-`` read as ``_`` (``COCO-WholeBody133`` finds ``coco_wholebody133``)."""
    return str(name).strip().lower().replace("-", "_")


def _read_builtin_sets() -> dict[str, KeypointSet]:
    sets = {}
    for path in sorted(SET_DIR.glob("*.json")):
        if path.name == _MAPPINGS_FILE:
            continue
        kset = KeypointSet.from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))
        if kset.name != path.stem or _set_key(kset.name) != kset.name:
            raise ValueError(f"{path}: a built-in set's name must be its file name in lower case, got {kset.name!r}")
        sets[kset.name] = kset
    return sets


KEYPOINT_SETS: dict[str, KeypointSet] = _read_builtin_sets()
"""The built-in sets by name, read from ``keypoint_sets/*.json`` when this module is imported."""

COCO17: KeypointSet = KEYPOINT_SETS["coco17"]
"""COCO 2017 person keypoints (17), with the COCO OKS sigmas."""

LSP14: KeypointSet = KEYPOINT_SETS["lsp14"]
"""Leeds Sports Pose / LSP-Extended (14 joints, ``joints.mat`` order); sigmas of the matching COCO joints."""


@dataclass(frozen=True)
class JointMapping:
    """How the joints of one keypoint set land on another (mmpose's ``KeypointConverter``, as data).

    Attributes:
        source, target: the two :class:`KeypointSet` names.
        pairs: ``(source index, target index)`` pairs; target joints not named here do not exist in the source
            and get target weight 0 in training.
    """

    source: str
    target: str
    pairs: tuple[tuple[int, int], ...]

    def apply(self, keypoints: np.ndarray, num_target: int) -> np.ndarray:
        """Map source keypoints (N, K_src, 3) or (K_src, 3) ``x, y, v`` to the target set: same leading shape,
        K_tgt rows; unmapped target joints are ``(0, 0, 0)`` (unlabelled)."""
        kp = np.asarray(keypoints, dtype=np.float64)
        out = np.zeros(kp.shape[:-2] + (num_target, 3), dtype=np.float64)
        src = [s for s, _ in self.pairs]
        tgt = [t for _, t in self.pairs]
        out[..., tgt, :] = kp[..., src, :]
        return out


def _read_joint_mappings() -> dict[tuple[str, str], JointMapping]:
    data = json.loads((SET_DIR / _MAPPINGS_FILE).read_text(encoding="utf-8"))
    out = {}
    for entry in data["mappings"]:
        mapping = JointMapping(source=entry["source"], target=entry["target"],
                               pairs=tuple((int(s), int(t)) for s, t in entry["pairs"]))
        out[(mapping.source, mapping.target)] = mapping
    return out


JOINT_MAPPINGS: dict[tuple[str, str], JointMapping] = _read_joint_mappings()
"""Declared mappings ``(source name, target name) -> JointMapping``, read from ``keypoint_sets/joint_mappings.json``
(pairs of joints of the same name: COCO-17 to and from LSP-14, MPII-16, CrowdPose-14 and AIC-14 limbs; the COCO
part of Halpe-26 and COCO-WholeBody-133)."""

# LSP 14 -> COCO 17: the 12 limb joints (both sets are person-centric: "right" is the person's right).
LSP14_TO_COCO17: JointMapping = JOINT_MAPPINGS[("lsp14", "coco17")]


def get_joint_mapping(source: str, target: str) -> JointMapping:
    """The declared mapping from keypoint set ``source`` to ``target`` (names as in :func:`get_keypoint_set`);
    raises ``KeyError`` if there is none."""
    try:
        return JOINT_MAPPINGS[(_set_key(source), _set_key(target))]
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in JOINT_MAPPINGS)
        raise KeyError(f"no joint mapping from {source!r} to {target!r}; declared: {known}") from None


def _close_set_names(name: str) -> list[str]:
    return difflib.get_close_matches(_set_key(name), list(KEYPOINT_SETS), n=3, cutoff=0.6)


def get_keypoint_set(name: str) -> KeypointSet:
    """A built-in keypoint set by name, ignoring case and reading ``-`` as ``_``.

    Raises:
        KeyError: unknown name; the message names the closest built-in names, or lists them all.
    """
    try:
        return KEYPOINT_SETS[_set_key(name)]
    except KeyError:
        close = _close_set_names(name)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(KEYPOINT_SETS)}"
        raise KeyError(f"unknown keypoint set {name!r}; {hint}") from None


# ---------------------------------------------------------------------------------------------------------------------
# Sets from users' files: the one place that turns a dataset's description (COCO categories, ultralytics YAML,
# keypoint-set file, bare names) into a KeypointSet.

_SEPARATORS = re.compile(r"[^0-9a-z]+")

GENERIC_PREFIX = "kpt_"
"""Prefix of the names given to keypoints a file does not name: ``kpt_0`` ... ``kpt_{K-1}``."""


def generic_names(k: int) -> tuple[str, ...]:
    """``kpt_0`` ... ``kpt_{k-1}``: the names of the ``k`` keypoints of a file that names none."""
    return tuple(f"{GENERIC_PREFIX}{i}" for i in range(k))


def has_generic_names(kset: KeypointSet) -> bool:
    """True for a set whose names are :func:`generic_names` (its file named no keypoint)."""
    return kset.names == generic_names(kset.num_keypoints)


def normalise_keypoint_name(name: str) -> str:
    """A keypoint name for comparison: lower case, every run of other characters one ``_``, none at the ends
    (``"Right Shoulder"`` -> ``"right_shoulder"``, ``"kpt-0"`` -> ``"kpt_0"``). Every comparison of keypoint names
    (built-in set matching, flip pairs, a dataset's keypoints against a model's) goes through it."""
    return _SEPARATORS.sub("_", str(name).strip().lower()).strip("_")


def name_side(name: str) -> str | None:
    """``"left"``, ``"right"`` or None: which side a keypoint name says it is on. ``left``/``right`` anywhere in the
    name (``left_eye``, ``LeftEye``, ``front_left_paw``), else a word ``l``/``r`` (``L_Eye``, ``r-knee``, ``hip_l``);
    None when it says neither or both."""
    n = normalise_keypoint_name(name)
    has_left, has_right = "left" in n, "right" in n
    if has_left != has_right:
        return "left" if has_left else "right"
    if has_left:
        return None
    words = n.split("_")
    has_left, has_right = "l" in words, "r" in words
    if has_left != has_right:
        return "left" if has_left else "right"
    return None


def _mirror_name(n: str) -> str | None:
    """The normalised name of the mirror keypoint of normalised name ``n`` (left <-> right, word l <-> r), or None."""
    swapped = re.sub("left|right", lambda m: "right" if m.group(0) == "left" else "left", n)
    if swapped != n:
        return swapped
    words = n.split("_")
    flipped = [{"l": "r", "r": "l"}.get(w, w) for w in words]
    return "_".join(flipped) if flipped != words else None


def flip_index_from_names(names) -> tuple[int, ...]:
    """A flip index inferred from keypoint names: ``k`` and ``j`` swap when their names differ only by left/right
    (``left_eye``/``right_eye``, ``Left Eye``/``Right Eye``, ``LeftEye``/``RightEye``, ``L_Eye``/``R_Eye``,
    ``hip_l``/``hip_r``; compared by :func:`normalise_keypoint_name`); every other keypoint maps to itself
    (``leftover``, ``cleft``, a ``left_x`` without ``right_x``). Returns a permutation of ``range(len(names))`` that
    is an involution."""
    norm = [normalise_keypoint_name(n) for n in names]
    index = {}
    for i, n in enumerate(norm):
        index.setdefault(n, i)
    flip = list(range(len(norm)))
    for i, n in enumerate(norm):
        mirror = _mirror_name(n)
        j = index.get(mirror) if mirror is not None else None
        if j is not None and j != i and flip[i] == i and flip[j] == j and _mirror_name(norm[j]) == n:
            flip[i], flip[j] = j, i
    return tuple(flip)


def same_keypoint_names(a, b) -> bool:
    """True when the two name lists name the same keypoints in the same order (:func:`normalise_keypoint_name`:
    ``"Right Shoulder"`` is ``right_shoulder``)."""
    return len(a) == len(b) and all(normalise_keypoint_name(x) == normalise_keypoint_name(y) for x, y in zip(a, b))


def match_builtin(names) -> KeypointSet | None:
    """The built-in set whose keypoint names equal ``names`` in order (:func:`same_keypoint_names`), or None."""
    return next((kset for kset in KEYPOINT_SETS.values() if same_keypoint_names(kset.names, names)), None)


def _slug(text: str, default: str) -> str:
    s = normalise_keypoint_name(text)
    return s or default


def keypoint_set_from_names(name: str, names, flip_index=None, skeleton=(), sigmas=None,
                            where: str = "keypoint set", builtin: bool = True) -> KeypointSet:
    """The keypoint set a dataset file describes by its keypoint names.

    When ``builtin`` and ``names`` are a built-in set's (:func:`match_builtin`) and the file's own ``flip_index``
    and ``sigmas`` (when given) agree with it, that set is returned whole: its flip index, skeleton, published OKS
    sigmas and upper body (so a COCO person file is ``coco17``, AIC's ``"Right Shoulder"`` file is ``aic14``).
    Otherwise a new set named ``name``: flip index ``flip_index`` or from the names (:func:`flip_index_from_names`),
    ``skeleton`` (0-based links, for drawing), OKS sigmas ``sigmas`` or ``1/K`` each (ultralytics' rule for sets
    without published sigmas, ``ultralytics/utils/metrics.py``), upper body all keypoints (half-body augmentation
    off). ``builtin=False`` is for a file that names no keypoint (``names`` are :func:`generic_names`): its
    keypoints are nobody's, even where a built-in set's names read the same (WFLW's ``kpt-0`` ...).

    Raises:
        InputError: one line naming ``where`` and the entry (names twice, a flip index that is not an involution ...).
    """
    same = match_builtin(names) if builtin else None
    if (same is not None and (flip_index is None or tuple(flip_index) == same.flip_index)
            and (sigmas is None or tuple(float(s) for s in sigmas) == same.sigmas)):
        return same
    flip = flip_index_from_names(names) if flip_index is None else flip_index
    try:
        return KeypointSet.from_dict({"name": name, "names": list(names), "flip_index": list(flip),
                                      "skeleton": [list(p) for p in skeleton],
                                      "sigmas": None if sigmas is None else list(sigmas)}, where=where)
    except ValueError as e:
        raise InputError(str(e)) from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def keypoint_set_from_coco(data: dict, where: str = "annotation file", name: str | None = None) -> KeypointSet:
    """The keypoint set of a COCO-style keypoint annotation file, from ``categories[0]`` (the first category that
    names keypoints, else the first category).

    ``keypoints`` gives the K names and :func:`keypoint_set_from_names` the set: a built-in set whole when the names
    are its (case and separators ignored), else a new set with flip pairs from the left/right names and OKS sigmas
    ``1/K``, named ``name``, default the category name and K (``hand21``, ``pole_vault5``). ``skeleton`` links are
    1-based as in COCO (a skeleton that uses keypoint number 0 is read as 0-based); links naming keypoints beyond K
    are dropped (CrowdPose's files carry COCO's 17-keypoint skeleton with their 14 keypoints). A file that names no
    keypoint (WFLW's, for one, or a file without ``categories``) takes K from the first annotation's ``keypoints``
    (3 numbers per keypoint): K = 17 is COCO-17 (pycocotools' and ultralytics' default), other K get the names
    ``kpt_0`` ... ``kpt_{K-1}`` (:func:`generic_names`), no flip pairs, OKS sigmas ``1/K``.

    Args:
        data: the parsed file (``{"images", "annotations", "categories"}``).
        where: the file, for messages.

    Raises:
        InputError: one line naming ``where`` and the entry: ``categories`` not a list, names that are not strings or
            appear twice, a skeleton link that is not a pair of keypoint numbers, K unknown.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a COCO annotation file (a mapping with 'categories')")
    cats = data.get("categories")
    if cats is not None and not isinstance(cats, list):
        raise InputError(f"{where}: 'categories' must be a list of categories")
    cats = [(i, c) for i, c in enumerate(cats or []) if isinstance(c, dict)]
    ci, cat = next(((i, c) for i, c in cats if c.get("keypoints")), cats[0] if cats else (0, None))
    entry = f"categories[{ci}]"
    names = (cat or {}).get("keypoints") or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"{where}: {entry}.keypoints must be a list of keypoint names")
    named = bool(names)
    if named:
        k = len(names)
        if len(set(names)) != k:
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError(f"{where}: {entry}.keypoints names {dup!r} twice")
    else:
        k = _count_from_annotations(data, where, entry if cat is not None else None)
        if k == COCO17.num_keypoints:
            return COCO17
        names = generic_names(k)
    raw = (cat or {}).get("skeleton") or []
    if not isinstance(raw, list):
        raise InputError(f"{where}: {entry}.skeleton must be a list of [a, b] links")
    for i, link in enumerate(raw):
        if not (isinstance(link, (list, tuple)) and len(link) == 2 and all(_is_int(v) and v >= 0 for v in link)):
            raise InputError(f"{where}: {entry}.skeleton[{i}] = {link!r} is not a pair of keypoint numbers "
                             f"(1..{k}: COCO skeletons are 1-based)")
    base = 0 if any(v == 0 for link in raw for v in link) else 1
    skeleton = [(a - base, b - base) for a, b in raw if a - base < k and b - base < k]
    set_name = name or f"{_slug(str((cat or {}).get('name') or ''), 'custom')}{k}"
    return keypoint_set_from_names(set_name, names, skeleton=skeleton, where=f"{where}: {entry}",
                                   builtin=named)


def _count_from_annotations(data: dict, where: str, entry: str | None) -> int:
    for i, ann in enumerate(data.get("annotations") or []):
        kp = ann.get("keypoints") if isinstance(ann, dict) else None
        if isinstance(kp, list) and kp:
            if len(kp) % 3:
                raise InputError(f"{where}: annotations[{i}].keypoints has {len(kp)} numbers, not 3 per keypoint")
            return len(kp) // 3
    said = (f"{entry}.keypoints is empty" if entry is not None
            else "no 'categories' entry with keypoint names (categories[0].keypoints)")
    raise InputError(f"{where}: {said} and no annotation has keypoints, so the number of keypoints is unknown")


def keypoint_set_from_yolo(data: dict, where: str = "dataset YAML", name: str | None = None) -> KeypointSet:
    """The keypoint set of an ultralytics YOLO-pose dataset YAML (its parsed mapping).

    ``kpt_shape: [K, 2 | 3]`` gives K; ``flip_idx`` (optional) the flip index; ``kpt_names`` (optional; ultralytics
    8.3+ writes ``{class id: [K names]}``, class 0's (the lowest id's) are taken; a plain list, or a list of such
    lists, is read too) the names, else ``kpt_0`` ... ``kpt_{K-1}``. The set is :func:`keypoint_set_from_names`'s:
    a built-in set whole when the names are its and ``flip_idx`` (if any) agrees; else a new set with flip index
    ``flip_idx``, or from the names (identity for generic names; ultralytics itself turns horizontal flips off when
    ``flip_idx`` is missing), OKS sigmas ``kpt_oks_sigmas`` (the optional key ultralytics' pose trainer reads) or
    ``1/K``, no skeleton, upper body all keypoints, named ``name``, default the first class name and K
    (``person17``). Without names, K = 17 with COCO's ``flip_idx`` or none is COCO-17 (ultralytics' COCO-pose YAMLs
    before 8.3; ultralytics uses COCO's OKS sigmas whenever ``kpt_shape`` is ``[17, 3]``).

    Raises:
        InputError: one line naming ``where`` and the entry (``kpt_shape``, ``flip_idx``, ``kpt_names``,
            ``kpt_oks_sigmas``).
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping with 'kpt_shape' (an ultralytics YOLO-pose dataset YAML)")
    shape = data.get("kpt_shape")
    if shape is None:
        raise InputError(f"{where}: no 'kpt_shape' (a YOLO-pose dataset YAML gives kpt_shape: [K, 2] or [K, 3])")
    if (not isinstance(shape, (list, tuple)) or len(shape) != 2 or not all(_is_int(v) for v in shape)
            or shape[0] < 1 or shape[1] not in (2, 3)):
        raise InputError(f"{where}: kpt_shape must be [K, 2] or [K, 3] (K keypoints), got {shape!r}")
    k = shape[0]
    names = _yolo_names(data.get("kpt_names"), k, where)
    flip = data.get("flip_idx")
    if flip is not None:
        if not isinstance(flip, (list, tuple)) or len(flip) != k or not all(_is_int(v) and 0 <= v < k for v in flip):
            raise InputError(f"{where}: flip_idx must list {k} keypoint indices 0..{k - 1} (one per keypoint of "
                             f"kpt_shape), got {flip!r}")
        flip = tuple(flip)
        bad = next((i for i, j in enumerate(flip) if flip[j] != i), None)
        if bad is not None:
            raise InputError(f"{where}: flip_idx is not symmetric: {bad} -> {flip[bad]} but {flip[bad]} -> "
                             f"{flip[flip[bad]]}")
    sigmas = data.get("kpt_oks_sigmas")
    if sigmas is not None and (not isinstance(sigmas, (list, tuple)) or len(sigmas) != k or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in sigmas)):
        raise InputError(f"{where}: kpt_oks_sigmas must give {k} positive OKS sigmas (one per keypoint of "
                         f"kpt_shape)")
    named = names is not None
    if not named:
        if k == COCO17.num_keypoints and flip in (None, COCO17.flip_index) and sigmas is None:
            return COCO17
        names = generic_names(k)
    classes = data.get("names")
    first = (classes.get(0, classes.get("0", next(iter(classes.values())))) if isinstance(classes, dict) and classes
             else classes[0] if isinstance(classes, list) and classes else "")
    set_name = name or f"{_slug(str(first), 'custom')}{k}"
    return keypoint_set_from_names(set_name, names, flip, (), sigmas, where, builtin=named)


def _yolo_names(raw, k: int, where: str) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        if not raw:
            return None
        raw = raw.get(0, raw.get("0", next(iter(raw.values()))))
    elif isinstance(raw, list) and raw and all(isinstance(v, list) for v in raw):
        raw = raw[0]  # one list per class
    if (not isinstance(raw, (list, tuple)) or len(raw) != k
            or not all(isinstance(n, (str, int)) and str(n).strip() for n in raw)):
        raise InputError(f"{where}: kpt_names must give {k} keypoint names (one per keypoint of kpt_shape)")
    names = [str(n) for n in raw]
    if len(set(names)) != k:
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"{where}: kpt_names names {dup!r} twice")
    return names


def yolo_keypoint_fields(kset: KeypointSet, class_name: str = "person") -> dict:
    """The keys of an ultralytics YOLO-pose dataset YAML that describe ``kset``: ``kpt_shape: [K, 3]``,
    ``flip_idx``, ``kpt_names: {0: [names]}`` and ``names: {0: class_name}``; :func:`keypoint_set_from_yolo`
    reads them back (to ``kset`` itself for a built-in set)."""
    return {"kpt_shape": [kset.num_keypoints, 3], "flip_idx": list(kset.flip_index),
            "kpt_names": {0: list(kset.names)}, "names": {0: class_name}}


def read_json_or_yaml(path: str | Path):
    """The parsed content of a ``.json`` file (``json``) or of any other file (YAML, ``yaml.safe_load``: plain data,
    no Python objects): keypoint-set files, COCO files read for their set, ultralytics ``data.yaml``.

    Raises:
        InputError: unreadable, not UTF-8, or not valid JSON / YAML; one line naming ``path`` and where the parser
            stopped (line and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror or e})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{at}") from None


_YOLO_KEYS = ("kpt_shape", "flip_idx", "kpt_names", "train", "val", "path")


def load_keypoint_set(spec) -> KeypointSet:
    """A keypoint set from what a user names on the command line or in a config (``--keypoint-set``).

    ``spec`` is a :class:`KeypointSet` (returned as is), a built-in name (:func:`get_keypoint_set`: ignoring case,
    ``-`` = ``_``), or a file:

    - ``.json``: a COCO keypoint annotation file (with ``categories``: :func:`keypoint_set_from_coco`) or a
      keypoint-set file;
    - ``.yaml`` / ``.yml``: an ultralytics YOLO-pose dataset YAML (with ``kpt_shape``, or any of ``train``, ``val``,
      ``path``: :func:`keypoint_set_from_yolo`) or a keypoint-set file.

    A keypoint-set file is the :meth:`KeypointSet.to_dict` form (``names``; optional ``flip_index``, 0-based
    ``skeleton``, ``sigmas``, ``upper_body``; ``name`` defaults to the file name).

    Raises:
        UsageError: an unknown name (naming the closest built-in names), a file that is not .json / .yaml.
        InputError: a missing, unreadable or malformed file; one line naming the file and the entry.
    """
    if isinstance(spec, KeypointSet):
        return spec
    text = str(spec).strip()
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix in (".json", ".yaml", ".yml") or "/" in text or "\\" in text:
        if not path.is_file():
            raise InputError(f"keypoint-set file {text} does not exist" if not path.exists()
                             else f"keypoint-set file {text} is not a file")
        if suffix not in (".json", ".yaml", ".yml"):
            raise UsageError(f"keypoint-set file {text}: expected a .json or .yaml file")
        data = read_json_or_yaml(path)
        if suffix == ".json" and isinstance(data, dict) and "categories" in data:
            return keypoint_set_from_coco(data, where=str(path))
        if suffix != ".json" and (not isinstance(data, dict) or any(key in data for key in _YOLO_KEYS)):
            return keypoint_set_from_yolo(data, where=str(path))
        if isinstance(data, dict) and "names" in data:
            return _from_set_file(data, path)
        kinds = ("a COCO annotation file (with 'categories')" if suffix == ".json"
                 else "an ultralytics YOLO-pose dataset YAML (with 'kpt_shape')")
        raise InputError(f"{path}: neither a keypoint-set file (with 'names') nor {kinds}")
    try:
        return get_keypoint_set(text)
    except KeyError:
        close = _close_set_names(text)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(KEYPOINT_SETS)}"
        raise UsageError(f"unknown keypoint set {text!r}; {hint} (or give a .json or .yaml file)") from None


def _from_set_file(data: dict, path: Path) -> KeypointSet:
    if "name" not in data:
        data = {**data, "name": _slug(path.stem, "custom")}
    try:
        return KeypointSet.from_dict(data, where=str(path))
    except ValueError as e:
        raise InputError(str(e)) from None

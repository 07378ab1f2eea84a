"""Keypoint sets as data: names, flip index, skeleton, OKS sigmas, upper body; joint mappings between sets.

:class:`KeypointSet` describes the K keypoints a model predicts. The built-in sets are JSON files in
``kanpose_cli/core/keypoint_sets/`` (one per set, the :meth:`KeypointSet.to_dict` form plus provenance fields), read
when this module is imported into :data:`KEYPOINT_SETS`: ``coco17``, ``lsp14``, ``mpii16``, ``aic14``,
``crowdpose14``, ``halpe26``, ``ap10k17`` (animals), ``onehand21`` (hand), ``wflw98`` (face) and
``coco_wholebody133``. Set names are lower case, words joined by ``_``, ending in K; lookups ignore case and read
``-`` as ``_`` (``COCO-WholeBody133`` finds ``coco_wholebody133``). Names, flip pairs, skeletons and OKS sigmas
restate open-mmlab/mmpose ``configs/_base_/datasets/*.py`` (each file's ``"source"`` says which, and at which
commit); sets without published sigmas use ultralytics' ``1/K`` rule and say so in ``"sigmas_source"``.

:func:`load_keypoint_set` reads what a user names: a built-in name, a keypoint-set JSON file, a COCO annotation
file (:func:`keypoint_set_from_coco`) or an ultralytics YOLO-pose dataset YAML (:func:`keypoint_set_from_yolo`).
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
# Sets from users' files.

_SEPARATORS = re.compile(r"[^0-9a-z]+")


def normalise_keypoint_name(name: str) -> str:
    """A keypoint name for comparison: lower case, every run of other characters one ``_``, none at the ends
    (``"Right Shoulder"`` -> ``"right_shoulder"``, ``"kpt-0"`` -> ``"kpt_0"``)."""
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
    (``left_eye``/``right_eye``, ``LeftEye``/``RightEye``, ``L_Eye``/``R_Eye``, ``hip_l``/``hip_r``; case and
    separators ignored); every other keypoint maps to itself. Returns a permutation of ``range(len(names))`` that is
    an involution."""
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


def _builtin_named(names) -> KeypointSet | None:
    """The built-in set whose keypoint names equal ``names`` in order (compared normalised), or None."""
    norm = tuple(normalise_keypoint_name(n) for n in names)
    for kset in KEYPOINT_SETS.values():
        if len(kset.names) == len(norm) and tuple(normalise_keypoint_name(n) for n in kset.names) == norm:
            return kset
    return None


def _slug(text: str, default: str) -> str:
    s = normalise_keypoint_name(text)
    return s or default


def _custom_set(names, flip_index, skeleton, name: str, where: str, sigmas=None) -> KeypointSet:
    try:
        return KeypointSet.from_dict({"name": name, "names": list(names), "flip_index": list(flip_index),
                                      "skeleton": [list(p) for p in skeleton], "sigmas": sigmas}, where=where)
    except ValueError as e:
        raise InputError(str(e)) from None


def keypoint_set_from_coco(data: dict, where: str = "annotation file", name: str | None = None) -> KeypointSet:
    """The keypoint set of a COCO-style keypoint annotation file, from ``categories[0]``.

    ``keypoints`` gives the K names; when it is empty (WFLW's files) K comes from the first annotation's
    ``keypoints`` (3 numbers per keypoint) and the names are ``kpt_0`` ... ``kpt_{K-1}``. When the names equal a
    built-in set's (case and separators ignored, e.g. ``"Right Shoulder"`` = ``right_shoulder``), that set is
    returned whole (its flip index, skeleton, OKS sigmas and upper body). Otherwise: the ``skeleton`` links
    (1-based in COCO files, stored 0-based), a flip index from the names (:func:`flip_index_from_names`), OKS sigmas
    ``1/K`` (ultralytics' rule for sets without published sigmas), upper body all keypoints; the set is named
    ``name``, default the category name and K (``hand21``).

    Args:
        data: the parsed file (``{"images", "annotations", "categories"}``).
        where: the file, for messages.

    Raises:
        InputError: one line naming ``where`` and the entry: no ``categories``, names that are not strings or appear
            twice, a skeleton link that is not a pair of keypoint numbers 1..K, K unknown.
    """
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, list) or not cats or not isinstance(cats[0], dict):
        raise InputError(f"{where}: no 'categories' entry with keypoint names (a COCO keypoint file has "
                         f"categories[0].keypoints)")
    cat = cats[0]
    names = cat.get("keypoints") or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"{where}: categories[0].keypoints must be a list of keypoint names")
    if names:
        builtin = _builtin_named(names)
        if builtin is not None:
            return builtin
        k = len(names)
    else:
        k = _count_from_annotations(data, where)
        names = [f"kpt_{i}" for i in range(k)]
    if len(set(names)) != k:
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"{where}: categories[0].keypoints names {dup!r} twice")
    raw = cat.get("skeleton") or []
    if not isinstance(raw, list):
        raise InputError(f"{where}: categories[0].skeleton must be a list of [a, b] links")
    skeleton = []
    for i, link in enumerate(raw):
        ok = (isinstance(link, (list, tuple)) and len(link) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= k for v in link))
        if not ok:
            raise InputError(f"{where}: categories[0].skeleton[{i}] = {link!r} is not a pair of keypoint numbers "
                             f"1..{k} (COCO skeletons are 1-based)")
        skeleton.append((link[0] - 1, link[1] - 1))
    set_name = name or f"{_slug(str(cat.get('name') or ''), 'custom')}{k}"
    return _custom_set(names, flip_index_from_names(names), skeleton, set_name, where)


def _count_from_annotations(data: dict, where: str) -> int:
    for i, ann in enumerate(data.get("annotations") or []):
        kp = ann.get("keypoints") if isinstance(ann, dict) else None
        if isinstance(kp, list) and kp:
            if len(kp) % 3:
                raise InputError(f"{where}: annotations[{i}].keypoints has {len(kp)} numbers, not 3 per keypoint")
            return len(kp) // 3
    raise InputError(f"{where}: categories[0].keypoints is empty and no annotation has keypoints, so the number of "
                     f"keypoints is unknown")


def keypoint_set_from_yolo(data: dict, where: str = "dataset YAML", name: str | None = None) -> KeypointSet:
    """The keypoint set of an ultralytics YOLO-pose dataset YAML (its parsed mapping).

    ``kpt_shape: [K, 2 | 3]`` gives K; ``flip_idx`` (optional) the flip index; ``kpt_names`` (optional; ultralytics
    8.3+ writes ``{class id: [K names]}``, class 0's are taken; a plain list is read too) the names, else ``kpt_0``
    ... ``kpt_{K-1}``. Without ``flip_idx`` the flip index comes from the names (:func:`flip_index_from_names`;
    identity for generic names; ultralytics itself turns horizontal flips off when ``flip_idx`` is missing). When
    the names equal a built-in set's, or there are none and K = 17 with COCO's ``flip_idx`` (ultralytics' COCO-pose
    YAMLs before 8.3), that set is returned whole. Otherwise OKS sigmas are ``kpt_oks_sigmas`` (the optional key
    ultralytics' pose trainer reads) or ``1/K`` (ultralytics' rule), no skeleton, upper body all keypoints; the set
    is named ``name``, default the first class name and K (``person17``).

    Raises:
        InputError: one line naming ``where`` and the entry (``kpt_shape``, ``flip_idx``, ``kpt_names``,
            ``kpt_oks_sigmas``).
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping with 'kpt_shape' (an ultralytics YOLO-pose dataset YAML)")
    shape = data.get("kpt_shape")
    if (not isinstance(shape, (list, tuple)) or len(shape) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape) or shape[0] < 1
            or shape[1] not in (2, 3)):
        raise InputError(f"{where}: kpt_shape must be [K, 2] or [K, 3] (K keypoints), got {shape!r}")
    k = shape[0]
    names = _yolo_names(data.get("kpt_names"), k, where)
    flip_raw = data.get("flip_idx")
    if flip_raw is not None:
        if (not isinstance(flip_raw, (list, tuple)) or len(flip_raw) != k
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < k for v in flip_raw)):
            raise InputError(f"{where}: flip_idx must list {k} keypoint indices 0..{k - 1} (one per keypoint of "
                             f"kpt_shape), got {flip_raw!r}")
        flip = tuple(flip_raw)
        bad = next((i for i, j in enumerate(flip) if flip[j] != i), None)
        if bad is not None:
            raise InputError(f"{where}: flip_idx is not symmetric: {bad} -> {flip[bad]} but {flip[bad]} -> "
                             f"{flip[flip[bad]]}")
    if names is not None:
        builtin = _builtin_named(names)
        if builtin is not None and (flip_raw is None or tuple(flip_raw) == builtin.flip_index):
            return builtin
        if flip_raw is None:
            flip = flip_index_from_names(names)
    else:
        if k == COCO17.num_keypoints and flip_raw is not None and tuple(flip_raw) == COCO17.flip_index:
            return COCO17
        names = [f"kpt_{i}" for i in range(k)]
        if flip_raw is None:
            flip = tuple(range(k))
    sigmas = data.get("kpt_oks_sigmas")
    if sigmas is not None and (not isinstance(sigmas, (list, tuple)) or len(sigmas) != k or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in sigmas)):
        raise InputError(f"{where}: kpt_oks_sigmas must give {k} positive OKS sigmas (one per keypoint of "
                         f"kpt_shape)")
    classes = data.get("names")
    first = (classes.get(0, next(iter(classes.values()), "")) if isinstance(classes, dict) and classes
             else classes[0] if isinstance(classes, list) and classes else "")
    set_name = name or f"{_slug(str(first), 'custom')}{k}"
    return _custom_set(names, flip, (), set_name, where, sigmas)


def _yolo_names(raw, k: int, where: str) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        if not raw:
            return None
        raw = raw.get(0, raw.get("0", next(iter(raw.values()))))
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror or e})") from None


def load_keypoint_set(spec) -> KeypointSet:
    """A keypoint set from what a user names on the command line or in a config.

    ``spec`` is a :class:`KeypointSet` (returned as is), a built-in name (:func:`get_keypoint_set`: ignoring case,
    ``-`` = ``_``), or a file:

    - ``.json``: a keypoint-set file (:meth:`KeypointSet.to_dict` form; ``name`` defaults to the file name) or a
      COCO keypoint annotation file (:func:`keypoint_set_from_coco`, from ``categories[0]``);
    - ``.yaml`` / ``.yml``: an ultralytics YOLO-pose dataset YAML (:func:`keypoint_set_from_yolo`).

    Raises:
        UsageError: an unknown name (naming the closest built-in names).
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
        if suffix in (".yaml", ".yml"):
            return _load_yaml(path)
        if suffix == ".json":
            return _load_json(path)
        raise UsageError(f"keypoint-set file {text}: expected a .json or .yaml file")
    try:
        return get_keypoint_set(text)
    except KeyError:
        close = _close_set_names(text)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(KEYPOINT_SETS)}"
        raise UsageError(f"unknown keypoint set {text!r}; {hint} (or give a .json or .yaml file)") from None


def _load_json(path: Path) -> KeypointSet:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if isinstance(data, dict) and "categories" in data:
        return keypoint_set_from_coco(data, where=str(path))
    if isinstance(data, dict) and "names" in data:
        if "name" not in data:
            data = {**data, "name": _slug(path.stem, "custom")}
        try:
            return KeypointSet.from_dict(data, where=str(path))
        except ValueError as e:
            raise InputError(str(e)) from None
    raise InputError(f"{path}: neither a keypoint-set file (with 'names') nor a COCO annotation file (with "
                     f"'categories')")


def _load_yaml(path: Path) -> KeypointSet:
    import yaml

    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{at}") from None
    return keypoint_set_from_yolo(data, where=str(path))

"""Keypoint-set metadata as data: names, flip index, skeleton, OKS sigmas (COCO-17).

:class:`KeypointSet`, :data:`COCO17`, :data:`LSP14`, :func:`get_keypoint_set`, and the declared
:class:`JointMapping` between sets (:func:`get_joint_mapping`). It sits at the bottom of ``kanpose_cli.core``
and imports nothing from kanpose (numpy only), so results, models, codecs, data and the task packages can all use it.

Reference: COCO 2017 keypoint annotations and ViTPose ``configs/_base_/datasets/coco.py`` (spec §1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


COCO17 = KeypointSet(
    name="coco17",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    upper_body=tuple(range(11)),
)

# Leeds Sports Pose (Johnson & Everingham, BMVC 2010) and LSP-Extended (CVPR 2011): 14 person-centric joints in the
# order of their ``joints.mat`` (LSP-Extended README). No face points, no OKS sigmas of its own: the COCO sigmas of
# the matching joints are used, and 0.079 (the shoulder's) for neck and head top.
LSP14 = KeypointSet(
    name="lsp14",
    names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top",
    ),
    flip_index=(5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13),
    skeleton=((0, 1), (1, 2), (3, 4), (4, 5), (2, 3), (6, 7), (7, 8), (9, 10), (10, 11), (8, 12), (9, 12),
              (12, 13), (2, 8), (3, 9)),
    sigmas=(0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.062, 0.072, 0.079, 0.079, 0.072, 0.062, 0.079, 0.079),
    upper_body=(6, 7, 8, 9, 10, 11, 12, 13),
)

KEYPOINT_SETS = {COCO17.name: COCO17, LSP14.name: LSP14}


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


# LSP 14 -> COCO 17: the 12 limb joints (both sets are person-centric: "right" is the person's right).
LSP14_TO_COCO17 = JointMapping(
    source="lsp14", target="coco17",
    pairs=((0, 16), (1, 14), (2, 12), (3, 11), (4, 13), (5, 15), (6, 10), (7, 8), (8, 6), (9, 5), (10, 7), (11, 9)),
)
JOINT_MAPPINGS = {(LSP14_TO_COCO17.source, LSP14_TO_COCO17.target): LSP14_TO_COCO17}


def get_joint_mapping(source: str, target: str) -> JointMapping:
    """The declared mapping from keypoint set ``source`` to ``target``; raises ``KeyError`` if there is none."""
    try:
        return JOINT_MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in JOINT_MAPPINGS)
        raise KeyError(f"no joint mapping from {source!r} to {target!r}; declared: {known}") from None


def get_keypoint_set(name: str) -> KeypointSet:
    """Look up a keypoint set by name; raises ``KeyError`` listing the known names."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint set {name!r}; known: {', '.join(KEYPOINT_SETS)}") from None

"""The mmpose MPII JSON (MPII Human Pose, Andriluka et al., CVPR 2014): the one reader of its people, for training
(:func:`load_mpii_instances`, ``kanpose train --train-ann mpii.json``) and for ``kanpose eval mpii``
(:func:`kanpose_cli.core.evaluation.benchmarks.mpii_people` scores the entries :func:`read_mpii_json` gives).

The file is a JSON list (the layout of mmpose's ``mpii_train.json`` / ``mpii_val.json``, read by its
``MpiiDataset``), one entry per person:

* ``image``: the image file name, relative to the images folder;
* ``center`` ``[x, y]`` and ``scale``: the person's position and size (``scale`` = box side / 200 pixels);
* ``joints``: 16 × ``[x, y]`` in MATLAB's 1-based pixels, in the order of the built-in set ``mpii16``
  (:func:`~kanpose_cli.core.keypoints.get_keypoint_set`);
* ``joints_vis``: 16 flags, > 0 for a labelled joint (the unlabelled ones sit at ``[-1, -1]``);
* optional ``headbox``: ``[x1, y1, x2, y2]`` or ``[[x1, y1], [x2, y2]]``, the official head box (mmpose's JSON has
  none; only ``eval mpii`` uses it).

Joints and boxes are moved to 0-based pixels (``− 1``). The person box is mmpose ``MpiiDataset``'s: centre
``center − 1`` moved down by ``15 · scale`` pixels (unless ``center[0] == −1``), a square of side ``200 · scale``
pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kanpose_cli.core.data.dataset_keypoints import apply_mapping, source_mapping
from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import read_json_file
from kanpose_cli.core.keypoints import KeypointSet, get_keypoint_set

MPII16 = get_keypoint_set("mpii16")
MPII_PIXEL_STD = 200.0  # mmpose: MPII ``scale`` is the person size / 200 pixels
MPII_CENTER_SHIFT = 15.0  # mmpose MpiiDataset: centre moved down by 15 / 200 of the box
MPII_FIELDS = ("image", "center", "scale", "joints", "joints_vis")


@dataclass
class MpiiEntry:
    """One person of an mmpose MPII JSON.

    Attributes:
        index: 0-based position of the entry in the file. image: its ``image`` (a file name, relative to the images
            folder).
        joints: (16, 2) float64 ``x, y`` in 0-based pixels of the image (the file's − 1), ``mpii16`` order.
        labelled: (16,) bool, ``joints_vis > 0``.
        box: (4,) float64 ``x1, y1, x2, y2`` 0-based pixels, mmpose's person box (not clipped to the image).
        headbox: (4,) float64 ``x1, y1, x2, y2`` 0-based pixels, or None when the entry has none.
    """

    index: int
    image: str
    joints: np.ndarray
    labelled: np.ndarray
    box: np.ndarray
    headbox: np.ndarray | None = None


def _number(value, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def mpii_box(center: np.ndarray, scale: float) -> np.ndarray:
    """mmpose ``MpiiDataset``'s person box from an entry's ``center`` (2,) (1-based pixels) and ``scale``: ``x1, y1,
    x2, y2`` in 0-based pixels, a square of side ``200 · scale`` centred on ``center − 1`` moved down by ``15 ·
    scale`` pixels (not moved when ``center[0] == −1``, mmpose's mark of an unknown centre)."""
    size = scale * MPII_PIXEL_STD
    c = np.asarray(center, dtype=np.float64) - 1.0
    if center[0] != -1:
        c[1] += MPII_CENTER_SHIFT / MPII_PIXEL_STD * size
    return np.array([c[0] - size / 2, c[1] - size / 2, c[0] + size / 2, c[1] + size / 2])


def read_mpii_json(ann_file: str | Path, max_entries: int | None = None) -> list[MpiiEntry]:
    """The people of an mmpose MPII JSON (layout in the module docstring), in file order.

    Args:
        ann_file: the JSON file. max_entries: read only the first N entries (None or 0: all).

    Returns:
        One :class:`MpiiEntry` per entry read (at least one).

    Raises:
        InputError: a missing or unreadable file, not a JSON list, no entries, an entry lacking a field or with a
            wrong shape or a value that is not a number (one line naming the file and the entry, ``entry 3``,
            0-based).
    """
    ann_file = Path(ann_file).expanduser()
    entries = read_json_file(ann_file, "MPII annotation file")
    if not isinstance(entries, list):
        raise InputError(f"{ann_file}: expected a JSON list of MPII persons (mmpose's MPII JSON)")
    K = MPII16.num_keypoints
    out = []
    for n, e in enumerate(entries[:max_entries] if max_entries else entries):
        where = f"{ann_file}: entry {n}"
        if not isinstance(e, dict) or any(k not in e for k in MPII_FIELDS):
            raise InputError(f"{where}: needs image, center, scale, joints and joints_vis")
        try:
            joints = np.asarray(e["joints"], dtype=np.float64)
            vis = np.asarray(e["joints_vis"], dtype=np.float64)
            center = np.asarray(e["center"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where}: joints, joints_vis and center must be numbers") from None
        if joints.shape != (K, 2) or vis.shape != (K,) or center.shape != (2,):
            raise InputError(f"{where}: joints must be {K} × [x, y], joints_vis {K} flags, center [x, y]; got "
                             f"{list(joints.shape)}, {list(vis.shape)}, {list(center.shape)}")
        scale = _number(e["scale"], "scale", where)
        headbox = None
        if "headbox" in e:
            try:
                headbox = np.asarray(e["headbox"], dtype=np.float64).reshape(4) - 1.0
            except (TypeError, ValueError):
                raise InputError(f"{where}: headbox must be [x1, y1, x2, y2] or [[x1, y1], [x2, y2]]") from None
        if not isinstance(e["image"], str) or not e["image"]:
            raise InputError(f"{where}: image must be a file name, got {e['image']!r}")
        out.append(MpiiEntry(n, e["image"], joints - 1.0, vis > 0, mpii_box(center, scale), headbox))
    if not out:
        raise InputError(f"{ann_file}: no persons")
    return out


def load_mpii_instances(ann_file: str | Path, images_dir: str | Path, keypoints: KeypointSet,
                        check_files: bool = True) -> list[Instance]:
    """The people of an mmpose MPII JSON as training instances on ``keypoints`` (the model's set).

    Labelled joints (``joints_vis > 0``) get ``v = 2`` (the file marks which joints are labelled, not which are
    occluded); unlabelled joints and joints outside the image get ``(0, 0, 0)``, target weight 0. The person box is
    mmpose's (:func:`mpii_box`) clipped to the image (an empty one drops the person), as every training box.
    People whose keypoints on ``keypoints`` are all unlabelled are dropped. Image sizes come from the image headers
    (Pillow, EXIF orientation applied).

    Args:
        ann_file: the MPII JSON. images_dir: the folder its ``image`` names are relative to.
        keypoints: the model's keypoint set: ``mpii16`` itself (or a set with MPII's 16 names), or a set a
            :class:`~kanpose_cli.core.keypoints.JointMapping` from ``mpii16`` is declared to (``coco17``: the 12
            limb joints; pelvis, thorax, upper neck and head top are dropped, COCO's face points unlabelled).
        check_files: raise if an image is missing (otherwise its people are skipped).

    Returns:
        One :class:`Instance` per kept person: ``image_id`` numbers the distinct images from 1 in order of first
        appearance, ``ann_id`` = entry index + 1; ``keypoints`` (K, 3) ``x, y, v`` 0-based pixels on ``keypoints``.

    Raises:
        InputError: as :func:`read_mpii_json`; a missing images folder or image (naming the file and the entry); no
            mapping from ``mpii16`` to ``keypoints``; no person left.
    """
    from kanpose_cli.core.data.yolo_pose import image_size

    ann_file, images_dir = Path(ann_file).expanduser(), Path(images_dir).expanduser()
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    mapping = source_mapping(MPII16, keypoints, str(ann_file))  # None: a native mpii16 model
    entries = read_mpii_json(ann_file)
    sizes: dict[str, tuple[int, int] | None] = {}
    image_ids: dict[str, int] = {}
    out: list[Instance] = []
    for e in entries:
        path = images_dir / e.image
        if e.image not in sizes:
            try:
                sizes[e.image] = image_size(path)
            except InputError as exc:
                if check_files:
                    raise InputError(f"{ann_file}: entry {e.index}: {exc}") from None
                sizes[e.image] = None
        size = sizes[e.image]
        if size is None:
            continue
        width, height = size
        x1, y1, x2, y2 = e.box
        box = np.array([max(0.0, x1), max(0.0, y1), min(width - 1.0, x2), min(height - 1.0, y2)])
        if not (box[2] > box[0] and box[3] > box[1]):
            continue
        x, y = e.joints[:, 0], e.joints[:, 1]
        keep = e.labelled & (x >= 0) & (y >= 0) & (x <= width - 1) & (y <= height - 1)
        kp = np.zeros((MPII16.num_keypoints, 3))
        kp[keep, :2] = e.joints[keep]
        kp[keep, 2] = 2.0
        mapped = apply_mapping(kp, mapping, keypoints)
        if not (mapped[:, 2] > 0).any():
            continue
        image_id = image_ids.setdefault(e.image, len(image_ids) + 1)
        out.append(Instance(str(path), image_id, e.index + 1, width, height, box, mapped))
    if not out:
        raise InputError(f"{ann_file}: no person with labelled joints inside its image")
    return out

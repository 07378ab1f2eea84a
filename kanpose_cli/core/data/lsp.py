"""Leeds Sports Pose ``joints.mat`` (LSP and LSP-Extended) read as top-down training instances on the model's
keypoint set.

References: Johnson & Everingham, "Clustered Pose and Nonlinear Appearance Models for Human Pose Estimation"
(BMVC 2010, LSP) and "Learning Effective Human Pose Estimation from Inaccurate Annotation" (CVPR 2011,
LSP-Extended); the 14-joint order is :data:`kanpose_cli.core.keypoints.LSP14`. The mapping onto COCO-17 is the
declared :data:`kanpose_cli.core.keypoints.LSP14_TO_COCO17` (the way mmpose's ``KeypointConverter`` combines
datasets with different skeletons): joints COCO has and LSP lacks (face points) are unlabelled, so they get target
weight 0 and neither train nor punish.

Layouts of the ``joints`` array (``scipy.io.loadmat``):

* LSP-Extended, ``(14, 3, N)``: rows ``x, y, flag`` with flag 1 = visible, 0 = not visible. In LSP-Extended the
  coordinates of a flag-0 joint are not reliable (often 0 or outside the image), so flag 0 means unlabelled.
* LSP, ``(3, 14, N)``: every joint is annotated; the third row marks occlusion, so every joint is labelled (COCO
  ``v = 1`` when marked occluded, ``2`` otherwise).

Column ``i`` belongs to image ``im{i+1:05d}.jpg`` (LSP-Extended) or ``im{i+1:04d}.jpg`` (LSP), whichever exists.
There are no person boxes: the box is the extent of the labelled joints (all 14, head top included), enlarged by
:data:`BOX_MARGIN` on each dimension around its centre and clipped to the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.data.dataset_keypoints import apply_mapping, source_mapping
from kanpose_cli.core.keypoints import LSP14, KeypointSet

BOX_MARGIN = 1.2  # joint extent -> person box (joints sit inside the limbs; the head top is the highest point)


def read_lsp_joints(mat_file: str | Path) -> np.ndarray:
    """The ``joints`` array of a LSP / LSP-Extended ``joints.mat`` as ``(N, 14, 3)`` float64 ``x, y, v`` (image
    pixels, x before y; COCO visibility: 0 unlabelled, 1 labelled but occluded, 2 visible).

    Raises:
        InputError: the file is missing, not a MATLAB file, has no ``joints`` or not one of the two layouts.
    """
    from scipy.io import loadmat

    mat_file = Path(mat_file)
    if not mat_file.is_file():
        raise InputError(f"LSP joints file not found: {mat_file}")
    try:
        joints = np.asarray(loadmat(str(mat_file))["joints"], dtype=np.float64)
    except KeyError:
        raise InputError(f"{mat_file}: no 'joints' matrix (not a LSP joints.mat)") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises ValueError/TypeError/OSError/... for non-MAT input
        raise InputError(f"cannot read LSP joints file {mat_file}: {exc}") from None
    if joints.ndim == 2:  # a single person saved without the trailing axis
        joints = joints[..., None]
    if joints.ndim == 3 and joints.shape[:2] == (14, 3):  # LSP-Extended: flag 1 = visible, 0 = unlabelled
        kp = joints.transpose(2, 0, 1).copy()
        kp[..., 2] = np.where(kp[..., 2] > 0, 2.0, 0.0)
    elif joints.ndim == 3 and joints.shape[:2] == (3, 14):  # LSP: all annotated, flag = occluded
        kp = joints.transpose(2, 1, 0).copy()
        kp[..., 2] = np.where(kp[..., 2] > 0, 1.0, 2.0)
    else:
        raise InputError(f"{mat_file}: 'joints' has shape {joints.shape}; expected (14, 3, N) (LSP-Extended) "
                         f"or (3, 14, N) (LSP)")
    kp[kp[..., 2] == 0, :2] = 0.0
    return kp


def _image_path(images_dir: Path, index: int) -> Path:
    for name in (f"im{index + 1:05d}.jpg", f"im{index + 1:04d}.jpg"):
        path = images_dir / name
        if path.is_file():
            return path
    return images_dir / f"im{index + 1:05d}.jpg"


def joints_box(keypoints: np.ndarray, width: int, height: int, margin: float = BOX_MARGIN) -> np.ndarray | None:
    """Person box ``xyxy`` (image pixels) from the labelled joints (K, 3): their extent scaled by ``margin`` around
    its centre, clipped to the image; None when fewer than 2 joints are labelled or the box is empty."""
    pts = keypoints[keypoints[:, 2] > 0, :2]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(0), pts.max(0)
    c, half = (lo + hi) / 2, (hi - lo) / 2 * margin
    x1, y1 = max(0.0, c[0] - half[0]), max(0.0, c[1] - half[1])
    x2, y2 = min(width - 1.0, c[0] + half[0]), min(height - 1.0, c[1] + half[1])
    if x2 <= x1 or y2 <= y1:
        return None
    return np.array([x1, y1, x2, y2])


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header (Pillow reads no pixels), or None if missing or not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (OSError, UnidentifiedImageError):
        return None


def load_lsp_instances(mat_file: str | Path, images_dir: str | Path, keypoints: KeypointSet,
                       check_files: bool = True) -> list[Instance]:
    """LSP / LSP-Extended people as training instances on ``keypoints`` (e.g. COCO-17).

    Joints outside the image are unlabelled; a person with fewer than 2 labelled joints (in LSP-14), or whose
    mapped keypoints are all unlabelled, is dropped. Image sizes come from the image headers (Pillow).

    Args:
        mat_file: ``joints.mat``. images_dir: its ``images/`` folder. keypoints: the model's keypoint set: ``lsp14``
            itself, or a set a :class:`~kanpose_cli.core.keypoints.JointMapping` from ``lsp14`` is declared to.
        check_files: raise if an image is missing (otherwise the instance is skipped).

    Returns:
        One :class:`Instance` per kept person (``image_id`` = ``ann_id`` = column index + 1); ``keypoints`` are
        (K, 3) on the target set.

    Raises:
        InputError: unreadable ``joints.mat``, missing images folder or image, no mapping to ``keypoints``.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    mapping = source_mapping(LSP14, keypoints, str(mat_file))  # None: a native lsp14 model
    joints = read_lsp_joints(mat_file)
    out: list[Instance] = []
    for i, kp in enumerate(joints):
        path = _image_path(images_dir, i)
        size = _image_size(path)
        if size is None:
            if check_files:
                raise InputError(f"{mat_file}: image {path} not found or unreadable")
            continue
        width, height = size
        kp = kp.copy()
        outside = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] > width - 1) | (kp[:, 1] > height - 1)
        kp[outside] = 0.0
        box = joints_box(kp, width, height)
        if box is None:
            continue
        mapped = apply_mapping(kp, mapping, keypoints)
        if not (mapped[:, 2] > 0).any():
            continue
        out.append(Instance(str(path), i + 1, i + 1, width, height, box, mapped))
    if not out:
        raise InputError(f"{mat_file}: no person with labelled joints")
    return out


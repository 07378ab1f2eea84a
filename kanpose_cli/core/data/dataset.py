"""COCO-format top-down keypoint dataset for training (one sample = one person instance).

Reference: mmpose 0.x ``TopDownCocoDataset._load_coco_keypoint_annotation_kernel`` / mmpose 1.x
``CocoDataset`` + ``GetBBoxCenterScale`` + ``TopdownAffine`` + the codec's ``encode`` (spec §1.2–1.4).

Filters (as the reference recipes): ``iscrowd == 0``, ``num_keypoints > 0`` (at least one labelled keypoint), box
clipped to the image (``x2 = min(W−1, x1 + max(0, w−1))``, same for y) and kept only if its area is positive.

A sample is a dict of tensors: ``"image"`` (H, W, 3) uint8 RGB crop (normalised on the device by
``PoseModel.normalize``, as at inference time), every key of ``model.codec.encode(...)`` as a float tensor (for
SimCC ``target_x`` (K, Wb), ``target_y`` (K, Hb), ``target_weight`` (K,); other codecs have other keys), plus
``"index"`` (), ``"center"`` (2,) and ``"roi"`` (2,) in original-image pixels, and ``"rotation"`` () degrees. The
default collate stacks each key, so any codec works.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kanpose_cli.core.data.augment import AugmentConfig, augment_instance
from kanpose_cli.core.data.transforms import box_to_center_size, get_warp_matrix, transform_points, warp_image
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import write_json_atomic


@dataclass
class Instance:
    """One person: image path, its size, box ``xyxy`` (clipped), keypoints (K, 3) ``x, y, v`` image pixels."""

    image_path: str
    image_id: int
    ann_id: int
    width: int
    height: int
    box: np.ndarray
    keypoints: np.ndarray


def load_coco_instances(ann_file: str | Path, images_dir: str | Path, num_keypoints: int = 17,
                        check_files: bool = True) -> list[Instance]:
    """Read a COCO keypoint annotation file into training instances (filters in the module docstring).

    Args:
        ann_file: COCO JSON with ``images``, ``annotations`` (``bbox`` xywh, ``keypoints`` 3K) and person category.
        images_dir: folder holding the images (``file_name`` is relative to it).
        num_keypoints: K expected in every annotation.
        check_files: raise if an image file referenced by a kept instance is missing.

    Returns:
        Instances in annotation order.

    Raises:
        InputError: missing/unreadable/malformed annotation file, missing images folder or image files.
    """
    ann_file, images_dir = Path(ann_file), Path(images_dir)
    if not ann_file.is_file():
        raise InputError(f"annotation file not found: {ann_file}")
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    try:
        data = json.loads(ann_file.read_text())
        images = {int(im["id"]): im for im in data["images"]}
        anns = data["annotations"]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read COCO annotations {ann_file}: {exc!r}") from None
    out: list[Instance] = []
    for a in anns:
        if a.get("iscrowd", 0) or int(a.get("num_keypoints", 0)) <= 0 or "keypoints" not in a:
            continue
        im = images.get(int(a["image_id"]))
        if im is None:
            continue
        W, H = int(im["width"]), int(im["height"])
        x, y, w, h = (float(v) for v in a["bbox"])
        x1, y1 = max(0.0, x), max(0.0, y)
        x2 = min(W - 1.0, x1 + max(0.0, w - 1.0))
        y2 = min(H - 1.0, y1 + max(0.0, h - 1.0))
        if a.get("area", 1.0) <= 0 or x2 <= x1 or y2 <= y1:
            continue
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        if kp.shape[0] != num_keypoints:
            raise InputError(f"{ann_file}: annotation {a.get('id')} has {kp.shape[0]} keypoints, "
                             f"expected {num_keypoints}")
        if not (kp[:, 2] > 0).any():
            continue
        path = images_dir / im["file_name"]
        if check_files and not path.is_file():
            raise InputError(f"{ann_file}: image {path} not found")
        out.append(Instance(str(path), int(im["id"]), int(a.get("id", len(out))), W, H,
                            np.array([x1, y1, x2, y2]), kp))
    return out


class TopDownDataset(Dataset):
    """Person crops and codec targets for training.

    Args:
        instances: from :func:`load_coco_instances` (several files may be concatenated).
        model: the :class:`~kanpose_cli.core.models.registry.PoseModel` (input size, codec, keypoint set, UDP flag).
        augment: :class:`AugmentConfig`, or None for no augmentation (plain 1.25-padded box crop).
        seed: base seed; sample ``i`` of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])``.
        padding: box → ROI enlargement (1.25).
    """

    def __init__(self, instances: list[Instance], model, augment: AugmentConfig | None = None, seed: int = 0,
                 padding: float = 1.25):
        if not instances:
            raise InputError("the training set is empty (no non-crowd person with labelled keypoints)")
        self.instances = instances
        self.codec = model.codec
        self.input_size = tuple(model.input_size)  # (H, W)
        self.udp = bool(model.spec.udp)
        self.kset = model.keypoints
        self.augment = augment
        self.seed, self.padding, self.epoch = int(seed), float(padding), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before iterating; workers see it when re-created)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        inst = self.instances[index]
        image = cv2.imread(inst.image_path, cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read image {inst.image_path}")
        H, W = self.input_size
        center, roi = box_to_center_size(inst.box, W / H, self.padding)
        kpts = inst.keypoints[:, :2].copy()
        vis = np.minimum(inst.keypoints[:, 2], 1.0)  # v ∈ {0,1,2} -> weight min(1, v) (spec §1.2)
        rotation = 0.0
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            aug = augment_instance(rng, self.augment, image.shape[1], kpts, vis, center, roi, self.kset.flip_index,
                                   self.kset.upper_body, W / H)
            if aug["flip"]:
                image = image[:, ::-1]
            kpts, vis, center, roi, rotation = (aug["keypoints"], aug["visible"], aug["center"], aug["roi"],
                                                aug["rotation"])
        roi = np.maximum(roi, 1.0)
        matrix = get_warp_matrix(center, roi, (W, H), rotation_deg=rotation, udp=self.udp)
        crop = warp_image(np.ascontiguousarray(image), matrix, (W, H))[..., ::-1]
        kpts_crop = transform_points(kpts, matrix)
        targets = self.codec.encode(kpts_crop.astype(np.float32), vis.astype(np.float32))
        sample = {"image": torch.from_numpy(np.ascontiguousarray(crop))}
        for k, v in targets.items():
            sample[k] = torch.as_tensor(np.asarray(v, dtype=np.float32))
        sample["index"] = torch.tensor(int(index))
        sample["center"] = torch.as_tensor(center, dtype=torch.float64)
        sample["roi"] = torch.as_tensor(roi, dtype=torch.float64)
        sample["rotation"] = torch.tensor(float(rotation))
        return sample


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack every key of the samples (works for any codec's target dict)."""
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def subset_annotations(ann_file: str | Path, out_file: str | Path, num_persons: int, seed: int = 0,
                       min_keypoints: int = 10) -> Path:
    """Write a COCO keypoint file with whole images whose persons all pass the training filters, until
    ``num_persons`` persons are collected (used by the overfit test). Images are taken in id order.

    Returns:
        ``out_file``.
    """
    data = json.loads(Path(ann_file).read_text())
    by_img: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_img.setdefault(int(a["image_id"]), []).append(a)
    keep_imgs, keep_anns = [], []
    for im in sorted(data["images"], key=lambda x: x["id"]):
        anns = by_img.get(int(im["id"]), [])
        if not anns or any(a.get("iscrowd", 0) or a.get("num_keypoints", 0) < min_keypoints for a in anns):
            continue
        if len(keep_anns) + len(anns) > num_persons:
            continue
        keep_imgs.append(im)
        keep_anns.extend(anns)
        if len(keep_anns) == num_persons:
            break
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"], out["annotations"] = keep_imgs, keep_anns
    return write_json_atomic(out_file, out, indent=None)

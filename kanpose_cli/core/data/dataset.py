"""COCO-format top-down keypoint dataset for training (one sample = one person instance).

Reference: mmpose 0.x ``TopDownCocoDataset._load_coco_keypoint_annotation_kernel`` / mmpose 1.x
``CocoDataset`` + ``GetBBoxCenterScale`` + ``TopdownAffine`` + the codec's ``encode`` (spec §1.2–1.4).

The instances come from :mod:`kanpose_cli.core.data.training_sets` (COCO JSON through
:func:`kanpose_cli.core.data.coco.load_coco_instances`, LSP ``joints.mat`` through :mod:`kanpose_cli.core.data.lsp`).

A sample is a dict of tensors: ``"image"`` (H, W, 3) uint8 RGB crop (normalised on the device by
``PoseModel.normalize``, as at inference time), every key of ``model.codec.encode(...)`` as a float tensor (for
SimCC ``target_x`` (K, Wb), ``target_y`` (K, Hb), ``target_weight`` (K,); other codecs have other keys), plus
``"index"`` (), ``"center"`` (2,) and ``"roi"`` (2,) in original-image pixels, and ``"rotation"`` () degrees. The
default collate stacks each key, so any codec works.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kanpose_cli.core.data.augment import AugmentConfig, apply_occlusions, augment_instance, draw_occlusions
from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.data.transforms import box_to_center_size, get_warp_matrix, transform_points, warp_image
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.protocol import BOX_PADDING


class TopDownDataset(Dataset):
    """Person crops and codec targets for training.

    Args:
        instances: :class:`~kanpose_cli.core.data.instances.Instance` list (several sources may be concatenated).
        model: the :class:`~kanpose_cli.core.models.registry.PoseModel` (input size, codec, keypoint set, UDP flag).
        augment: :class:`AugmentConfig`, or None for no augmentation (plain 1.25-padded box crop).
        seed: base seed; sample ``i`` of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])``.
        padding: box → ROI enlargement (:data:`~kanpose_cli.core.protocol.BOX_PADDING`, 1.25).
    """

    def __init__(self, instances: list[Instance], model, augment: AugmentConfig | None = None, seed: int = 0,
                 padding: float = BOX_PADDING):
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
        rotation, occlusions = 0.0, []
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            aug = augment_instance(rng, self.augment, image.shape[1], kpts, vis, center, roi, self.kset.flip_index,
                                   self.kset.upper_body, W / H)
            if aug["flip"]:
                image = image[:, ::-1]
            kpts, vis, center, roi, rotation = (aug["keypoints"], aug["visible"], aug["center"], aug["roi"],
                                                aug["rotation"])
            occlusions = draw_occlusions(rng, self.augment, (H, W))
        roi = np.maximum(roi, 1.0)
        matrix = get_warp_matrix(center, roi, (W, H), rotation_deg=rotation, udp=self.udp)
        crop = apply_occlusions(warp_image(np.ascontiguousarray(image), matrix, (W, H))[..., ::-1], occlusions)
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

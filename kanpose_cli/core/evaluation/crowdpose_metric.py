"""CrowdPose keypoint AP, with AP easy / medium / hard by crowd index: pycocotools' ``COCOeval`` under CrowdPose's
rules (Li et al., *CrowdPose: Efficient Crowded Scenes Pose Estimation and A New Benchmark*, CVPR 2019).

The reference implementation is the official CrowdPose API (``crowdposetools``), as packaged in xtcocotools:
``COCOeval(gt, dt, 'keypoints_crowd', sigmas, use_area=False)``. It differs from COCO's keypoint AP in three ways,
reproduced here with pycocotools (through :func:`~kanpose_cli.core.evaluation.coco_metric.coco_eval`):

1. **No area.** CrowdPose annotations have no ``area``; the OKS scale is ``0.53 · w · h`` of the person's box
   (:data:`OKS_AREA_FACTOR`). No area ranges are reported (all persons count; CrowdPose has no AP(M)/AP(L)).
2. **Sigmas** of the 14 CrowdPose keypoints (``kpt_oks_sigmas``; mmpose ``configs/_base_/datasets/crowdpose.py``).
3. **Crowd index per image** (the ``crowdIndex`` field of each ``images`` entry). AP easy / medium / hard are COCO
   AP over the images of each level, evaluated on their own. The paper's text gives the levels as [0, 0.1],
   [0.1, 0.8], [0.8, 1]; the official code that produced its tables (and xtcocotools) splits at **0.2** and 0.8:
   easy ``crowdIndex < 0.2``, medium ``0.2 ≤ crowdIndex < 0.8``, hard ``≥ 0.8`` (:data:`CROWD_INDEX_SPLITS`). The
   code's split is used here, so the numbers match the published ones; xtcocotools rounds them to 4 decimals, here
   they are not rounded.

As in the reference, a person whose ``num_keypoints`` is 0 is ignored (CrowdPose counts only visible keypoints,
``v = 2``, in ``num_keypoints``), at most 20 detections per image count, and a detection whose keypoint scores are
all ≤ 0 is dropped before matching.

Scoring a subset of the keypoints (``joints``, e.g. the 12 limb joints a COCO-17 model has): the annotations are cut
to those keypoints, ``num_keypoints`` is recounted on them (visible ones), and the subset's sigmas are used.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np

from kanpose_cli.core.data.coco import quiet_coco, read_coco_json
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation.benchmark_sets import CROWDPOSE14
from kanpose_cli.core.evaluation.coco_metric import coco_eval, load_results, mean_ap
from kanpose_cli.core.keypoints import KeypointSet

OKS_AREA_FACTOR = 0.53
"""OKS scale of a CrowdPose person: ``0.53 × box width × box height`` pixels² (xtcocotools ``use_area=False``)."""

CROWD_INDEX_SPLITS = (0.2, 0.8)
"""easy < 0.2 ≤ medium < 0.8 ≤ hard: the official CrowdPose code's ``get_type_result(first=0.2, second=0.8)``."""

LEVELS = ("easy", "medium", "hard")
STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75")
_COCO_STAT_INDEX = (0, 1, 2, 5, 6, 7)  # the same numbers in pycocotools' keypoint summary (areas "all")


def crowd_levels(dataset: dict, where: str = "annotations") -> dict[int, str]:
    """Image id -> ``"easy"`` / ``"medium"`` / ``"hard"`` from each image's ``crowdIndex``.

    Raises:
        InputError: an image entry without a numeric ``crowdIndex`` (names the file and the entry).
    """
    first, second = CROWD_INDEX_SPLITS
    out = {}
    for n, img in enumerate(dataset.get("images", [])):
        ci = img.get("crowdIndex") if isinstance(img, dict) else None
        if not isinstance(ci, (int, float)) or isinstance(ci, bool) or not np.isfinite(ci):
            raise InputError(f"{where}: images entry {n} (id {img.get('id') if isinstance(img, dict) else '?'}) has "
                             f"no crowdIndex (not a CrowdPose annotation file)")
        out[int(img["id"])] = "easy" if ci < first else ("medium" if ci < second else "hard")
    return out


def subset_set(joints: Sequence[int], base: KeypointSet = CROWDPOSE14) -> KeypointSet:
    """The keypoint set of ``base``'s keypoints ``joints`` (their names and sigmas, in that order)."""
    joints = [int(j) for j in joints]
    if list(joints) == list(range(base.num_keypoints)):
        return base
    pos = {j: i for i, j in enumerate(joints)}
    return KeypointSet(
        name=f"{base.name}[{','.join(map(str, joints))}]",
        names=tuple(base.names[j] for j in joints),
        flip_index=tuple(pos.get(base.flip_index[j], i) for i, j in enumerate(joints)),
        skeleton=tuple((pos[a], pos[b]) for a, b in base.skeleton if a in pos and b in pos),
        sigmas=tuple(base.sigmas[j] for j in joints),
        upper_body=tuple(pos[j] for j in base.upper_body if j in pos),
    )


def crowdpose_ground_truth(dataset: dict, joints: Sequence[int] | None = None,
                           keypoint_set: KeypointSet = CROWDPOSE14, where: str = "annotations") -> dict:
    """A copy of a CrowdPose annotation dict ready for pycocotools: ``area = 0.53 · w · h`` on every annotation and,
    with ``joints``, the keypoints cut to those (``num_keypoints`` recounted as the visible ones among them, the
    category's ``keypoints`` names cut likewise).

    Raises:
        InputError: an annotation without a 4-number ``bbox`` or with keypoints of another length than the set's.
    """
    data = copy.deepcopy(dataset)
    K = keypoint_set.num_keypoints
    sub = None if joints is None else [int(j) for j in joints]
    for n, ann in enumerate(data.get("annotations", [])):
        bbox, kp = ann.get("bbox"), ann.get("keypoints")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InputError(f"{where}: annotations entry {n} (id {ann.get('id')}) has no bbox [x, y, w, h]")
        if not isinstance(kp, list) or len(kp) != 3 * K:
            raise InputError(f"{where}: annotations entry {n} (id {ann.get('id')}) has "
                             f"{len(kp) // 3 if isinstance(kp, list) else 'no'} keypoints; {keypoint_set.name} has "
                             f"{K}")
        ann["area"] = OKS_AREA_FACTOR * float(bbox[2]) * float(bbox[3])
        if sub is not None:
            ann["keypoints"] = [v for j in sub for v in kp[3 * j:3 * j + 3]]
            ann["num_keypoints"] = sum(1 for j in sub if kp[3 * j + 2] == 2)
        elif "num_keypoints" not in ann:
            raise InputError(f"{where}: annotations entry {n} (id {ann.get('id')}) has no num_keypoints")
    if sub is not None:
        for cat in data.get("categories", []):
            names = cat.get("keypoints")
            if isinstance(names, list) and len(names) == K:
                cat["keypoints"] = [names[j] for j in sub]
            cat.pop("skeleton", None)
    return data


def score_crowdpose(ann: str | Path | dict, results: list | str | Path, image_ids: Sequence[int] | None = None,
                    joints: Sequence[int] | None = None) -> dict:
    """CrowdPose AP/AR and AP easy / medium / hard of keypoint results (protocol in the module docstring).

    Args:
        ann: CrowdPose annotation JSON path or its parsed dict (``images`` with ``crowdIndex``).
        results: COCO keypoint results (list or JSON path; :func:`~kanpose_cli.core.evaluation.coco_metric.
            load_results`), keypoints in original-image pixels with ``len(joints)`` keypoints (all 14 without
            ``joints``) in CrowdPose order.
        image_ids: the images evaluated (default: all of the file); the levels are split among these.
        joints: CrowdPose keypoint indices scored (default all 14), e.g. ``range(12)`` for the limb joints.

    Returns:
        ``{"AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"}`` floats in [0, 1] (-1
        where no person of that level is evaluated), ``"images_per_level"`` {level: count}, ``"scored_keypoints"``
        (names), ``"num_results"``, ``"summary"`` (pycocotools' printed lines for all images).

    Raises:
        InputError: unreadable files, missing ``crowdIndex``, results for unknown images, keypoint counts that do not
            match.
    """
    where = "annotation dict" if isinstance(ann, dict) else str(ann)
    dataset = ann if isinstance(ann, dict) else read_coco_json(ann)
    levels = crowd_levels(dataset, where)
    kset = subset_set(joints) if joints is not None else CROWDPOSE14
    gt = quiet_coco(crowdpose_ground_truth(dataset, joints, where=where))
    dets = [d for d in load_results(results) if any(float(s) > 0 for s in d["keypoints"][2::3])]
    ids = sorted(gt.getImgIds()) if image_ids is None else sorted(int(i) for i in image_ids)
    ev, text = coco_eval(gt, dets, ids, kset, summarize=True)
    out: dict = {"scored_keypoints": list(kset.names), "num_results": len(dets)}
    if dets:
        out.update({name: float(ev.stats[i]) for name, i in zip(STAT_NAMES, _COCO_STAT_INDEX)})
        out["summary"] = "\n".join(line for line in text.splitlines()
                                   if "Average" in line and "area=   all" in line)
    else:
        out.update({name: 0.0 for name in STAT_NAMES})
        out["summary"] = "no results: every metric is 0"
    out["images_per_level"] = {}
    for level in LEVELS:
        level_ids = [i for i in ids if levels.get(i) == level]
        out["images_per_level"][level] = len(level_ids)
        if not level_ids:
            out[f"AP_{level}"] = -1.0
            continue
        ev_level, _ = coco_eval(gt, dets, level_ids, kset)
        out[f"AP_{level}"] = mean_ap(ev_level.eval["precision"]) if dets else (
            0.0 if _has_persons(gt, level_ids) else -1.0)
    return out


def _has_persons(gt, image_ids) -> bool:
    """Whether any evaluated (non-ignored) person is in these images: not crowd, ``num_keypoints`` > 0."""
    anns = gt.loadAnns(gt.getAnnIds(imgIds=list(image_ids)))
    return any(not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0 for a in anns)

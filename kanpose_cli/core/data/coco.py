"""The one place that reads COCO keypoint annotation files: for training (person instances), evaluation (the
image list and the ground-truth person boxes) and export parity checks (real person crops).

Loads a COCO-format keypoint annotation file (``person_keypoints_val2017.json`` or any file with the same
fields); evaluation goes through pycocotools, with its stdout prints kept out of the CLI output.

One ground-truth person convention everywhere (:func:`gt_person_box`), as ViTPose / mmpose 0.x
``TopDownCocoDataset`` with ``use_gt_bbox=True`` [code: ViTPose
``mmpose/datasets/datasets/top_down/topdown_coco_dataset.py::_load_coco_keypoint_annotation_kernel``]:
non-crowd annotations only; each box ``[x, y, w, h]`` is sanitised to ``x1 = max(0, x)``, ``y1 = max(0, y)``,
``x2 = min(W - 1, x1 + max(0, w - 1))``, ``y2 = min(H - 1, y1 + max(0, h - 1))`` and kept only if
``area > 0`` (when present) and ``x2 > x1``, ``y2 > y1``; instances without any labelled keypoint are dropped;
every box gets score 1 when used as a detection.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import read_json_file, write_json_atomic
from kanpose_cli.core.keypoints import KeypointSet, keypoint_set_from_coco

STANDARD_ANN = "annotations/person_keypoints_{split}.json"


def gt_person_box(ann: dict, width: float, height: float) -> np.ndarray | None:
    """The ground-truth person box of one annotation under the module's convention.

    Args:
        ann: a COCO annotation dict (``bbox`` xywh, ``keypoints``, ``iscrowd``, ``num_keypoints``, ``area``).
        width, height: image size in pixels (0 = unknown: the box is then not clipped on that side).

    Returns:
        (4,) float64 ``x1, y1, x2, y2`` in image pixels, or None when the annotation is a crowd region, has no
        box, no labelled keypoint, or an empty box.
    """
    if ann.get("iscrowd", 0) or "bbox" not in ann or "keypoints" not in ann:
        return None
    kp = ann["keypoints"]
    if int(ann.get("num_keypoints", 1)) <= 0 or not any(float(v) > 0 for v in kp[2::3]):
        return None
    if "area" in ann and float(ann["area"]) <= 0:
        return None
    x, y, w, h = (float(v) for v in ann["bbox"])
    return sanitize_xywh(x, y, w, h, width, height)


def sanitize_xywh(x: float, y: float, w: float, h: float, width: float, height: float) -> np.ndarray | None:
    """A COCO ``[x, y, w, h]`` box (pixels) as the module's ``x1, y1, x2, y2`` (inclusive pixels, clipped to the
    image; ``width``/``height`` 0 = unknown, not clipped on that side), or None when it is empty. Every reader of
    person boxes (COCO JSON, YOLO-pose labels) goes through it."""
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = x1 + max(0.0, w - 1.0)
    y2 = y1 + max(0.0, h - 1.0)
    if width:
        x2 = min(width - 1.0, x2)
    if height:
        y2 = min(height - 1.0, y2)
    if not (x2 > x1 and y2 > y1):
        return None
    return np.array([x1, y1, x2, y2], dtype=np.float64)


def read_coco_json(path: str | Path) -> dict:
    """A COCO annotation file as a dict (``images`` and ``annotations`` lists checked).

    Raises:
        InputError: file missing, unreadable, not JSON, or not a COCO annotation dict; the message names the file.
    """
    path = Path(path).expanduser()
    ann = read_json_file(path, "annotation file")
    if not isinstance(ann, dict) or not isinstance(ann.get("images"), list) or not isinstance(
            ann.get("annotations"), list):
        raise InputError(f"{path} is not a COCO annotation file (needs 'images' and 'annotations' lists)")
    return ann


def read_coco_keypoint_set(ann_file: str | Path) -> KeypointSet:
    """The keypoint set of an annotation file (:func:`~kanpose_cli.core.keypoints.keypoint_set_from_coco`: from its
    ``categories[0]``). Raises InputError as :func:`read_coco_json` and it."""
    path = Path(ann_file).expanduser()
    return keypoint_set_from_coco(read_coco_json(path), str(path))


def _ann_label(a) -> str:
    return f"ann id {a.get('id')}" if isinstance(a, dict) and a.get("id") is not None else "an annotation"


def load_coco_instances(ann_file: str | Path, images_dir: str | Path, keypoints: KeypointSet | int = 17,
                        check_files: bool = True, data: dict | None = None) -> list[Instance]:
    """Read a COCO keypoint annotation file into training instances (the persons :func:`gt_person_box` keeps).

    Args:
        ann_file: COCO JSON with ``images``, ``annotations`` (``bbox`` xywh, ``keypoints`` 3K).
        images_dir: folder holding the images (``file_name`` is relative to it).
        keypoints: the keypoint set of the file (or its K): every annotation must have 3K ``keypoints`` values.
        check_files: raise if an image file referenced by a kept instance is missing.
        data: the file already read (:func:`read_coco_json`), to read it once.

    Returns:
        Instances in annotation order; ``keypoints`` (K, 3) ``x, y, v`` in image pixels.

    Raises:
        InputError: missing/unreadable/malformed annotation file, one line naming the file and the entry (``ann id
            12: 'keypoints' has 50 values, expected 3×17``), missing images folder or image files.
    """
    ann_file, images_dir = Path(ann_file), Path(images_dir)
    num_keypoints = keypoints if isinstance(keypoints, int) else keypoints.num_keypoints
    data = read_coco_json(ann_file) if data is None else data
    if not images_dir.is_dir():
        raise InputError(f"images folder not found: {images_dir}")
    images = {}
    for n, im in enumerate(data["images"]):
        try:
            images[int(im["id"])] = (str(im["file_name"]), int(im["width"]), int(im["height"]))
        except (KeyError, TypeError, ValueError):
            what = f"image id {im.get('id')}" if isinstance(im, dict) and "id" in im else f"images[{n}]"
            raise InputError(f"{ann_file}: {what}: needs 'id', 'file_name', 'width' and 'height'") from None
    out: list[Instance] = []
    for n, a in enumerate(data["annotations"]):
        if not isinstance(a, dict):
            raise InputError(f"{ann_file}: annotations[{n}] is not an object")
        where = f"{ann_file}: {_ann_label(a)}"
        try:
            im = images.get(int(a["image_id"]))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: 'image_id' missing or not an integer") from None
        if im is None or a.get("iscrowd", 0):
            continue
        kp_raw = a.get("keypoints")
        if kp_raw is None:
            continue
        if not isinstance(kp_raw, list) or not all(isinstance(v, (int, float)) for v in kp_raw):
            raise InputError(f"{where}: 'keypoints' must be a list of numbers")
        if len(kp_raw) != 3 * num_keypoints:
            raise InputError(f"{where}: 'keypoints' has {len(kp_raw)} values, expected 3×{num_keypoints}")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise InputError(f"{where}: 'bbox' must be 4 numbers [x, y, width, height]")
        file_name, W, H = im
        try:
            box = gt_person_box(a, W, H)
        except (TypeError, ValueError):
            raise InputError(f"{where}: 'num_keypoints' / 'area' must be numbers") from None
        if box is None:
            continue
        kp = np.asarray(kp_raw, dtype=np.float64).reshape(-1, 3)
        path = images_dir / file_name
        if check_files and not path.is_file():
            raise InputError(f"{ann_file}: image {path} not found")
        ann_id = a.get("id", len(out))
        try:
            ann_id = int(ann_id)
        except (TypeError, ValueError):
            ann_id = len(out)
        out.append(Instance(str(path), int(a["image_id"]), ann_id, W, H, box, kp))
    return out


def load_coco_source(ann_file: str | Path, images_dir: str | Path, target: KeypointSet,
                     positional: bool = False) -> list[Instance]:
    """A COCO keypoint file's people on the model's keypoint set ``target``.

    The file's own set (:func:`~kanpose_cli.core.keypoints.keypoint_set_from_coco`) reaches ``target`` unchanged
    (same names; or in order when ``positional``, the user having declared the set, or when the file names no
    keypoint) or through a declared joint mapping (:func:`~kanpose_cli.core.data.dataset_keypoints.source_mapping`).
    People whose mapped keypoints are all unlabelled are dropped.

    Raises:
        InputError: as :func:`load_coco_instances`; no way from the file's set to ``target`` (one line).
    """
    from kanpose_cli.core.data.dataset_keypoints import map_instances, source_mapping

    ann_file = Path(ann_file).expanduser()
    data = read_coco_json(ann_file)
    own = keypoint_set_from_coco(data, str(ann_file))
    mapping = source_mapping(own, target, str(ann_file), positional=positional)
    instances = load_coco_instances(ann_file, images_dir, own, data=data)
    return map_instances(instances, mapping, target)


def subset_annotations(ann_file: str | Path, out_file: str | Path, num_persons: int, seed: int = 0,
                       min_keypoints: int = 10) -> Path:
    """Write a COCO keypoint file with whole images whose persons all pass the training filters, until
    ``num_persons`` persons are collected (used by the overfit test). Images are taken in id order.

    Returns:
        ``out_file``.
    """
    data = read_coco_json(ann_file)
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


def standard_layout(data_dir: str | Path, split: str = "val2017") -> tuple[Path, Path]:
    """``(annotation file, images folder)`` of the standard COCO layout
    ``DIR/annotations/person_keypoints_<split>.json`` and ``DIR/<split>/`` (paths are returned whether or not they
    exist)."""
    data_dir = Path(data_dir).expanduser()
    return data_dir / STANDARD_ANN.format(split=split), data_dir / split


def quiet_coco(ann: str | Path | dict):
    """A ``pycocotools.coco.COCO`` built from a file path or an already-parsed dict, without its prints.

    Raises:
        InputError: file missing, unreadable, not JSON, or not a COCO annotation dict (needs ``images`` and
            ``annotations`` lists).
    """
    from pycocotools.coco import COCO

    if not isinstance(ann, dict):
        where = str(ann)
        ann = read_coco_json(ann)
    else:
        where = "annotation dict"
        if not isinstance(ann.get("images"), list) or not isinstance(ann.get("annotations"), list):
            raise InputError(f"{where} is not a COCO annotation file (needs 'images' and 'annotations' lists)")
    coco = COCO()
    coco.dataset = _complete_for_cocoeval(ann)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise InputError(f"{where}: malformed COCO annotations ({exc!r})") from None
    return coco


def _complete_for_cocoeval(ann: dict) -> dict:
    """``ann`` with the two fields COCOeval reads that other datasets' COCO-style files may lack (OneHand10K's has no
    ``num_keypoints``): ``num_keypoints`` = the count of labelled keypoints (v > 0) and ``area`` = box area × 0.53
    (ultralytics' stand-in for the segment area in OKS). Keypoint annotations spread over several categories that
    share one skeleton (AP-10K: one category per species) become one category, id 1, the id kanpose writes its
    results with: a keypoint model predicts keypoints, not the species, and pycocotools' keypoint OKS only matches
    results to annotations of the same category. Annotations that need nothing are kept as they are; the others are
    copied, never changed in place."""
    anns = ann["annotations"]
    cats = {a.get("category_id") for a in anns if isinstance(a, dict) and "keypoints" in a}
    merge = len(cats) > 1
    if not merge and all(not isinstance(a, dict) or "keypoints" not in a or ("num_keypoints" in a and "area" in a)
                         for a in anns):
        return ann
    out = []
    for a in anns:
        if isinstance(a, dict) and "keypoints" in a and (merge or "num_keypoints" not in a or "area" not in a):
            a = dict(a)
            if merge:
                a["category_id"] = 1
            if "num_keypoints" not in a and isinstance(a["keypoints"], list):
                a["num_keypoints"] = sum(1 for v in a["keypoints"][2::3] if isinstance(v, (int, float)) and v > 0)
            if "area" not in a and isinstance(a.get("bbox"), list) and len(a["bbox"]) == 4:
                a["area"] = float(a["bbox"][2]) * float(a["bbox"][3]) * 0.53
        out.append(a)
    if merge:  # one category, id 1, the one results are written with
        first = next((c for c in ann.get("categories", []) if isinstance(c, dict) and "keypoints" in c), {})
        return {**ann, "annotations": out, "categories": [{**first, "id": 1, "name": first.get("name", "object")}]}
    return {**ann, "annotations": out}


@dataclass(frozen=True)
class CocoImage:
    """One image of the annotation file: COCO ``id``, ``path`` (images folder / ``file_name``), ``width``,
    ``height`` in pixels."""

    id: int
    path: Path
    width: int
    height: int


class CocoKeypointData:
    """A COCO keypoint dataset opened for evaluation.

    Args:
        ann_file: COCO keypoint annotation JSON (``images``, ``annotations`` with ``keypoints``, ``bbox``,
            ``iscrowd``, ``num_keypoints``; ``categories``).
        images_dir: folder holding the images named by ``file_name``; None when only scoring existing results.

    Attributes:
        ann_file, images_dir, coco (the pycocotools ``COCO`` object), image_ids (sorted ascending).

    Raises:
        InputError: annotation file missing/malformed, or images folder missing.
    """

    def __init__(self, ann_file: str | Path, images_dir: str | Path | None = None):
        self.ann_file = Path(ann_file).expanduser()
        self.images_dir = Path(images_dir).expanduser() if images_dir is not None else None
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise InputError(f"images folder not found: {self.images_dir}")
        self.coco = quiet_coco(self.ann_file)
        self.image_ids: list[int] = sorted(int(i) for i in self.coco.getImgIds())

    def select(self, image_ids: list[int] | None = None, max_images: int | None = None) -> list[int]:
        """The image ids to evaluate: ``image_ids`` (checked against the file) or all, then the first
        ``max_images`` of them. Raises InputError for ids not in the annotation file."""
        ids = self.image_ids
        if image_ids is not None:
            known = set(self.image_ids)
            missing = [i for i in image_ids if int(i) not in known]
            if missing:
                raise InputError(f"image id(s) not in {self.ann_file.name}: {', '.join(map(str, missing[:5]))}")
            ids = [int(i) for i in image_ids]
        if max_images is not None:
            ids = ids[:max_images]
        return list(ids)

    def image(self, image_id: int) -> CocoImage:
        """:class:`CocoImage` of one id (``path`` relative to ``images_dir``; needs ``images_dir``)."""
        info = self.coco.imgs[int(image_id)]
        folder = self.images_dir if self.images_dir is not None else Path(".")
        return CocoImage(int(image_id), folder / info["file_name"], int(info.get("width", 0)),
                         int(info.get("height", 0)))

    def gt_boxes(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth person boxes of one image (convention in the module docstring).

        Returns:
            ``(boxes (N, 4) float32 xyxy original-image pixels, scores (N,) float32 all 1.0)``.
        """
        info = self.coco.imgs[int(image_id)]
        width, height = float(info.get("width", 0)), float(info.get("height", 0))
        boxes = []
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=int(image_id), iscrowd=False)):
            box = gt_person_box(ann, width, height)
            if box is not None:
                boxes.append(box)
        arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return arr, np.ones(len(arr), dtype=np.float32)

    def gt_as_results(self, image_ids: list[int] | None = None) -> list[dict]:
        """The ground truth written as COCO keypoint results (non-crowd instances with labelled keypoints,
        score 1): scoring them must give AP 1.0. For tests and sanity checks."""
        ids = self.image_ids if image_ids is None else image_ids
        out = []
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=ids, iscrowd=False)):
            if ann.get("num_keypoints", 0) > 0:
                out.append({"image_id": int(ann["image_id"]), "category_id": int(ann.get("category_id", 1)),
                            "keypoints": [float(v) for v in ann["keypoints"]], "score": 1.0})
        return out

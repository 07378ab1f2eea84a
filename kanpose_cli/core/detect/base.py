"""Person detectors: image -> person boxes. Implementations: the YOLO detector (``yolo.py``, the only module that
imports ultralytics), boxes from a COCO detection-results file, and the whole image as one person."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError


class WholeImageDetector:
    """``--detector none``: the whole image is one person (box ``0, 0, W, H``, score 1)."""

    name = "none (whole image)"

    def __call__(self, image_bgr, path=""):
        h, w = image_bgr.shape[:2]
        return np.array([[0, 0, w, h]], dtype=np.float32), np.ones(1, dtype=np.float32)


def image_id_from_path(path: str | Path) -> int | None:
    """COCO image id from a file name such as ``000000000785.jpg`` (the digits of the stem), else None."""
    m = re.fullmatch(r"(?:COCO_\w+?_)?0*(\d+)", Path(path).stem)
    return int(m.group(1)) if m else None


class BoxFileDetector:
    """``--boxes FILE``: person boxes from a COCO detection-results JSON (``[{"image_id", "category_id", "bbox":
    [x, y, w, h], "score"}, ...]``, e.g. ``COCO_val2017_detections_AP_H_56_person.json``).

    Images are matched by the COCO id in their file name. Only ``category_id == 1`` (person) with
    ``score >= score_thr`` are used.

    Raises:
        InputError: unreadable or malformed file.
    """

    def __init__(self, path: str | Path, score_thr: float = 0.0):
        self.path = Path(path)
        self.name = f"boxes from {self.path.name} (score ≥ {score_thr})"
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise InputError(f"boxes file not found: {self.path}") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read boxes file {self.path}: {exc}") from None
        if not isinstance(entries, list):
            raise InputError(f"{self.path}: expected a JSON list of COCO detection results")
        self.by_image: dict[int, list[tuple[list[float], float]]] = {}
        try:
            for e in entries:
                if int(e.get("category_id", 1)) != 1 or float(e.get("score", 1.0)) < score_thr:
                    continue
                x, y, w, h = (float(v) for v in e["bbox"])
                self.by_image.setdefault(int(e["image_id"]), []).append(
                    ([x, y, x + w, y + h], float(e.get("score", 1.0))))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{self.path}: malformed detection entry ({exc!r})") from None

    def boxes_for(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.by_image.get(int(image_id), [])
        boxes = np.array([r[0] for r in rows], dtype=np.float32).reshape(-1, 4)
        return boxes, np.array([r[1] for r in rows], dtype=np.float32)

    def __call__(self, image_bgr, path=""):
        image_id = image_id_from_path(path)
        if image_id is None:
            raise InputError(f"--boxes: cannot tell the COCO image id of {Path(path).name} "
                             "(expected digits in its name)")
        return self.boxes_for(image_id)

"""Output writers for ``kanpose predict``: per-image JSON, per-video JSON Lines, COCO results, annotated media.

Output schema (documented in README): x before y, pixels of the original image, boxes ``xyxy``, keypoints below
the keypoint threshold written as ``null``. Every file is written atomically (temp file + rename) or streamed and
flushed per frame, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from kanpose_cli.core.errors import InputError
from kanpose_cli.core.results import PoseResult


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def next_run_dir(parent: str | Path, prefix: str = "exp") -> Path:
    """Create and return ``parent/<prefix>N`` with the smallest N ≥ 1 not yet used (ultralytics-style)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = parent / f"{prefix}{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def unique_stem(path: str, used: set[str]) -> str:
    """File stem for outputs of ``path``, made unique within a run (``a.jpg`` and ``a.png`` -> ``a``, ``a_1``)."""
    stem = Path(path).stem or "frame"
    candidate, n = stem, 1
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return candidate


class PredictionWriter:
    """Writes everything one predict run produces into ``run_dir``.

    Args:
        run_dir: output folder. header: shared fields of every JSON (model, weights, detector, keypoint names,
            skeleton). kpt_thr: keypoints below it are ``null`` in JSON and not drawn. save_images: annotated
            images/videos. save_json: per-image JSON / per-video JSONL. save_coco: one COCO results JSON at the end.
        label: text stamped on annotated images (e.g. for random weights).
    """

    def __init__(self, run_dir: Path, header: dict, kpt_thr: float = 0.3, save_images: bool = True,
                 save_json: bool = True, save_coco: bool = False, label: str | None = None, draw=None):
        self.run_dir, self.header, self.kpt_thr = Path(run_dir), header, kpt_thr
        self.save_images, self.save_json, self.save_coco, self.label = save_images, save_json, save_coco, label
        self.draw = draw
        self.coco: list[dict] = []
        self._stems: set[str] = set()
        self._video_writer = None
        self._jsonl = None
        self.files: list[Path] = []

    def write_image(self, image_bgr: np.ndarray, result: PoseResult, image_id: int) -> None:
        """Outputs for one still image."""
        stem = unique_stem(result.path, self._stems)
        if self.save_json:
            h, w = result.image_size
            data = {"image": result.path, "width": w, "height": h, **self.header,
                    "instances": result.instances(self.kpt_thr)}
            out = self.run_dir / f"{stem}.json"
            write_json_atomic(out, data)
            self.files.append(out)
        if self.save_images:
            out = self.run_dir / f"{stem}.jpg"
            canvas = self.draw(image_bgr, result, kpt_thr=self.kpt_thr, label=self.label)
            if not cv2.imwrite(str(out), canvas):
                raise InputError(f"cannot write {out}")
            self.files.append(out)
        if self.save_coco:
            self.coco.extend(result.to_coco(image_id))

    def write_frame(self, image_bgr: np.ndarray, result: PoseResult, fps: float, image_id: int) -> None:
        """Outputs for one video/webcam frame: streamed JSONL line and annotated video frame, flushed each time."""
        if self._jsonl is None:
            stem = unique_stem(result.path.replace(":", "_"), self._stems)
            if self.save_json:
                path = self.run_dir / f"{stem}.jsonl"
                self._jsonl = open(path, "w")
                h, w = result.image_size
                self._jsonl.write(json.dumps({"video": result.path, "width": w, "height": h, "fps": fps,
                                              **self.header}) + "\n")
                self.files.append(path)
            if self.save_images:
                path = self.run_dir / f"{stem}.mp4"
                h, w = image_bgr.shape[:2]
                self._video_writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                self.files.append(path)
        if self._jsonl is not None:
            self._jsonl.write(json.dumps({"frame_id": result.frame_index, "time_s": round(result.time_s or 0.0, 4),
                                          "instances": result.instances(self.kpt_thr)}) + "\n")
            self._jsonl.flush()
        if self._video_writer is not None:
            self._video_writer.write(self.draw(image_bgr, result, kpt_thr=self.kpt_thr, label=self.label))
        if self.save_coco:
            self.coco.extend(result.to_coco(image_id))

    def close(self) -> None:
        """Finish streamed files and write the COCO results (also after an interruption)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._video_writer is not None:
            self._video_writer.release()
            self._video_writer = None
        if self.save_coco:
            out = self.run_dir / "coco_results.json"
            write_json_atomic(out, self.coco)
            self.files.append(out)

"""Output writers for ``kanpose predict``: per-image JSON, per-video JSON Lines, COCO results, annotated media.

Output schema (documented in README): x before y, pixels of the original image, boxes ``xyxy``, keypoints below
the keypoint threshold written as ``null``. Every file is written atomically (temp file + rename,
:mod:`kanpose_cli.core.io`) or streamed and flushed per frame, so an interrupted run keeps what it finished. The run
folder is created with the first file written into it: a run whose every input fails leaves no folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from kanpose_cli.core.data.draw import draw_poses
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import RunDir, atomic_path, unique_stem, write_json_atomic
from kanpose_cli.core.results import PoseResult


class PredictionWriter:
    """Writes everything one predict run produces into ``run_dir``.

    Args:
        run_dir: output folder: a lazy :class:`~kanpose_cli.core.io.RunDir` (from ``next_run_dir``, created with
            the first file) or a plain path (created when needed). header: shared fields of every JSON (model,
            weights, detector, keypoint names, skeleton). kpt_thr: keypoints below it are ``null`` in JSON and not
            drawn. save_images: annotated images/videos. save_json: per-image JSON / per-video JSONL. save_coco: one
            COCO results JSON at the end (only if at least one image or frame was written).
        label: text stamped on annotated images (e.g. for random weights).
        draw: ``draw(image_bgr, result, kpt_thr=, label=) -> image_bgr`` for the annotated media; default
            :func:`~kanpose_cli.core.data.draw.draw_poses` (boxes, skeleton and keypoints).
    """

    def __init__(self, run_dir: RunDir | str | Path, header: dict, kpt_thr: float = 0.3, save_images: bool = True,
                 save_json: bool = True, save_coco: bool = False, label: str | None = None,
                 draw: Callable[..., np.ndarray] | None = None):
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else Path(run_dir)
        self.header, self.kpt_thr = header, kpt_thr
        self.save_images, self.save_json, self.save_coco, self.label = save_images, save_json, save_coco, label
        self.draw = draw if draw is not None else draw_poses
        self.written = 0  # images and frames written
        self.coco: list[dict] = []
        self._stems: set[str] = set()
        self._video_writer = None
        self._jsonl = None
        self.files: list[Path] = []

    def _out(self, name: str) -> Path:
        """Path of an output file; creates the run folder (the first time)."""
        out = Path(self.run_dir / name)
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def write_image(self, image_bgr: np.ndarray, result: PoseResult, image_id: int) -> None:
        """Outputs for one still image."""
        stem = unique_stem(result.path, self._stems)
        if self.save_json:
            h, w = result.image_size
            data = {"image": result.path, "width": w, "height": h, **self.header,
                    "instances": result.instances(self.kpt_thr)}
            out = write_json_atomic(self._out(f"{stem}.json"), data)
            self.files.append(out)
        if self.save_images:
            canvas = self.draw(image_bgr, result, kpt_thr=self.kpt_thr, label=self.label)
            out = self._out(f"{stem}.jpg")
            with atomic_path(out) as tmp:
                if not cv2.imwrite(str(tmp), canvas):
                    raise InputError(f"cannot write {out}")
            self.files.append(out)
        if self.save_coco:
            self.coco.extend(result.to_coco(image_id))
        self.written += 1

    def write_frame(self, image_bgr: np.ndarray, result: PoseResult, fps: float, image_id: int) -> None:
        """Outputs for one video/webcam frame: streamed JSONL line and annotated video frame, flushed each time."""
        if self._jsonl is None:
            stem = unique_stem(result.path.replace(":", "_"), self._stems)
            if self.save_json:
                path = self._out(f"{stem}.jsonl")
                self._jsonl = open(path, "w")
                h, w = result.image_size
                self._jsonl.write(json.dumps({"video": result.path, "width": w, "height": h, "fps": fps,
                                              **self.header}) + "\n")
                self.files.append(path)
            if self.save_images:
                path = self._out(f"{stem}.mp4")
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
        self.written += 1

    def close(self) -> None:
        """Finish streamed files and write the COCO results (also after an interruption; not when nothing was
        written, so a run whose every input failed leaves no folder)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._video_writer is not None:
            self._video_writer.release()
            self._video_writer = None
        if self.save_coco and self.written:
            out = write_json_atomic(self._out("coco_results.json"), self.coco)
            self.files.append(out)

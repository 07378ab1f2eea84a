"""Output writers for ``kanpose predict``: per-image JSON, per-video JSON Lines, COCO results, annotated media, and
the per-track CSV of a tracked video (``tracks.csv``: one row per frame, person and keypoint).

Output schema (documented in README): x before y, pixels of the original image, boxes ``xyxy``, keypoints below
the keypoint threshold written as ``null``. Every file is written atomically (temp file + rename,
:mod:`kanpose_cli.core.io`) or streamed and flushed per frame, so an interrupted run keeps what it finished. The run
folder is created with the first file written into it: a run whose every input fails leaves no folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from kanpose_cli.core.draw import draw_poses
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
            :func:`~kanpose_cli.core.draw.draw_poses` (boxes, skeleton and keypoints; boxes coloured by track).
        save_tracks: write ``tracks.csv`` for tracked video frames (:class:`TrackCsvWriter`).
        stems: path -> output file stem fixed beforehand (a torchrun shard: stems unique over all ranks' inputs);
            paths not in it get :func:`~kanpose_cli.core.io.unique_stem`.
        coco_file: write ``coco_results.json`` on :meth:`close` (False: a torchrun rank whose entries rank 0 merges;
            :attr:`coco` and :attr:`coco_paths` still collect them).
    """

    def __init__(self, run_dir: RunDir | str | Path, header: dict, kpt_thr: float = 0.3, save_images: bool = True,
                 save_json: bool = True, save_coco: bool = False, label: str | None = None,
                 draw: Callable[..., np.ndarray] | None = None, save_tracks: bool = False,
                 stems: dict[str, str] | None = None, coco_file: bool = True):
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else Path(run_dir)
        self.header, self.kpt_thr = header, kpt_thr
        self.save_images, self.save_json, self.save_coco, self.label = save_images, save_json, save_coco, label
        self.save_tracks = save_tracks
        self.draw = draw if draw is not None else draw_poses
        self.written = 0  # images and frames written
        self.coco: list[dict] = []
        self.coco_paths: list[str] = []  # the input path of each entry of `coco`
        self.stems, self.coco_file = dict(stems or {}), coco_file
        self._stems: set[str] = set()
        self._video_writer = None
        self._jsonl = None
        self._tracks: TrackCsvWriter | None = None
        self.files: list[Path] = []

    def _out(self, name: str) -> Path:
        """Path of an output file; creates the run folder (the first time)."""
        out = Path(self.run_dir / name)
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def write_image(self, image_bgr: np.ndarray, result: PoseResult, image_id: int) -> None:
        """Outputs for one still image."""
        stem = self.stems.get(result.path) or unique_stem(result.path, self._stems)
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
            self._add_coco(result, image_id)
        self.written += 1

    def _add_coco(self, result: PoseResult, image_id: int) -> None:
        entries = result.to_coco(image_id)
        self.coco.extend(entries)
        self.coco_paths.extend([result.path] * len(entries))

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
        if self.save_tracks and result.track_ids is not None:
            if self._tracks is None:
                path = self._out(TrackCsvWriter.NAME)
                self._tracks = TrackCsvWriter(path, kpt_thr=self.kpt_thr)
                self.files.append(path)
            self._tracks.write(result)
        if self.save_coco:
            self._add_coco(result, image_id)
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
        if self._tracks is not None:
            self._tracks.close()
            self._tracks = None
        if self.save_coco and self.coco_file and self.written:
            out = write_json_atomic(self._out("coco_results.json"), self.coco)
            self.files.append(out)


class TrackCsvWriter:
    """``tracks.csv``: the keypoints of every tracked person, one row per frame, person and keypoint, streamed and
    flushed frame by frame (an interrupted run keeps every finished frame).

    Columns: ``frame`` (frame number in the video, from 0), ``time_s`` (seconds from the start), ``track_id``
    (≥ 1, stable across frames), ``keypoint`` (name, e.g. ``left_wrist``), ``x``, ``y`` (pixels of the original
    frame; empty when the score is below ``kpt_thr``, as ``null`` in the JSON), ``score`` (in [0, 1]). Plain
    comma-separated UTF-8 with a header row: ``pandas.read_csv("tracks.csv")`` or a spreadsheet opens it as is.
    """

    NAME = "tracks.csv"
    COLUMNS = ("frame", "time_s", "track_id", "keypoint", "x", "y", "score")

    def __init__(self, path: str | Path, kpt_thr: float = 0.3):
        self.path, self.kpt_thr = Path(path), kpt_thr
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(self.COLUMNS)
        self.rows = 0

    def write(self, result: PoseResult) -> None:
        """Rows of one tracked frame (``result.track_ids`` set)."""
        names = result.keypoint_set.names
        frame, t = result.frame_index, round(float(result.time_s or 0.0), 4)
        for tid, kpts, scores in zip(result.track_ids, result.keypoints, result.keypoint_scores):
            for name, (x, y), s in zip(names, kpts, scores):
                xy = (round(float(x), 2), round(float(y), 2)) if s >= self.kpt_thr else ("", "")
                self._csv.writerow((frame, t, int(tid), name, *xy, round(float(s), 4)))
                self.rows += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()

"""Input sources for ``kanpose predict``: an image, a folder, a glob, a video file or a webcam index.

:func:`open_source` parses the SOURCE argument and returns a :class:`Source`; iterating it yields :class:`Frame`
objects one at a time (streaming: a video is never held in memory). An image that cannot be decoded yields a
``Frame`` with ``image=None`` and an ``error`` so callers can report and skip it.
"""

from __future__ import annotations

import glob as globlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from kanpose_cli.core.errors import InputError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


@dataclass
class Frame:
    """One image or video frame.

    Attributes:
        image: (H, W, 3) uint8 BGR, or None if it could not be read.
        path: file path (``webcam:N`` for a camera). index: frame number within a video/stream (else None).
        time_s: timestamp of a video frame in seconds. error: why ``image`` is None.
    """

    image: np.ndarray | None
    path: str
    index: int | None = None
    time_s: float | None = None
    error: str | None = None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 BGR; raises InputError with the reason if it cannot."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path} is not a decodable image")
    return image


class Source:
    """Base of the sources: ``kind`` (image|folder|glob|video|webcam), ``description``, ``__len__`` if known."""

    kind = ""
    is_stream = False

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def total(self) -> int | None:
        return None


class ImageListSource(Source):
    """A list of image files (single image, folder contents or glob matches), read lazily in order.

    ``preloaded`` maps paths to images already decoded (a single image is decoded by :func:`open_source` to fail
    early); they are handed out once instead of being read again.
    """

    def __init__(self, paths: list[Path], kind: str, description: str,
                 preloaded: dict[Path, np.ndarray] | None = None):
        self.paths, self.kind, self.description = paths, kind, description
        self._preloaded = dict(preloaded or {})

    def total(self) -> int:
        return len(self.paths)

    def __iter__(self):
        for p in self.paths:
            image = self._preloaded.pop(p, None)
            if image is not None:
                yield Frame(image, str(p))
                continue
            try:
                yield Frame(read_image(p), str(p))
            except InputError as exc:
                yield Frame(None, str(p), error=str(exc))


class VideoSource(Source):
    """Frames of a video file or webcam through ``cv2.VideoCapture``.

    A frame that cannot be decoded in the middle of a video file (its frame count says more follow) is yielded as a
    ``Frame`` with ``image=None`` and an ``error``, and reading goes on with the next frame; frame numbers and
    times keep counting the lost frame (``time_s = index / fps``). Reading stops at the end of the file, after
    :attr:`MAX_BAD_FRAMES` undecodable frames in a row, or (webcam, or a file of unknown length) at the first
    failed read.

    Raises:
        InputError: the file/camera cannot be opened or yields no frame.
    """

    is_stream = True
    MAX_BAD_FRAMES = 25

    def __init__(self, target: str | int, kind: str):
        self.target, self.kind = target, kind
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            self.cap.release()
            what = f"webcam {target}" if kind == "webcam" else f"video {target} (unsupported or corrupt format)"
            raise InputError(f"cannot open {what}")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0
        if self.fps <= 0 or self.fps > 1000:
            self.fps = 30.0
        frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._total = frames if kind == "video" and frames > 0 else None
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.description = f"webcam {target}" if kind == "webcam" else f"video {target}"
        self.path = f"webcam:{target}" if kind == "webcam" else str(target)

    def total(self):
        return self._total

    def __iter__(self):
        index = decoded = bad_run = 0
        try:
            while True:
                ok, image = self.cap.read()
                if not ok or image is None:
                    bad_run += 1
                    if self._total is None or index >= self._total or bad_run > self.MAX_BAD_FRAMES:
                        break
                    yield Frame(None, self.path, index=index, time_s=index / self.fps,
                                error=f"frame {index} could not be decoded")
                    index += 1
                    continue
                bad_run = 0
                yield Frame(image, self.path, index=index, time_s=index / self.fps)
                index += 1
                decoded += 1
        finally:
            self.cap.release()
        if decoded == 0:
            raise InputError(f"{self.description} yielded no frames (unsupported or corrupt)")


def _list_folder(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError:
        raise InputError(f"cannot read folder {folder}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
    return [Path(e.path) for e in entries if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS]


def sample_images() -> list[Path]:
    """The sample photos shipped inside the installed ultralytics package (``assets/bus.jpg``, ``zidane.jpg``),
    found without importing ultralytics (whose first import prints a settings banner). Empty if not installed."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.origin:
        return []
    folder = Path(spec.origin).parent / "assets"
    return sorted(p for p in folder.glob("*.jpg") if p.is_file())


def demo_source() -> Source:
    """The ``kanpose predict --demo`` source: :func:`sample_images`, real photos with people in them.

    Raises:
        InputError: the ultralytics package (a kanpose dependency) or its sample photos are missing.
    """
    images = sample_images()
    if not images:
        raise InputError("no demo images: the ultralytics package and its assets/*.jpg sample photos are missing")
    return ImageListSource(images, "demo", f"{len(images)} demo images ({', '.join(p.name for p in images)})")


def open_source(source: str) -> Source:
    """Parse the SOURCE argument.

    - an integer (``0``) -> webcam; a path with a video extension -> video; a folder -> its images (sorted, not
      recursive); a pattern with ``* ? [`` -> glob matches with image extensions; another existing file -> image.

    Raises:
        InputError: missing path, a folder or glob without images, an unsupported file type, a single image that
            cannot be decoded, a camera or video that does not open.
    """
    text = str(source).strip()
    if text.isdigit():
        return VideoSource(int(text), "webcam")
    path = Path(text).expanduser()
    if any(ch in text for ch in "*?[") and not path.exists():
        matches = [Path(p) for p in sorted(globlib.glob(text, recursive=True))]
        images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise InputError(f"no images match {text!r}")
        return ImageListSource(images, "glob", f"{len(images)} images matching {text}")
    if path.is_dir():
        images = _list_folder(path)
        if not images:
            raise InputError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {path}")
        return ImageListSource(images, "folder", f"{len(images)} images in {path}")
    if not path.exists():
        raise InputError(f"no such file, folder, glob or webcam index: {text}")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(str(path), "video")
    if suffix in IMAGE_EXTENSIONS:  # decoded now: a single unreadable image is one error line before the run starts
        return ImageListSource([path], "image", f"image {path}", preloaded={path: read_image(path)})
    raise InputError(f"unsupported file type {suffix or '(none)'} for {path}; expected an image or a video")

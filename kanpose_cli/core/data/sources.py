"""Input sources for ``kanpose predict``: an image, a folder, a glob, a video file, a webcam index, or a URL (an image
downloaded into memory, or a video stream: ``rtsp://``, ``rtmp://``, ``http(s)://``).

:func:`open_source` parses the SOURCE argument and returns a :class:`Source`; iterating it yields :class:`Frame`
objects one at a time (streaming: a video is never held in memory). An image that cannot be decoded yields a
``Frame`` with ``image=None`` and an ``error`` so callers can report and skip it.
"""

from __future__ import annotations

import glob as globlib
import importlib.util
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from kanpose_cli.core.errors import InputError
from kanpose_cli.core.text import plural

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp")  # opened with cv2.VideoCapture (FFmpeg)
HTTP_SCHEMES = ("http", "https")
URL_TIMEOUT_S = 30.0  # connect / read timeout of an image download and of opening a stream
MAX_IMAGE_BYTES = 200 * 1024 * 1024  # an image URL larger than this is refused (it is held in memory)


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


def is_url(text: str) -> bool:
    """True for ``scheme://...`` with a scheme :func:`open_source` reads (http, https, rtsp, rtmp, srt, udp, tcp)."""
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    return "://" in text and scheme in HTTP_SCHEMES + STREAM_SCHEMES


def _url_path_suffix(url: str) -> str:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).suffix.lower()


def url_stem(url: str) -> str:
    """Output file stem for a URL: the last part of its path without the extension (``img`` for
    ``https://host/a/img.jpg?x=1``), else the host name (dots -> ``_``), else ``url``."""
    parts = urllib.parse.urlsplit(url)
    stem = Path(urllib.parse.unquote(parts.path)).stem
    return stem or (parts.hostname or "url").replace(".", "_")


def _download_error(url: str, exc: BaseException) -> InputError:
    if isinstance(exc, urllib.error.HTTPError):
        return InputError(f"cannot download {url}: HTTP {exc.code} {exc.reason}")
    if isinstance(exc, urllib.error.URLError):
        return InputError(f"cannot download {url}: {getattr(exc.reason, 'strerror', None) or exc.reason}")
    return InputError(f"cannot download {url}: {getattr(exc, 'strerror', None) or exc}")


def _open_url(url: str):
    """``urllib`` response of a GET of ``url`` (headers read, body not yet). Raises InputError on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "kanpose"})
    try:
        return urllib.request.urlopen(request, timeout=URL_TIMEOUT_S)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _download_error(url, exc) from None


def _read_image_response(url: str, response) -> np.ndarray:
    """Read and decode an image response body in memory (nothing is written to disk or the cache)."""
    try:
        with response:
            data = response.read(MAX_IMAGE_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise _download_error(url, exc) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"{url} is larger than {MAX_IMAGE_BYTES // 2**20} MB; download it and give the file")
    if not data:
        raise InputError(f"{url} is empty (0 bytes)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{url} is not a decodable image")
    return image


def read_image_url(url: str) -> np.ndarray:
    """Download an http(s) image into memory and decode it to (H, W, 3) uint8 BGR (no file is written).

    Raises:
        InputError: the download fails (HTTP status, connection, timeout after :data:`URL_TIMEOUT_S` s) or the
            body is empty, too large (:data:`MAX_IMAGE_BYTES`) or not a decodable image.
    """
    return _read_image_response(url, _open_url(url))


def read_frames(paths) -> Iterator[Frame]:
    """One :class:`Frame` per image path, in order, the path kept as given (a ``str`` key stays usable): the
    decoded (H, W, 3) uint8 BGR image, or ``image=None`` with ``error`` set for a file that cannot be read (it is
    reported by the caller and skipped, never raised)."""
    for path in paths:
        try:
            image, error = read_image(path), None
        except InputError as exc:
            image, error = None, str(exc)
        yield Frame(image, path, error=error)


class Source:
    """Base of the sources: ``kind`` (image|folder|glob|video|webcam|url|stream), ``description``, ``total()``."""

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
        if kind == "stream" or (kind == "video" and is_url(str(target))):  # network: do not wait forever
            timeout_ms = int(URL_TIMEOUT_S * 1000)
            self.cap = cv2.VideoCapture(target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                              cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        else:
            self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            self.cap.release()
            what = {"webcam": f"webcam {target}", "stream": f"stream {target} (unreachable or not a video stream)"}.get(
                kind, f"video {target} (unsupported or corrupt format)")
            raise InputError(f"cannot open {what}")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0
        if self.fps <= 0 or self.fps > 1000:
            self.fps = 30.0
        frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._total = frames if kind == "video" and frames > 0 else None
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.description = f"{'webcam' if kind == 'webcam' else 'stream' if kind == 'stream' else 'video'} {target}"
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
    return ImageListSource(images, "demo", f"{plural(len(images), 'demo image')} ({', '.join(p.name for p in images)})")


def open_url(url: str) -> Source:
    """A URL source (ultralytics-style):

    - ``rtsp://``, ``rtmp://``, ``srt://``, ``udp://``, ``tcp://`` -> a live stream through ``cv2.VideoCapture``;
    - ``http(s)://`` whose path ends in a video extension -> a video read by ``cv2.VideoCapture`` (FFmpeg);
    - ``http(s)://`` whose path ends in an image extension, or whose response says ``Content-Type: image/*`` -> one
      image, downloaded into memory (never into the kanpose cache or any file);
    - any other ``http(s)://`` (``/stream``, ``.m3u8``, MJPEG) -> a stream through ``cv2.VideoCapture``.

    Outputs are named after the last part of the URL's path (:func:`url_stem`).

    Raises:
        InputError: the download fails (one line: HTTP status or connection error), the body is not an image, the
            stream or remote video does not open.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    suffix = _url_path_suffix(url)
    if scheme in HTTP_SCHEMES and suffix in VIDEO_EXTENSIONS:
        return VideoSource(url, "video")
    if scheme in HTTP_SCHEMES:
        response = _open_url(url)
        ctype = (response.headers.get_content_type() or "").lower()
        if suffix in IMAGE_EXTENSIONS or ctype.startswith("image/"):
            image = _read_image_response(url, response)
            src = ImageListSource([url], "url", f"image {url}", preloaded={url: image})
            src.stems = {url: url_stem(url)}
            return src
        response.close()
    return VideoSource(url, "stream")


def open_source(source: str) -> Source:
    """Parse the SOURCE argument.

    - an integer (``0``) -> webcam; a URL -> :func:`open_url` (an image downloaded into memory, or a video
      stream); a path with a video extension -> video; a folder -> its images (sorted, not recursive); a pattern
      with ``* ? [`` -> glob matches with image extensions; another existing file -> image.

    Raises:
        InputError: missing path, a folder or glob without images, an unsupported file type, a single image that
            cannot be decoded, a camera or video that does not open, a URL that cannot be downloaded or opened.
    """
    text = str(source).strip()
    if text.isdigit():
        return VideoSource(int(text), "webcam")
    if is_url(text):
        return open_url(text)
    path = Path(text).expanduser()
    if any(ch in text for ch in "*?[") and not path.exists():
        matches = [Path(p) for p in sorted(globlib.glob(text, recursive=True))]
        images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise InputError(f"no images match {text!r}")
        return ImageListSource(images, "glob", f"{plural(len(images), 'image')} matching {text}")
    if path.is_dir():
        images = _list_folder(path)
        if not images:
            raise InputError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {path}")
        return ImageListSource(images, "folder", f"{plural(len(images), 'image')} in {path}")
    if not path.exists():
        raise InputError(f"no such file, folder, glob or webcam index: {text}")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(str(path), "video")
    if suffix in IMAGE_EXTENSIONS:  # decoded now: a single unreadable image is one error line before the run starts
        return ImageListSource([path], "image", f"image {path}", preloaded={path: read_image(path)})
    raise InputError(f"unsupported file type {suffix or '(none)'} for {path}; expected an image or a video")

"""The ultralytics YOLO-pose dataset, read as it is: a ``data.yaml`` and one label ``.txt`` per image.

Layout and rules as ultralytics reads them [code: ultralytics ``ultralytics/data/utils.py`` ``check_det_dataset``,
``img2label_paths``, ``verify_image_label``; ``ultralytics/data/base.py`` ``get_img_files``; docs:
https://docs.ultralytics.com/datasets/pose/]:

- ``data.yaml``: ``path`` (the dataset root; relative to the current folder, else to the YAML's folder; default the
  YAML's folder), ``train`` and ``val`` (and optional ``test``): each a folder of images (searched recursively), a
  ``.txt`` list of image paths, or a list of these, relative to ``path`` (an entry ``../x`` that does not exist is
  also tried as ``path/x``, as ultralytics does). ``kpt_shape: [K, 2 | 3]``, ``flip_idx`` (K indices), ``names``
  (classes), optional ``kpt_names`` (one list of K names, or one per class).
- In a ``.txt`` list, a line ``./a/b.jpg`` is relative to the list's folder, other relative lines to ``path``.
- Labels: ``labels/`` beside ``images/``: the last ``/images/`` of the image path becomes ``/labels/`` and the
  extension ``.txt``. An image without a label file has no people.
- A label line: ``class cx cy w h x1 y1 [v1] … xK yK [vK]``, all normalised to [0, 1] by the image's width and height
  (values down to −0.01 and up to 1.01 are accepted, beyond is an error). With ``kpt_shape[1] == 3`` a keypoint is
  labelled when ``v > 0`` (0 unlabelled, 1 occluded, 2 visible, as COCO); with 2 columns when ``x, y`` are not
  negative. Either way ``x = y = 0`` is an unlabelled keypoint (ultralytics' converters write them so). Blank lines
  are skipped; a line repeated exactly is read once.
- Image sizes come from the image header, with EXIF orientation applied (as OpenCV decodes it).

People become the same :class:`~kanpose_cli.core.data.instances.Instance` list as the COCO reader gives: box
``cx, cy, w, h`` → COCO ``[x, y, w, h]`` pixels → :func:`~kanpose_cli.core.data.coco.sanitize_xywh`; keypoints in
pixels with COCO's ``v``; people with no labelled keypoint are dropped. Every class of the file is read (they share
``kpt_shape``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kanpose_cli.core.data.coco import sanitize_xywh
from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.keypoints import COCO17, KeypointSet, keypoint_set_from_yolo, read_json_or_yaml

IMAGE_SUFFIXES = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
"""Image file extensions ultralytics reads (``IMG_FORMATS``); other files in an image folder are ignored."""
COORD_TOLERANCE = 0.01
"""Normalised coordinates may lie this far outside [0, 1] (ultralytics' 1 % tolerance)."""
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class YoloPoseData:
    """A YOLO-pose ``data.yaml``, its paths resolved.

    Attributes:
        yaml_file: the YAML (absolute). root: the dataset root (``path``).
        splits: per split key (``train``, ``val``, ``test``) the resolved entries: image folders or ``.txt`` lists.
        kpt_shape: ``(K, 2 | 3)``. names: class names by class id.
        keypoints: the file's keypoint set (:func:`~kanpose_cli.core.keypoints.keypoint_set_from_yolo` of its
            ``kpt_shape``, ``flip_idx``, ``kpt_names``, ``kpt_oks_sigmas`` and first class name).
    """

    yaml_file: Path
    root: Path
    splits: dict[str, list[Path]] = field(default_factory=dict)
    kpt_shape: tuple[int, int] = (17, 3)
    names: dict[int, str] = field(default_factory=dict)
    keypoints: KeypointSet = COCO17

    @property
    def num_keypoints(self) -> int:
        return self.kpt_shape[0]

    def image_files(self, split: str) -> list[Path]:
        """The images of ``split``, sorted (as ultralytics lists them).

        Raises:
            InputError: the split is not in the YAML, an entry does not exist, a listed image is missing, or no image.
        """
        if split not in self.splits:
            raise InputError(f"{self.yaml_file}: no '{split}:' entry")
        files: list[Path] = []
        for entry in self.splits[split]:
            if entry.is_dir():
                files += [p for p in entry.rglob("*") if p.is_file() and _is_image(p)]
            elif entry.is_file():
                files += _read_list(entry, self.root)
            else:
                raise InputError(f"{self.yaml_file}: '{split}' entry {entry} does not exist")
        files = sorted(set(files), key=str)
        if not files:
            raise InputError(f"{self.yaml_file}: no images in '{split}' ({', '.join(map(str, self.splits[split]))})")
        return files


def _is_image(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in IMAGE_SUFFIXES


def _read_list(list_file: Path, root: Path) -> list[Path]:
    """Image paths of a ``.txt`` list (``./x`` relative to the list's folder, other relative paths to ``root``)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read image list {list_file}: {exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or not _is_image(Path(text)):
            continue
        p = Path(text)
        if text.startswith("./"):
            p = list_file.parent / text[2:]
        elif not p.is_absolute():
            p = root / p
        if not p.is_file():
            raise InputError(f"{list_file} line {n}: image {p} not found")
        out.append(Path(os.path.abspath(p)))  # not resolved: a symlinked image keeps its labels/ beside images/
    return out


def read_data_yaml(yaml_file: str | Path) -> YoloPoseData:
    """Read and check an ultralytics pose ``data.yaml`` (rules in the module docstring).

    Raises:
        InputError: missing/unreadable/invalid file, a missing ``train`` / ``kpt_shape``, a malformed ``kpt_shape``,
            ``flip_idx``, ``names`` or ``kpt_names`` (one line naming the file and the key), a missing dataset root.
    """
    yaml_file = Path(yaml_file).expanduser().resolve()
    if not yaml_file.is_file():
        raise InputError(f"dataset YAML not found: {yaml_file}")
    d = read_json_or_yaml(yaml_file)
    if not isinstance(d, dict):
        raise InputError(f"{yaml_file}: expected a mapping with path, train, val, kpt_shape, names")
    where = str(yaml_file)

    names = d.get("names")
    if names is None:
        nc = d.get("nc")
        if not isinstance(nc, int) or nc < 1:
            raise InputError(f"{where}: needs 'names' (or 'nc')")
        names = {i: f"class_{i}" for i in range(nc)}
    elif isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names or not all(isinstance(i, int) for i in names):
        raise InputError(f"{where}: 'names' must be a list of class names or a mapping id: name")
    names = {int(i): str(v) for i, v in names.items()}

    keypoints = keypoint_set_from_yolo({**d, "names": names}, where)

    root_raw = d.get("path")
    if root_raw:
        root = Path(str(root_raw)).expanduser()
        if not root.is_absolute():
            root = root if root.exists() else yaml_file.parent / root
        if not root.is_dir():
            raise InputError(f"{where}: dataset root 'path: {root_raw}' not found (relative paths are tried from the "
                             f"current folder and from the YAML's folder)")
    else:
        root = yaml_file.parent
    root = root.resolve()

    if not d.get("train"):
        raise InputError(f"{where}: no 'train:' entry")
    if d.get("val") is None and d.get("validation") is not None:
        d["val"] = d["validation"]  # ultralytics' own renaming
    splits = {}
    for key in SPLITS:
        value = d.get(key)
        if not value:
            continue
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, str) for e in entries):
            raise InputError(f"{where}: '{key}' must be a path or a list of paths")
        splits[key] = [_resolve_entry(root, e) for e in entries]
    shape = d["kpt_shape"]
    return YoloPoseData(yaml_file, root, splits, (shape[0], shape[1]), names, keypoints)


def _resolve_entry(root: Path, entry: str) -> Path:
    p = Path(entry).expanduser()
    out = (p if p.is_absolute() else root / p).resolve()
    if not out.exists() and entry.startswith("../"):
        out = (root / entry[3:]).resolve()
    return out


def label_path(image: str | Path) -> Path:
    """The label file of an image by ultralytics' rule: the last ``/images/`` of the path becomes ``/labels/``, the
    extension ``.txt`` (``ds/images/train/a.jpg`` → ``ds/labels/train/a.txt``)."""
    text = str(image)
    a, b = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if a in text:
        head, tail = text.rsplit(a, 1)
        text = head + b + tail
    return Path(text.rsplit(".", 1)[0] + ".txt")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels as the image is decoded (EXIF orientations 5–8 swap them), from the header.

    Raises:
        InputError: missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = int(im.width), int(im.height)
            orientation = im.getexif().get(0x0112, 1) if im.format in ("JPEG", "TIFF", "PNG", "WEBP") else 1
    except FileNotFoundError:
        raise InputError(f"image {path} not found") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path} is not a readable image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_label_file(path: Path, kpt_shape: tuple[int, int], num_classes: int) -> np.ndarray:
    """The rows of one label file as float64 ``(n, 5 + K·D)`` (blank lines skipped, exact repeats dropped, file order
    kept); a missing file has no rows.

    Raises:
        InputError: a line with the wrong number of values, a value that is not a number, a class id that is not an
            integer in ``0..num_classes-1``, a coordinate outside [−0.01, 1.01], or a visibility not in 0/1/2
            (one line naming the file and the line number).
    """
    k, dim = kpt_shape
    ncol = 5 + k * dim
    if not path.is_file():
        return np.zeros((0, ncol))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read label file {path}: {exc}") from None
    rows, seen = [], set()
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path} line {n}"
        if len(parts) != ncol:
            raise InputError(f"{where}: {len(parts)} values, expected {ncol} (class, box cx cy w h, "
                             f"{k} keypoints × {dim})")
        try:
            row = np.array([float(v) for v in parts])
        except ValueError:
            bad = next(v for v in parts if not _is_float(v))
            raise InputError(f"{where}: {bad!r} is not a number") from None
        if not np.isfinite(row).all():
            raise InputError(f"{where}: values must be finite numbers")
        cls = row[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            raise InputError(f"{where}: class {parts[0]} is not a class id of the dataset (0..{num_classes - 1})")
        kp = row[5:].reshape(k, dim)
        coords = np.concatenate([row[1:5], kp[:, :2].ravel()])
        if dim == 2:
            coords = coords[coords >= 0]  # negative keypoint coordinates mark unlabelled keypoints (2 columns)
        if coords.size and (coords.min() < -COORD_TOLERANCE or coords.max() > 1 + COORD_TOLERANCE):
            raise InputError(f"{where}: coordinates must be normalised to [0, 1] by the image size "
                             f"(found {coords.min():g} .. {coords.max():g})")
        if row[3] <= 0 or row[4] <= 0:
            raise InputError(f"{where}: box width and height must be positive")
        if dim == 3 and not np.isin(kp[:, 2], (0.0, 1.0, 2.0)).all():
            raise InputError(f"{where}: keypoint visibility must be 0, 1 or 2")
        key = tuple(parts)
        if key in seen:
            continue
        seen.add(key)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, ncol)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rows_to_people(rows: np.ndarray, kpt_shape: tuple[int, int], width: int, height: int):
    """Label rows of one image → ``[(box (4,) x1 y1 x2 y2 | None, keypoints (K, 3) x y v, xywh (4,))]`` in pixels
    (rules in the module docstring; ``box`` None for an empty box)."""
    k, dim = kpt_shape
    out = []
    for row in rows:
        cx, cy, w, h = row[1:5]
        xywh = np.array([(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height])
        kp = row[5:].reshape(k, dim)
        x, y = kp[:, 0], kp[:, 1]
        if dim == 3:
            v = kp[:, 2].copy()
        else:
            v = np.where((x < 0) | (y < 0), 0.0, 2.0)
        v[(x == 0) & (y == 0)] = 0.0
        keypoints = np.stack([x * width, y * height, v], axis=1)
        keypoints[v == 0, :2] = 0.0
        out.append((sanitize_xywh(*xywh, width, height), keypoints, xywh))
    return out


def _source(data: YoloPoseData | str | Path) -> YoloPoseData:
    return data if isinstance(data, YoloPoseData) else read_data_yaml(data)


def load_yolo_instances(data: YoloPoseData | str | Path, split: str = "train") -> list[Instance]:
    """The people of one split as training instances on the file's own keypoint set (:meth:`keypoint_set`).

    Args:
        data: a ``data.yaml`` path or :class:`YoloPoseData`. split: ``train``, ``val`` or ``test``.

    Returns:
        Instances in image order then label-line order; ``image_id`` = the image's position in the sorted split + 1,
        ``ann_id`` = a running count from 1; ``keypoints`` (K, 3) ``x, y, v`` pixels; people whose box is empty or
        who have no labelled keypoint are left out.

    Raises:
        InputError: as :func:`read_data_yaml`, :meth:`YoloPoseData.image_files`, :func:`read_label_file`,
            :func:`image_size`.
    """
    data = _source(data)
    out: list[Instance] = []
    num_classes = max(data.names) + 1 if data.names else 1
    for image_id, image in enumerate(data.image_files(split), 1):
        rows = read_label_file(label_path(image), data.kpt_shape, num_classes)
        if not len(rows):
            continue
        width, height = image_size(image)
        for box, kp, _ in rows_to_people(rows, data.kpt_shape, width, height):
            if box is None or not (kp[:, 2] > 0).any():
                continue
            out.append(Instance(str(image), image_id, len(out) + 1, width, height, box, kp))
    return out


def load_yolo_source(data: YoloPoseData | str | Path, split: str, target: KeypointSet,
                     positional: bool = False) -> list[Instance]:
    """A split's people on the model's keypoint set ``target`` (the file's set reaches it unchanged or through a
    declared joint mapping, :func:`~kanpose_cli.core.data.dataset_keypoints.source_mapping`; people left with no
    labelled keypoint are dropped).

    Raises:
        InputError: as :func:`load_yolo_instances`; no way from the file's set to ``target``.
    """
    from kanpose_cli.core.data.dataset_keypoints import map_instances, source_mapping

    data = _source(data)
    mapping = source_mapping(data.keypoints, target, str(data.yaml_file), positional=positional)
    instances = load_yolo_instances(data, split)
    return map_instances(instances, mapping, target)


OKS_AREA_FACTOR = 0.53
"""Object area for OKS when a dataset has no segmentation: box area × 0.53 (ultralytics' pose validation,
``ultralytics/models/yolo/pose/val.py``; also the factor of the shared coco-val-dev file)."""


def yolo_to_coco(data: YoloPoseData | str | Path, split: str = "val") -> tuple[dict, Path]:
    """One split as a COCO keypoint annotation dict, for COCO-style evaluation (``kanpose train`` validation).

    Every image of the split is listed (``file_name`` relative to the dataset root when it lies below it, else
    absolute), every labelled person an annotation (``bbox`` the label's box in pixels, ``area`` = box area ×
    :data:`OKS_AREA_FACTOR`, ``num_keypoints`` the labelled count, ``iscrowd`` 0, ``category_id`` 1); the category
    carries the file's keypoint names, 1-based skeleton.

    Returns:
        ``(COCO dict, images folder)``: the folder ``file_name`` is relative to (the dataset root).

    Raises:
        InputError: as :func:`load_yolo_instances`.
    """
    data = _source(data)
    kset = data.keypoints
    num_classes = max(data.names) + 1 if data.names else 1
    images, anns = [], []
    for image_id, image in enumerate(data.image_files(split), 1):
        width, height = image_size(image)
        try:
            name = str(image.relative_to(data.root))
        except ValueError:
            name = str(image)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        rows = read_label_file(label_path(image), data.kpt_shape, num_classes)
        for box, kp, xywh in rows_to_people(rows, data.kpt_shape, width, height):
            labelled = int((kp[:, 2] > 0).sum())
            if box is None or not labelled:
                continue
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                         "bbox": [float(v) for v in xywh], "area": float(xywh[2] * xywh[3] * OKS_AREA_FACTOR),
                         "num_keypoints": labelled, "keypoints": [float(v) for v in kp.ravel()]})
    category = {"id": 1, "name": data.names.get(min(data.names), "keypoints") if data.names else "keypoints",
                "supercategory": "keypoints", "keypoints": list(kset.names),
                "skeleton": [[a + 1, b + 1] for a, b in kset.skeleton]}
    return {"images": images, "annotations": anns, "categories": [category]}, data.root

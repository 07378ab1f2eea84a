"""Training sets of different formats and skeletons combined into one top-down training set.

The way mmpose combines datasets (``CombinedDataset`` + ``KeypointConverter``): each :class:`DataSource` is read in
its own format and mapped onto the model's keypoint set by a declared joint mapping
(:mod:`kanpose_cli.core.keypoints`); joints a source lacks are unlabelled and get target weight 0. Each source has a
sampling ratio: the number of its persons drawn per epoch, as a multiple of its size (1 = each person once, 0.5 =
a random half, different every epoch, 2 = each person twice).

Formats: ``coco`` (a COCO keypoint JSON with any K, :func:`kanpose_cli.core.data.coco.load_coco_source`), ``yolo``
(an ultralytics YOLO-pose ``data.yaml`` and one of its splits,
:func:`kanpose_cli.core.data.yolo_pose.load_yolo_source`), ``mpii`` (mmpose's MPII JSON,
:func:`kanpose_cli.core.data.mpii.load_mpii_instances`) and ``lsp`` (a LSP / LSP-Extended ``joints.mat``,
:func:`kanpose_cli.core.data.lsp.load_lsp_instances`). :func:`infer_format` tells them apart.

The model's keypoint set (:func:`default_keypoint_set`): the one the user names, else the first source's own (COCO
``categories[0]``, the YAML's ``kpt_shape`` / ``flip_idx`` / ``kpt_names``, ``mpii16`` for an MPII JSON); a LSP
first source leaves the model's default (COCO-17, LSP mapped onto it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import KeypointSet

FORMATS = ("coco", "lsp", "mpii", "yolo")
JSON_WHITESPACE = b" \t\r\n"


def json_top_level(path: str | Path) -> str:
    """The first character of a JSON file after JSON whitespace: ``[`` (a list), ``{`` (an object), another
    character, or ``""`` (an empty, missing or unreadable file). Reads only as far as that character."""
    try:
        with open(Path(path).expanduser(), "rb") as f:
            while chunk := f.read(4096):
                rest = chunk.lstrip(JSON_WHITESPACE)
                if rest:
                    return rest[:1].decode("latin-1")
    except OSError:
        pass
    return ""


def infer_format(ann: str | Path) -> str:
    """The format of a training annotation file, from its extension and, for ``.json``, its top level.

    ``.json``: ``mpii`` when the file's top level is a list (mmpose's MPII JSON is a list of people: the first
    character after whitespace is ``[``), else ``coco`` (a COCO file is an object; a missing or malformed file is
    left to the COCO reader's one-line error). ``.mat``: ``lsp``. ``.yaml`` / ``.yml``: ``yolo`` (an ultralytics
    pose ``data.yaml``).

    Raises:
        UsageError: any other extension.
    """
    suffix = Path(ann).suffix.lower()
    if suffix == ".json":
        return "mpii" if json_top_level(ann) == "[" else "coco"
    if suffix == ".mat":
        return "lsp"
    if suffix in (".yaml", ".yml"):
        return "yolo"
    raise UsageError(f"cannot tell the format of {ann} from its extension (.json = COCO keypoints or mmpose's MPII "
                     f"JSON, .mat = LSP joints.mat, .yaml = YOLO-pose data.yaml)")


@dataclass(frozen=True)
class DataSource:
    """One training set.

    Attributes:
        ann: annotation file (COCO JSON, MPII JSON, LSP ``joints.mat`` or YOLO-pose ``data.yaml``). images: its
            image folder (for ``yolo``, the dataset root; the images are the split's).
        format: ``coco``, ``mpii``, ``lsp`` or ``yolo`` (default: :func:`infer_format`).
        ratio: persons drawn per epoch as a multiple of the source's size (> 0).
        split: for ``yolo``, the split of the ``data.yaml`` (default ``train``); empty otherwise.
    """

    ann: str
    images: str
    format: str = ""
    ratio: float = 1.0
    split: str = ""

    def __post_init__(self):
        fmt = self.format or infer_format(self.ann)
        if fmt not in FORMATS:
            raise UsageError(f"unknown training-set format {fmt!r} (known: {', '.join(FORMATS)})")
        object.__setattr__(self, "format", fmt)
        if fmt == "yolo" and not self.split:
            object.__setattr__(self, "split", "train")
        if not (isinstance(self.ratio, (int, float)) and math.isfinite(self.ratio) and self.ratio > 0):
            raise UsageError(f"sampling ratio of {self.ann} must be a positive number, got {self.ratio!r}")
        object.__setattr__(self, "ratio", float(self.ratio))

    def to_dict(self) -> dict:
        return asdict(self)


def load_source(src: DataSource, keypoints: KeypointSet, positional: bool = False) -> list[Instance]:
    """The persons of one source as instances on ``keypoints`` (the model's set).

    Args:
        src: the source. keypoints: the model's keypoint set.
        positional: the user declared the set (``--keypoint-set``): a COCO / YOLO source with as many keypoints is
            read as that set, in order, whatever its own names.

    Raises:
        InputError: unreadable or malformed annotation file (the message names it and the entry), missing images,
            a source on another keypoint set with no declared joint mapping to ``keypoints``.
    """
    if src.format == "coco":
        from kanpose_cli.core.data.coco import load_coco_source

        return load_coco_source(src.ann, src.images, keypoints, positional=positional)
    if src.format == "yolo":
        from kanpose_cli.core.data.yolo_pose import load_yolo_source

        return load_yolo_source(src.ann, src.split or "train", keypoints, positional=positional)
    if src.format == "mpii":
        from kanpose_cli.core.data.mpii import load_mpii_instances

        return load_mpii_instances(src.ann, src.images, keypoints)
    from kanpose_cli.core.data.lsp import load_lsp_instances

    return load_lsp_instances(src.ann, src.images, keypoints)


def source_keypoint_set(src: DataSource) -> KeypointSet | None:
    """The keypoint set a source describes itself: a COCO file's ``categories[0]``, a YOLO ``data.yaml``'s
    ``kpt_shape`` / ``flip_idx`` / ``kpt_names``, ``mpii16`` for an MPII JSON; None for LSP (its 14 joints are
    mapped onto the model's set).

    Raises:
        InputError: an unreadable or malformed file.
    """
    if src.format == "coco":
        from kanpose_cli.core.data.coco import read_coco_keypoint_set

        return read_coco_keypoint_set(src.ann)
    if src.format == "yolo":
        from kanpose_cli.core.data.yolo_pose import read_data_yaml

        return read_data_yaml(src.ann).keypoints
    if src.format == "mpii":
        from kanpose_cli.core.data.mpii import MPII16

        return MPII16
    return None


def default_keypoint_set(sources: list[DataSource]) -> KeypointSet | None:
    """The model's keypoint set when the user names none: the first source's own (:func:`source_keypoint_set`), or
    None (the model's default, COCO-17) when it is a LSP ``joints.mat`` or there is no source."""
    return source_keypoint_set(sources[0]) if sources else None


def epoch_indices(sizes: list[int], ratios: list[float], seed: int, epoch: int) -> np.ndarray:
    """Indices into the concatenated sources drawn for one epoch, before shuffling.

    Source ``s`` (size ``n``, ratio ``r``) contributes every one of its indices ``floor(r)`` times plus
    ``round((r − floor(r))·n)`` distinct ones drawn without replacement with ``numpy.random.default_rng([seed,
    epoch, s])``, so the draw is a function of ``(seed, epoch)`` and a resumed run sees the same epoch.

    Returns:
        int64 array, sorted by source then draw order; its length is the epoch's size.
    """
    out, offset = [], 0
    for s, (n, r) in enumerate(zip(sizes, ratios)):
        whole, frac = int(math.floor(r)), r - math.floor(r)
        idx = [np.tile(np.arange(n), whole)]
        extra = int(round(frac * n))
        if extra:
            rng = np.random.default_rng([int(seed), int(epoch), s])
            idx.append(np.sort(rng.choice(n, size=extra, replace=False)))
        out.append(np.concatenate(idx).astype(np.int64) + offset)
        offset += n
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def epoch_size(sizes: list[int], ratios: list[float]) -> int:
    """Length of :func:`epoch_indices` (the same every epoch)."""
    return sum(int(math.floor(r)) * n + int(round((r - math.floor(r)) * n)) for n, r in zip(sizes, ratios))


def load_sources(sources: list[DataSource], keypoints: KeypointSet,
                 positional: bool = False) -> tuple[list[Instance], list[int]]:
    """All sources' instances concatenated (on ``keypoints``, see :func:`load_source`), and each source's size (for
    :func:`epoch_indices`).

    Raises:
        InputError: no sources, or a source with no usable person (the message names its file), as
            :func:`load_source`.
    """
    if not sources:
        raise InputError("no training data: give --train-ann and --train-images")
    instances: list[Instance] = []
    sizes: list[int] = []
    for src in sources:
        got = load_source(src, keypoints, positional)
        if not got:
            split = f" (split {src.split})" if src.split else ""
            raise InputError(f"{src.ann}{split}: no usable person (non-crowd, with labelled keypoints)")
        instances += got
        sizes.append(len(got))
    return instances, sizes

"""Training sets of different formats and skeletons combined into one top-down training set.

The way mmpose combines datasets (``CombinedDataset`` + ``KeypointConverter``): each :class:`DataSource` is read in
its own format and mapped onto the model's keypoint set by a declared joint mapping
(:mod:`kanpose_cli.core.keypoints`); joints a source lacks are unlabelled and get target weight 0. Each source has a
sampling ratio: the number of its persons drawn per epoch, as a multiple of its size (1 = each person once, 0.5 =
a random half, different every epoch, 2 = each person twice).

Formats: ``coco`` (a COCO keypoint JSON, :func:`kanpose_cli.core.data.coco.load_coco_instances`) and ``lsp``
(a LSP / LSP-Extended ``joints.mat``, :func:`kanpose_cli.core.data.lsp.load_lsp_instances`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import KeypointSet

FORMATS = ("coco", "lsp")


def infer_format(ann: str | Path) -> str:
    """``coco`` for ``.json`` files, ``lsp`` for ``.mat`` files; raises UsageError otherwise."""
    suffix = Path(ann).suffix.lower()
    if suffix == ".json":
        return "coco"
    if suffix == ".mat":
        return "lsp"
    raise UsageError(f"cannot tell the format of {ann} from its extension (.json = COCO keypoints, "
                     f".mat = LSP joints.mat)")


@dataclass(frozen=True)
class DataSource:
    """One training set.

    Attributes:
        ann: annotation file (COCO JSON or LSP ``joints.mat``). images: its image folder.
        format: ``coco`` or ``lsp`` (default: from the extension of ``ann``).
        ratio: persons drawn per epoch as a multiple of the source's size (> 0).
    """

    ann: str
    images: str
    format: str = ""
    ratio: float = 1.0

    def __post_init__(self):
        fmt = self.format or infer_format(self.ann)
        if fmt not in FORMATS:
            raise UsageError(f"unknown training-set format {fmt!r} (known: {', '.join(FORMATS)})")
        object.__setattr__(self, "format", fmt)
        if not (isinstance(self.ratio, (int, float)) and math.isfinite(self.ratio) and self.ratio > 0):
            raise UsageError(f"sampling ratio of {self.ann} must be a positive number, got {self.ratio!r}")
        object.__setattr__(self, "ratio", float(self.ratio))

    def to_dict(self) -> dict:
        return asdict(self)


def load_source(src: DataSource, keypoints: KeypointSet) -> list[Instance]:
    """The persons of one source as instances on ``keypoints``.

    Raises:
        InputError: unreadable or malformed annotation file (the message names it), missing images.
    """
    if src.format == "coco":
        from kanpose_cli.core.data.coco import load_coco_instances

        return load_coco_instances(src.ann, src.images, keypoints.num_keypoints)
    from kanpose_cli.core.data.lsp import load_lsp_instances

    return load_lsp_instances(src.ann, src.images, keypoints)


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


def load_sources(sources: list[DataSource], keypoints: KeypointSet) -> tuple[list[Instance], list[int]]:
    """All sources' instances concatenated, and each source's size (for :func:`epoch_indices`).

    Raises:
        InputError: no sources, or a source with no usable person (the message names its file).
    """
    if not sources:
        raise InputError("no training data: give --train-ann and --train-images")
    instances: list[Instance] = []
    sizes: list[int] = []
    for src in sources:
        got = load_source(src, keypoints)
        if not got:
            raise InputError(f"{src.ann}: no usable person (non-crowd, with labelled keypoints)")
        instances += got
        sizes.append(len(got))
    return instances, sizes

"""Data-parallel inference with PyTorch's own launcher: ``torchrun --nproc-per-node N -m kanpose_cli predict|label``.

Every rank (one GPU each with NCCL, or a CPU process with gloo; the process group is started by
:func:`~kanpose_cli.core.parallel.init_distributed`, as for DDP training by :mod:`kanpose_cli.core.training`) takes
every N-th input image (:func:`shard_source`), runs the same estimator on its share and writes its own per-image files
into **one** run folder, which rank 0 claims and broadcasts (:func:`shared_run_dir`). At the end rank 0 gathers what has
to be one file — the COCO results of ``predict --save-coco`` (:func:`merge_predictions`) or the label JSON of ``label``
(:func:`merge_labels`) — and writes it in the input order, so the files are the same as a single-process run's.

Without torchrun (``WORLD_SIZE`` unset or 1) every function here is a no-op pass-through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kanpose_cli.core.data.sources import Frame, ImageListSource, Source
from kanpose_cli.core.errors import UsageError
from kanpose_cli.core.io import RunDir, unique_stem, write_json_atomic
from kanpose_cli.core.parallel import finish_distributed, init_distributed


@dataclass
class Shard:
    """This process's place in a torchrun job. ``rank`` 0 … ``world`` − 1; ``device`` its torch device."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that merges and prints)."""
        return self.rank == 0


def start(device: str) -> Shard:
    """Join the torchrun process group if there is one (gloo on CPU, NCCL with ``cuda:LOCAL_RANK``).

    Raises:
        DeviceError: CUDA asked for but unavailable, or fewer GPUs than local ranks.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        from kanpose_cli.core.device import select_device

        return Shard(0, 1, select_device(device))
    rank, world, dev = init_distributed(device)
    return Shard(rank, world, dev)


def finish(shard: Shard) -> None:
    """Wait for every rank, then leave the process group (no-op without torchrun)."""
    if shard.distributed:
        finish_distributed()


def shard_source(source: Source, shard: Shard) -> Source:
    """This rank's share of an image source: inputs ``rank, rank + world, …`` (the source itself without torchrun).

    The share keeps ``global_index`` (path -> position in the whole input list, the image id of files without a
    COCO-style numeric name, and the merge order) and ``stems`` (path -> output file stem, made unique over the
    whole list in input order).

    Raises:
        UsageError: a video or webcam under torchrun (one stream cannot be split frame-wise across processes).
    """
    if not shard.distributed:
        return source
    if not isinstance(source, ImageListSource):
        raise UsageError(f"torchrun splits images between processes; {source.description} is a video/stream: run "
                         f"it in one process (without torchrun)")
    paths = list(source.paths)[shard.rank::shard.world]
    mine = set(paths)
    share = ImageListSource(paths, source.kind,
                            f"{source.description} (rank {shard.rank} of {shard.world}: {len(paths)} of "
                            f"{len(source.paths)})",
                            preloaded={p: im for p, im in source._preloaded.items() if p in mine})
    used: set[str] = set()
    share.global_index = {str(p): i for i, p in enumerate(source.paths)}
    share.stems = {str(p): unique_stem(str(p), used) for p in source.paths}
    return share


def shared_run_dir(run_dir: RunDir, shard: Shard) -> RunDir | Path:
    """The run folder every rank writes into: rank 0 creates ``run_dir`` (claiming its number) and broadcasts the
    path. Without torchrun ``run_dir`` itself (still lazy: created with the first file)."""
    if not shard.distributed:
        return run_dir
    import torch.distributed as dist

    box = [str(run_dir.create())] if shard.is_main else [None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def gather(obj, shard: Shard) -> list | None:
    """Every rank's ``obj`` in rank order on rank 0 (None on the others); ``[obj]`` without torchrun."""
    if not shard.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * shard.world if shard.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast(obj, shard: Shard):
    """Rank 0's ``obj`` on every rank (``obj`` itself without torchrun)."""
    if not shard.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if shard.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def merge_predictions(writer, summary, source: Source, shard: Shard, run_dir: Path):
    """After :func:`~kanpose_cli.core.tasks.predictor.run_predict` on every rank: rank 0 writes the one COCO
    results file (entries in input order, as a single process writes them) and every rank gets the merged
    :class:`~kanpose_cli.core.tasks.predictor.PredictSummary` (frames, persons and skipped summed over ranks,
    seconds = the slowest rank). A run folder nobody wrote into is removed again.

    Returns:
        ``(summary, written)``: the merged summary and whether the run folder holds any output.
    """
    if not shard.distributed:
        return summary, bool(getattr(writer.run_dir, "created", True))
    from kanpose_cli.core.tasks.predictor import PredictSummary

    order = getattr(source, "global_index", {})
    parts = gather((writer.coco, writer.coco_paths, summary), shard)
    merged = None
    if shard.is_main:
        entries = [(order.get(p, 0), i, e) for r, (coco, paths, _) in enumerate(parts)
                   for i, (e, p) in enumerate(zip(coco, paths))]
        sums = [s for _, _, s in parts]
        merged = PredictSummary(frames=sum(s.frames for s in sums), persons=sum(s.persons for s in sums),
                                skipped=sorted((x for s in sums for x in s.skipped), key=lambda x: order.get(x[0], 0)),
                                seconds=max(s.seconds for s in sums), interrupted=any(s.interrupted for s in sums))
        if writer.save_coco and merged.frames:
            write_json_atomic(Path(run_dir) / "coco_results.json",
                              [e for _, _, e in sorted(entries, key=lambda t: (t[0], t[1]))])
        if not any(Path(run_dir).iterdir()):
            Path(run_dir).rmdir()
    merged = broadcast(merged, shard)
    return merged, Path(run_dir).is_dir()


class _Replay:
    """A label teacher that hands back outputs computed earlier (by the ranks), in order."""

    def __init__(self, name: str, keypoints, outputs: list):
        self.name, self.keypoints, self._outputs = name, keypoints, iter(outputs)

    def __call__(self, image, path):
        return next(self._outputs)


def merge_labels(source: Source, teacher, source_root: Path | None, shard: Shard,
                 on_frame: Callable | None = None, **label_kwargs):
    """``label_images`` over a sharded source: each rank runs the teacher on its images, rank 0 gathers the raw
    outputs and assembles the COCO dict in input order (same image and annotation ids as one process).

    Args:
        source: this rank's share (:func:`shard_source`). teacher: the estimator. source_root: as
            :func:`~kanpose_cli.core.tasks.labeler.label_images`. on_frame: progress callback on this rank.
        label_kwargs: ``box_thr``, ``kpt_thr``, ``min_keypoints``.

    Returns:
        ``(coco dict, LabelSummary)`` on rank 0; ``(None, LabelSummary)`` (the merged counts) on the others.
    """
    from kanpose_cli.core.tasks.labeler import label_images, teach, teacher_name

    if not shard.distributed:
        return label_images(source, teacher, source_root, on_frame=on_frame, **label_kwargs)
    records = []
    for frame, out in teach(source, teacher):
        shape = None if frame.image is None else frame.image.shape[:2]
        records.append((frame.path, shape, frame.error, out))
        if on_frame:
            on_frame(frame, None if out is None else len(out[0]))
    parts = gather(records, shard)
    result = None
    if shard.is_main:
        order = getattr(source, "global_index", {})
        merged = sorted((r for p in parts for r in p), key=lambda r: order.get(r[0], 0))
        frames = [Frame(None if shape is None else np.empty((*shape, 0), np.uint8), path, error=error)
                  for path, shape, error, _ in merged]
        replay = _Replay(teacher_name(teacher), getattr(teacher, "keypoints", None),
                         [out for *_, out in merged if out is not None])
        if replay.keypoints is None:
            del replay.keypoints
        result = label_images(frames, replay, source_root, **label_kwargs)
    summary = broadcast(None if result is None else result[1], shard)
    return (result[0] if result is not None else None), summary

"""The resumable, distributed sampler over several training sets with per-source sampling ratios.

Per epoch: the draws of :func:`~kanpose_cli.core.data.training_sets.epoch_indices` (a function of
``(seed, epoch)``), shuffled by ``numpy.random.default_rng([seed, epoch])``, padded by repeating its start to a
multiple of the world size (as ``torch.utils.data.DistributedSampler`` does, so every rank gets the same count) and
sharded ``rank::world``; :attr:`RatioSampler.skip` drops the first samples of this rank's shard to resume
mid-epoch.

A person drawn ``k`` times in one epoch (ratio > 1) must not get the same augmentation ``k`` times, and
:class:`~kanpose_cli.core.data.dataset.TopDownDataset` seeds a sample's augmentation from ``(seed, epoch, item)``.
So the sampler yields *items* of a dataset built over :attr:`RatioSampler.copies` repetitions of the instance
list: the ``j``-th draw (0-based) of person ``i`` in an epoch is item ``i + j·N`` (N persons in all): the same
person, another augmentation seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from kanpose_cli.core.data.training_sets import epoch_indices, epoch_size
from kanpose_cli.core.errors import UsageError


def occurrences(indices: np.ndarray) -> np.ndarray:
    """For each entry of ``indices``, how many equal entries come before it (0 for a first occurrence)."""
    indices = np.asarray(indices)
    order = np.argsort(indices, kind="stable")
    _, counts = np.unique(indices[order], return_counts=True)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    occ = np.empty(len(indices), dtype=np.int64)
    occ[order] = np.arange(len(indices)) - starts
    return occ


class RatioSampler(Sampler[int]):
    """Items of epoch ``epoch`` for rank ``rank`` of ``world`` (see the module docstring).

    Args:
        sizes: persons per source (in the order the instances are concatenated).
        ratios: sampling ratio per source (persons drawn per epoch as a multiple of its size).
        seed: base seed. rank, world: this process's place in the DDP job.

    Attributes:
        num_persons: N, the persons of all sources. copies: repetitions of the instance list the dataset needs.
        epoch_size: draws per epoch (all ranks). num_samples: draws per rank and epoch (after padding).
        epoch: the epoch :meth:`__iter__` yields (:meth:`set_epoch`). skip: samples of the shard to skip.

    Raises:
        UsageError: the ratios draw no person at all.
    """

    def __init__(self, sizes: list[int], ratios: list[float], seed: int = 0, rank: int = 0, world: int = 1):
        self.sizes, self.ratios = [int(s) for s in sizes], [float(r) for r in ratios]
        self.seed, self.rank, self.world = int(seed), int(rank), max(1, int(world))
        self.num_persons = sum(self.sizes)
        self.epoch_size = epoch_size(self.sizes, self.ratios)
        if self.epoch_size == 0:
            raise UsageError(f"the sampling ratios {self.ratios} draw no person per epoch from {self.sizes} persons")
        self.copies = max(math.ceil(r) for r, n in zip(self.ratios, self.sizes) if n)
        self.num_samples = math.ceil(self.epoch_size / self.world)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def epoch_items(self, epoch: int) -> np.ndarray:
        """All ranks' items of ``epoch`` in shuffled order, before padding: int64 ``(epoch_size,)``."""
        draws = epoch_indices(self.sizes, self.ratios, self.seed, epoch)
        items = draws + occurrences(draws) * self.num_persons
        return items[np.random.default_rng([self.seed, int(epoch)]).permutation(len(items))]

    def shard(self, epoch: int) -> np.ndarray:
        """This rank's items of ``epoch`` (``num_samples`` of them, ignoring :attr:`skip`)."""
        items = np.resize(self.epoch_items(epoch), self.num_samples * self.world)  # pads by repeating the start
        return items[self.rank::self.world]

    def person(self, item: int) -> int:
        """The person (index into the concatenated instances) an item stands for."""
        return int(item) % self.num_persons

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard(self.epoch)[self.skip:].tolist())

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)

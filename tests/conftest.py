"""Shared fixtures. Real data lives in ``../shared/data`` (never committed); tests needing it skip cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KANPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))
COCO_MINI = SHARED_DATA / "coco-mini"


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """Path of ``../shared/data/coco-mini`` (real COCO 2017 images + official keypoint annotations)."""
    if not (COCO_MINI / "annotations" / "person_keypoints_val2017.json").is_file():
        pytest.skip(f"real COCO data not found at {COCO_MINI} (set KANPOSE_SHARED_DATA)")
    return COCO_MINI


@pytest.fixture(scope="session")
def unlabeled_images() -> Path:
    path = SHARED_DATA / "coco-unlabeled" / "val2017"
    if not path.is_dir():
        pytest.skip(f"unlabelled COCO images not found at {path}")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: on a shared 2-core machine, 2 OpenMP threads under load stall at
    barriers (measured 25× slower). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def perturb_batchnorm(module) -> None:
    """Give every BatchNorm2d in ``module`` non-trivial running statistics and affine parameters (in place, under
    the caller's RNG seed), so that comparisons against a reference implementation exercise them."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.1, 0.1)

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

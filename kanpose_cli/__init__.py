"""kanpose: top-down human pose estimation (YOLO person boxes -> ViTPose/KAN-FPN-Stem, AMFACPose, FlatPose).

Python API (loaded lazily: ``import kanpose_cli`` and ``kanpose --help`` do not import torch)::

    from kanpose_cli import PoseEstimator
    est = PoseEstimator(device="cpu")            # default model + YOLO11n person boxes
    result = est("photo.jpg")                    # PoseResult: keypoints (N, 17, 2) in image pixels
    for r in est.stream("clip.mp4", track=True, smooth=True):
        print(r.frame_index, r.track_ids)

Exports: :class:`PoseEstimator`, :class:`PoseResult`, :func:`create_model`, :func:`list_models`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "PoseEstimator": "kanpose_cli.core.inference.estimator",
    "PoseResult": "kanpose_cli.core.results",
    "create_model": "kanpose_cli.core.models",
    "list_models": "kanpose_cli.core.models",
}

__all__ = ["PoseEstimator", "PoseResult", "__version__", "create_model", "list_models"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # cache: the next access is a plain attribute
        return value
    raise AttributeError(f"module 'kanpose_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

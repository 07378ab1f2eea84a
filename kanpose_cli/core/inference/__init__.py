"""Inference: the :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (the Python API), the top-down
crop -> network -> uncrop pipeline, the torch / onnxruntime backends and per-stage timing.

Layer: above export (the onnxruntime backend's cached graphs), models, weights, data, detect and track; below
evaluation, tasks, training and benchmark.
"""

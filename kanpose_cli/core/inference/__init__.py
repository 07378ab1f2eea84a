"""Inference: the :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` (the Python API), the top-down
crop -> network -> uncrop pipeline, the torch / onnxruntime backends and per-stage timing.

Layer: above models, weights, data, detect and track; below evaluation, tasks, training and benchmark.
"""

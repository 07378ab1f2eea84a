"""Evaluation: COCO keypoint AP/AR of a model or a results file (``evaluator``, ``coco_metric``), OKS-NMS, the error
diagnosis (``analysis``) with its plots (``analysis_plots``), the single-person metrics PCK / PCKh / AUC / EPE / NME
(``keypoint_metrics``), CrowdPose AP by crowd level (``crowdpose_metric``) and the benchmarks by name, LSP, MPII,
CrowdPose and OCHuman (``benchmarks``, with their keypoint sets in ``benchmark_sets``).

Layer: above inference; below tasks, training and benchmark.
"""

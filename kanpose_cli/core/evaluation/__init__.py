"""Evaluation: COCO keypoint AP/AR of a model or a results file (``evaluator``), OKS-NMS, and the error diagnosis
(``analysis``) with its plots (``analysis_plots``).

Layer: above inference; below tasks, training and benchmark.
"""

"""The top-down protocol's constants, defined once (spec §1.5).

Reference: the ViTPose / mmpose top-down COCO protocol, i.e. mmpose 0.x ``TopDownCocoDataset`` (``bbox_padding``,
``vis_thr``, ``oks_thr``) and mmpose 1.x ``GetBBoxCenterScale(padding=1.25)`` with ``CocoMetric(
score_mode='bbox_keypoint', keypoint_score_thr=0.2, nms_mode='oks_nms', nms_thr=0.9)``. The published COCO figures
of ViTPose, SimCC and RTMPose are measured with these values, so changing one changes every AP kanpose reports.

It sits at the bottom of ``kanpose_cli.core`` and imports nothing, so data (crops), inference (the pipeline),
results (rescoring) and evaluation (OKS-NMS) all read the same numbers.
"""

from __future__ import annotations

BOX_PADDING = 1.25
"""Person box → crop: the box, first expanded to the model input's aspect ratio, is scaled by this factor about its
centre (ROI ``w_roi = 1.25 · w``, ``h_roi = 1.25 · h``), at training and test time (mmpose ``GetBBoxCenterScale``)."""

RESCORE_KPT_THR = 0.2
"""Rescoring (``bbox_keypoint``): instance score = box score × mean of the keypoint scores above this threshold
(0 if none), mmpose ``CocoMetric.keypoint_score_thr``."""

OKS_NMS_THR = 0.9
"""OKS-NMS per image: an instance whose OKS with a higher-scored kept one is above this is dropped (mmpose
``CocoMetric.nms_thr``); the OKS "area" is the padded crop area ``w_roi · h_roi`` in pixels²."""

IMAGES_PER_CHUNK = 8
"""Not a protocol value, but shared by the estimator and the evaluation loop: images (or video frames) read,
detected and estimated together; the crops of a chunk go through the network in batches. It does not change
results."""

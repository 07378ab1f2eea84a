"""The keypoint sets of the benchmarks (LSP 14, MPII 16, CrowdPose 14, COCO 17) and how a model's keypoints land on
them for scoring.

:data:`MPII16` and :data:`CROWDPOSE14` restate mmpose's dataset metainfo (``configs/_base_/datasets/mpii.py`` and
``crowdpose.py``: names, flip pairs, skeleton, OKS sigmas) as data. They live here until ``core.keypoints`` holds the
built-in sets of issue 33; then these names point there.

A model is scored on a benchmark through a :class:`~kanpose_cli.core.keypoints.JointMapping` from its keypoint set to
the benchmark's (:func:`scoring_mapping`): the benchmark joints that the model has are compared, the others are not
scored (and every report names which were). A model of the benchmark's own set maps one to one.
"""

from __future__ import annotations

from kanpose_cli.core.keypoints import COCO17, LSP14, LSP14_TO_COCO17, JointMapping, KeypointSet

# MPII Human Pose (Andriluka et al., CVPR 2014), the joint order of its annotations and of mmpose's MPII JSON.
MPII16 = KeypointSet(
    name="mpii16",
    names=("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
           "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
           "left_wrist"),
    flip_index=(5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10),
    skeleton=((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (8, 12), (12, 11), (11, 10),
              (8, 13), (13, 14), (14, 15)),
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072, 0.179, 0.179,
            0.072, 0.062),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

# CrowdPose (Li et al., CVPR 2019): 12 limb joints in COCO's order, then head top and neck.
CROWDPOSE14 = KeypointSet(
    name="crowdpose14",
    names=("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
           "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck"),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    skeleton=((10, 8), (8, 6), (11, 9), (9, 7), (6, 7), (0, 6), (1, 7), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5),
              (12, 13), (1, 13), (0, 13)),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
)

BENCHMARK_SETS = {s.name: s for s in (COCO17, LSP14, MPII16, CROWDPOSE14)}

# Model set -> benchmark set, (model index, benchmark index) pairs. Left and right are the person's in every set.
SCORING_MAPPINGS = {
    # the 12 limb joints; LSP's neck and head top have no COCO keypoint
    ("coco17", "lsp14"): JointMapping("coco17", "lsp14", tuple((t, s) for s, t in LSP14_TO_COCO17.pairs)),
    # the 12 limb joints; MPII's pelvis, thorax, upper neck and head top have no COCO keypoint
    ("coco17", "mpii16"): JointMapping("coco17", "mpii16", ((16, 0), (14, 1), (12, 2), (11, 3), (13, 4), (15, 5),
                                                            (10, 10), (8, 11), (6, 12), (5, 13), (7, 14), (9, 15))),
    # the 12 limb joints; CrowdPose's head top and neck have no COCO keypoint
    ("coco17", "crowdpose14"): JointMapping("coco17", "crowdpose14", tuple((c, c - 5) for c in range(5, 17))),
    # all 14: LSP's head top and neck are CrowdPose's
    ("lsp14", "crowdpose14"): JointMapping("lsp14", "crowdpose14", ((0, 11), (1, 9), (2, 7), (3, 6), (4, 8), (5, 10),
                                                                    (6, 5), (7, 3), (8, 1), (9, 0), (10, 2), (11, 4),
                                                                    (12, 13), (13, 12))),
}


def scoring_mapping(model_set: KeypointSet, benchmark_set: KeypointSet) -> JointMapping:
    """How ``model_set``'s keypoints are scored on ``benchmark_set``: identity for the same set, else a declared
    mapping of :data:`SCORING_MAPPINGS`.

    Raises:
        KeyError: no mapping declared (message names the known ones).
    """
    if model_set.name == benchmark_set.name:
        return JointMapping(model_set.name, benchmark_set.name,
                            tuple((k, k) for k in range(benchmark_set.num_keypoints)))
    try:
        return SCORING_MAPPINGS[(model_set.name, benchmark_set.name)]
    except KeyError:
        known = sorted({a for a, b in SCORING_MAPPINGS if b == benchmark_set.name} | {benchmark_set.name})
        raise KeyError(f"a {model_set.name} model cannot be scored on {benchmark_set.name} (models it can score: "
                       f"{', '.join(known)})") from None

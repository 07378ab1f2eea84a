"""The keypoint sets of the benchmarks (LSP 14, MPII 16, CrowdPose 14, COCO 17) and how a model's keypoints land on
them for scoring.

:data:`MPII16` and :data:`CROWDPOSE14` restate mmpose's dataset metainfo (``configs/_base_/datasets/mpii.py`` and
``crowdpose.py``: names, flip pairs, skeleton, OKS sigmas) as data. They are the built-in sets of ``core.keypoints``.

A model is scored on a benchmark through a :class:`~kanpose_cli.core.keypoints.JointMapping` from its keypoint set to
the benchmark's (:func:`scoring_mapping`): the benchmark joints that the model has are compared, the others are not
scored (and every report names which were). A model of the benchmark's own set maps one to one.
"""

from __future__ import annotations

from kanpose_cli.core.keypoints import COCO17, JOINT_MAPPINGS, LSP14, JointMapping, KeypointSet, get_keypoint_set

# MPII Human Pose (Andriluka et al., CVPR 2014) and CrowdPose (Li et al., CVPR 2019): the built-in data files
# (``core/keypoint_sets/mpii16.json``, ``crowdpose14.json``; values from mmpose's dataset metainfo).
MPII16 = get_keypoint_set("mpii16")
CROWDPOSE14 = get_keypoint_set("crowdpose14")

BENCHMARK_SETS = {s.name: s for s in (COCO17, LSP14, MPII16, CROWDPOSE14)}

# Model set -> benchmark set, (model index, benchmark index) pairs. Left and right are the person's in every set.
# COCO-17 onto LSP-14, MPII-16 and CrowdPose-14 are the declared mappings of ``core/keypoint_sets/
# joint_mappings.json`` (the 12 limb joints; neck, head top, pelvis and thorax have no COCO keypoint).
SCORING_MAPPINGS = {
    key: JOINT_MAPPINGS[key] for key in (("coco17", "lsp14"), ("coco17", "mpii16"), ("coco17", "crowdpose14"))
}
# all 14: LSP's head top and neck are CrowdPose's
SCORING_MAPPINGS[("lsp14", "crowdpose14")] = JointMapping(
    "lsp14", "crowdpose14", ((0, 11), (1, 9), (2, 7), (3, 6), (4, 8), (5, 10), (6, 5), (7, 3), (8, 1), (9, 0),
                             (10, 2), (11, 4), (12, 13), (13, 12)))


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

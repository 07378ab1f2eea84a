"""How the keypoints of a dataset's own set reach the model's set.

A dataset file describes its keypoints itself (:func:`~kanpose_cli.core.keypoints.keypoint_set_from_coco`,
:func:`~kanpose_cli.core.keypoints.keypoint_set_from_yolo`; or not at all: ``kpt_0`` ... names) or the user declares
the model's set (``--keypoint-set``, :func:`~kanpose_cli.core.keypoints.load_keypoint_set`). :func:`source_mapping`
decides how the source's keypoints land on the model's: unchanged (the same keypoints), through a declared
:class:`~kanpose_cli.core.keypoints.JointMapping` (mmpose's ``KeypointConverter``, as data), or a one-line error;
:func:`apply_mapping` moves the keypoints, :func:`map_instances` a dataset's people.
"""

from __future__ import annotations

import numpy as np

from kanpose_cli.core.data.instances import Instance
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.keypoints import (JointMapping, KeypointSet, get_joint_mapping, has_generic_names,
                                        same_keypoint_names)


def source_mapping(source: KeypointSet, target: KeypointSet, where: str,
                   positional: bool = False) -> JointMapping | None:
    """How keypoints of ``source`` become keypoints of ``target``.

    Args:
        source: the set a dataset file describes. target: the model's set.
        where: the file, for the error message.
        positional: take the source's keypoints as the target's, in order, when both have K keypoints (the user
            declared the set with ``--keypoint-set``).

    Returns:
        None when the keypoints are the same (equal names by
        :func:`~kanpose_cli.core.keypoints.same_keypoint_names`; or equal K and the source names none,
        or ``positional``), else the declared :class:`JointMapping` from ``source.name`` to ``target.name``.

    Raises:
        InputError: neither the same keypoints nor a declared mapping (one line).
    """
    same_k = source.num_keypoints == target.num_keypoints
    if same_k and (positional or has_generic_names(source)
                   or same_keypoint_names(source.names, target.names)):
        return None
    try:
        return get_joint_mapping(source.name, target.name)
    except KeyError:
        hint = ("; give --keypoint-set when the file's keypoints are the set's under other names" if same_k
                else "; train on one keypoint set")
        raise InputError(f"{where}: its {source.num_keypoints} keypoints ({source.name}) are not the model's "
                         f"{target.num_keypoints} ({target.name}) and no joint mapping from {source.name} to "
                         f"{target.name} is declared{hint}") from None


def apply_mapping(keypoints: np.ndarray, mapping: JointMapping | None, target: KeypointSet) -> np.ndarray:
    """``keypoints`` (..., K_src, 3) ``x, y, v`` on the target set (unchanged when ``mapping`` is None; unmapped
    target joints ``(0, 0, 0)``, unlabelled)."""
    if mapping is None:
        return np.asarray(keypoints, dtype=np.float64)
    return mapping.apply(keypoints, target.num_keypoints)


def map_instances(instances: list[Instance], mapping: JointMapping | None, target: KeypointSet) -> list[Instance]:
    """A dataset's people on the model's set ``target``: ``instances`` unchanged when ``mapping`` is None, else each
    one's keypoints through :func:`apply_mapping` (in place) and the people left with no labelled keypoint
    dropped."""
    if mapping is None:
        return instances
    out = []
    for inst in instances:
        inst.keypoints = apply_mapping(inst.keypoints, mapping, target)
        if (inst.keypoints[:, 2] > 0).any():
            out.append(inst)
    return out

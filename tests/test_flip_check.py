"""Left/right label check (``kanpose label --check-flips``, :mod:`kanpose_cli.core.tasks.flip_check`): the rule on
hand-made arrays, and a deliberately swapped official COCO person found by the real YOLO11n-pose teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kanpose_cli.core.keypoints import COCO17, LSP14
from kanpose_cli.core.tasks.flip_check import LIMB_GROUPS, flip_verdict, reorient

FLIP = np.asarray(COCO17.flip_index)


def frontal_person(scale: float = 1.0) -> np.ndarray:
    """(17, 3) a standing person seen from the front, 200 px tall: the person's left is the image's right."""
    xy = np.array([[100, 20], [105, 15], [95, 15], [112, 18], [88, 18],  # face
                   [125, 50], [75, 50], [135, 85], [65, 85], [140, 120], [60, 120],  # arms: left at larger x
                   [115, 110], [85, 110], [118, 155], [82, 155], [120, 200], [80, 200]], dtype=float)  # legs
    return np.column_stack([xy * scale, np.full(17, 2.0)])


AREA = 100.0 * 200.0  # box of the person above, pixels²


def test_correct_labels_are_clear_and_not_swapped():
    labels = frontal_person()
    v = flip_verdict(labels, labels[:, :2] + 2.0, np.full(17, 0.9), AREA)
    assert v.clear and not v.swapped and v.swapped_groups == []
    for g in v.groups.values():
        assert g.joints == 6 and g.oks_labelled > 0.9 and g.oks_swapped < 0.5


def test_viewer_side_labels_are_swapped_and_reoriented_back():
    truth = frontal_person()
    labels = truth[FLIP]  # labelled from the viewer's side: every left/right pair exchanged (face too)
    v = flip_verdict(labels, truth[:, :2], np.full(17, 0.9), AREA)
    assert v.swapped and v.swapped_groups == ["arms", "legs"]
    assert all(g.oks_swapped > 0.99 and g.oks_swapped >= g.oks_labelled + 0.3 for g in v.groups.values())
    fixed = reorient(labels, v.swapped_groups)
    np.testing.assert_array_equal(fixed[5:], truth[5:])  # limb joints back in place
    np.testing.assert_array_equal(fixed[:5], labels[:5])  # the rest (face points) kept as labelled


def test_only_the_swapped_group_is_reoriented():
    truth = frontal_person()
    labels = truth.copy()
    legs = np.asarray(LIMB_GROUPS["legs"])
    labels[legs] = truth[FLIP[legs]]
    v = flip_verdict(labels, truth[:, :2], np.full(17, 0.9), AREA)
    assert v.swapped_groups == ["legs"] and v.groups["arms"].clear and not v.groups["arms"].swapped
    np.testing.assert_array_equal(reorient(labels, v.swapped_groups), truth)


def test_side_view_is_clear_but_never_swapped():
    labels = frontal_person()
    for a, b in [(5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]:  # left and right 3 px apart
        mid = (labels[a, :2] + labels[b, :2]) / 2
        labels[a, :2], labels[b, :2] = mid + [1.5, 0], mid - [1.5, 0]
    v = flip_verdict(labels, labels[FLIP, :2], np.full(17, 0.9), AREA)  # even a teacher that says "swapped"
    assert v.clear and not v.swapped
    assert all(abs(g.oks_swapped - g.oks_labelled) < 0.3 for g in v.groups.values())


def test_not_clear_with_too_few_pairs_or_an_unsure_teacher():
    truth = frontal_person()
    labels = truth[FLIP]
    one_pair = labels.copy()
    one_pair[[7, 8, 9, 10], 2] = 0  # arms: only the shoulders labelled
    one_pair[[11, 13, 15], 2] = 0  # legs: left side unlabelled, so no pair is usable
    v = flip_verdict(one_pair, truth[:, :2], np.full(17, 0.9), AREA)
    assert v.groups["arms"].joints == 2 and not v.groups["arms"].clear and not v.swapped
    assert v.groups["legs"].joints == 0 and not v.clear
    assert flip_verdict(one_pair, truth[:, :2], np.full(17, 0.9), AREA, min_pairs=1).swapped_groups == ["arms"]
    unsure = np.full(17, 0.9)
    unsure[[6, 8, 10, 12, 14, 16]] = 0.3  # teacher below conf_thr on the right side: no usable pair
    v = flip_verdict(labels, truth[:, :2], unsure, AREA)
    assert not v.clear and not v.swapped and all(g.joints == 0 for g in v.groups.values())


def test_margin_is_inclusive_and_decides():
    truth = frontal_person()
    labels = truth[FLIP]
    v = flip_verdict(labels, truth[:, :2], np.full(17, 0.9), AREA)
    gap = min(g.oks_swapped - g.oks_labelled for g in v.groups.values())
    assert flip_verdict(labels, truth[:, :2], np.full(17, 0.9), AREA, margin=gap - 1e-3).swapped_groups == \
        ["arms", "legs"]
    assert not flip_verdict(labels, truth[:, :2], np.full(17, 0.9), AREA, margin=1.0).swapped


def test_rejects_other_keypoint_sets_and_shapes():
    with pytest.raises(ValueError, match="COCO-17"):
        flip_verdict(np.zeros((14, 3)), np.zeros((14, 2)), np.zeros(14), AREA, kset=LSP14)
    with pytest.raises(ValueError, match="expected labels"):
        flip_verdict(np.zeros((17, 2)), np.zeros((17, 2)), np.zeros(17), AREA)


# --- the real teacher on a real COCO image -----------------------------------------------------------------------

IMAGE_ID, SWAPPED_ID = 442450, 210845  # coco-mini train2017: two labelled people, 210845 seen from the front


def test_real_teacher_finds_a_swapped_coco_person_and_writes_a_cleaned_file(coco_mini, tmp_path):
    """One official person of a real train2017 image is labelled from the viewer's side on purpose: the check with
    YOLO11n-pose flags exactly that person, re-orients it to the official labels, leaves the other person alone,
    never touches the input file, and writes a file ``kanpose train`` reads."""
    from typer.testing import CliRunner

    from kanpose_cli.cli.app import app
    from kanpose_cli.core.data.training_sets import DataSource, load_sources

    src = json.loads((coco_mini / "annotations" / "person_keypoints_train2017.json").read_text())
    anns = [a for a in src["annotations"] if a["image_id"] == IMAGE_ID]
    assert sum(a["num_keypoints"] > 0 for a in anns) == 2
    official = {a["id"]: np.asarray(a["keypoints"], dtype=float).reshape(17, 3) for a in anns}
    for a in anns:
        if a["id"] == SWAPPED_ID:
            a["keypoints"] = official[SWAPPED_ID][FLIP].reshape(-1).tolist()
    one = dict(src, images=[im for im in src["images"] if im["id"] == IMAGE_ID], annotations=anns)
    ann = tmp_path / "swapped.json"
    ann.write_text(json.dumps(one))
    before = ann.read_bytes()
    out, report = tmp_path / "clean.json", tmp_path / "clean.flips.json"
    r = CliRunner().invoke(app, ["label", str(coco_mini / "train2017"), "--check-flips", str(ann), "--teacher",
                                 "yolo:yolo11n-pose.pt", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert ann.read_bytes() == before  # the input is never modified
    rep = json.loads(report.read_text())
    assert rep["counts"]["checked"] == 2 and rep["counts"]["clear"] == 2
    assert rep["counts"]["swapped"] == 1 and rep["counts"]["arms_swapped"] == 1 and rep["counts"]["legs_swapped"] == 1
    assert [row["ann_id"] for row in rep["swapped"]] == [SWAPPED_ID]
    cleaned = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    fixed = np.asarray(cleaned[SWAPPED_ID]["keypoints"], dtype=float).reshape(17, 3)
    np.testing.assert_allclose(fixed[5:], official[SWAPPED_ID][5:])  # limbs back to the official labels
    np.testing.assert_allclose(fixed[:5], official[SWAPPED_ID][FLIP][:5])  # face points kept as given
    other = next(i for i in cleaned if i != SWAPPED_ID)
    assert cleaned[other]["flip_check"]["swapped"] == []
    np.testing.assert_allclose(np.asarray(cleaned[other]["keypoints"], dtype=float).reshape(17, 3), official[other])
    inst, sizes = load_sources([DataSource(str(out), str(coco_mini / "train2017"))], COCO17)
    assert sizes == [2]
    # --drop-swapped keeps only the unswapped person
    r = CliRunner().invoke(app, ["label", str(coco_mini / "train2017"), "--check-flips", str(ann), "--teacher",
                                 "yolo:yolo11n-pose.pt", "--device", "cpu", "--drop-swapped", "--out",
                                 str(tmp_path / "dropped.json")])
    assert r.exit_code == 0, r.output
    assert [a["id"] for a in json.loads((tmp_path / "dropped.json").read_text())["annotations"]] == [other]
    assert json.loads((tmp_path / "dropped.flips.json").read_text())["counts"]["dropped"] == 1


def test_check_flips_refuses_to_overwrite_its_input(tmp_path):
    from typer.testing import CliRunner

    from kanpose_cli.cli.app import app

    ann = tmp_path / "set.json"
    ann.write_text(json.dumps({"images": [], "annotations": []}))
    r = CliRunner().invoke(app, ["label", str(tmp_path), "--check-flips", str(ann), "--out", str(ann)])
    assert r.exit_code == 2 and "input annotation file" in r.output
    r = CliRunner().invoke(app, ["label", str(tmp_path), "--check-flips", str(ann), "--fill",
                                 str(tmp_path / "other.mat"), "--out", str(tmp_path / "o.json")])
    assert r.exit_code == 2 and "same file" in r.output
    assert json.loads(ann.read_text()) == {"images": [], "annotations": []}

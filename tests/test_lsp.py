"""LSP / LSP-Extended joints.mat read onto COCO-17: joints, target weights, flip pairs, errors, mixed sampling."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from kanpose_cli.core.data.augment import AugmentConfig
from kanpose_cli.core.data.dataset import TopDownDataset
from kanpose_cli.core.data.lsp import BOX_MARGIN, load_lsp_instances, read_lsp_joints
from kanpose_cli.core.data.training_sets import DataSource, epoch_indices, epoch_size, load_sources
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import COCO17, LSP14, LSP14_TO_COCO17
from kanpose_cli.core.models.registry import create_model
from conftest import SHARED_DATA

# LSP-14 index -> COCO-17 name, written out by hand from the two joint lists (not from the mapping under test)
EXPECTED = {0: "right_ankle", 1: "right_knee", 2: "right_hip", 3: "left_hip", 4: "left_knee", 5: "left_ankle",
            6: "right_wrist", 7: "right_elbow", 8: "right_shoulder", 9: "left_shoulder", 10: "left_elbow",
            11: "left_wrist"}


def _person(rng, width, height):
    """14 LSP joints (x, y, flag) inside a width×height image, all visible."""
    xy = np.stack([rng.uniform(10, width - 10, 14), rng.uniform(10, height - 10, 14)], 1)
    return np.concatenate([xy, np.ones((14, 1))], 1)


@pytest.fixture
def lspet(tmp_path: Path):
    """A LSP-Extended style folder: joints.mat (14, 3, 3) and images/im0000{1,2,3}.jpg of different sizes."""
    rng = np.random.default_rng(0)
    sizes = [(160, 120), (100, 150), (200, 200)]
    people = [_person(rng, w, h) for w, h in sizes]
    people[0][11, 2] = 0  # left wrist not visible: unlabelled
    people[1][3, :2] = (-5.0, 40.0)  # left hip outside the image: unlabelled even though flagged visible
    people[2][:, 2] = 0  # nobody labelled: dropped
    (tmp_path / "images").mkdir()
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(tmp_path / "images" / f"im{i + 1:05d}.jpg"), np.full((h, w, 3), 127, np.uint8))
    savemat(tmp_path / "joints.mat", {"joints": np.stack(people, axis=2)})  # (14, 3, N) as LSP-Extended
    return tmp_path, sizes, people


def test_mapping_is_the_declared_lsp_to_coco_joints():
    for s, t in LSP14_TO_COCO17.pairs:
        assert COCO17.names[t] == EXPECTED[s] == LSP14.names[s]
    assert sorted(s for s, _ in LSP14_TO_COCO17.pairs) == list(range(12))  # neck (12), head top (13) unmapped
    assert len({t for _, t in LSP14_TO_COCO17.pairs}) == 12


def test_flip_pairs_commute_with_the_mapping():
    """Mirroring then mapping == mapping then mirroring, for every mapped joint."""
    to = dict(LSP14_TO_COCO17.pairs)
    for s, t in LSP14_TO_COCO17.pairs:
        assert COCO17.flip_index[t] == to[LSP14.flip_index[s]]
    assert all(LSP14.flip_index[LSP14.flip_index[i]] == i for i in range(14))


def test_lspet_joints_map_onto_coco17_with_weights(lspet):
    folder, sizes, people = lspet
    inst = load_lsp_instances(folder / "joints.mat", folder / "images", COCO17)
    assert [i.image_id for i in inst] == [1, 2]  # person 3 has no labelled joint
    for got, person, (w, h) in zip(inst, people, sizes):
        assert got.keypoints.shape == (17, 3) and (got.width, got.height) == (w, h)
        assert got.image_path.endswith(f"im{got.image_id:05d}.jpg")
        assert (got.keypoints[:5] == 0).all()  # no face points in LSP
        for s, t in LSP14_TO_COCO17.pairs:
            inside = 0 <= person[s, 0] <= w - 1 and 0 <= person[s, 1] <= h - 1
            if person[s, 2] > 0 and inside:
                np.testing.assert_allclose(got.keypoints[t, :2], person[s, :2])
                assert got.keypoints[t, 2] == 2
            else:
                assert got.keypoints[t, 2] == 0
    assert inst[0].keypoints[COCO17.names.index("left_wrist"), 2] == 0
    assert inst[1].keypoints[COCO17.names.index("left_hip"), 2] == 0
    # box: extent of the labelled LSP joints (head top and neck included) × BOX_MARGIN, clipped to the image
    p = people[0][people[0][:, 2] > 0, :2]
    c, half = (p.min(0) + p.max(0)) / 2, (p.max(0) - p.min(0)) / 2 * BOX_MARGIN
    want = [max(0, c[0] - half[0]), max(0, c[1] - half[1]), min(159, c[0] + half[0]), min(119, c[1] + half[1])]
    np.testing.assert_allclose(inst[0].box, want)


def test_flipped_training_sample_swaps_the_weights_of_left_and_right(lspet):
    """Through the real dataset + SimCC codec: with a forced flip, COCO joint t gets the weight joint flip(t) had."""
    folder, _, _ = lspet
    model = create_model("amfacpose-r18-128x96")
    inst = load_lsp_instances(folder / "joints.mat", folder / "images", COCO17)
    plain = TopDownDataset(inst, model, None)[0]
    off = dict(half_body_prob=0.0, shift_prob=0.0, scale_range=(1.0, 1.0), rotate_prob=0.0)
    flipped = TopDownDataset(inst, model, AugmentConfig(flip_prob=1.0, **off))[0]
    w0, w1 = plain["target_weight"].numpy(), flipped["target_weight"].numpy()
    assert (w0[:5] == 0).all() and (w1[:5] == 0).all()
    assert w0[COCO17.names.index("left_wrist")] == 0 and w0[COCO17.names.index("right_wrist")] == 1
    np.testing.assert_array_equal(w1, w0[list(COCO17.flip_index)])
    # the flipped crop's left shoulder sits where the plain crop's right shoulder is, mirrored (UDP: x' = W-1-x)
    codec = model.codec
    ls, rs = COCO17.names.index("left_shoulder"), COCO17.names.index("right_shoulder")
    x_plain = plain["target_x"][rs].argmax().item() / codec.split_ratio
    x_flip = flipped["target_x"][ls].argmax().item() / codec.split_ratio
    assert abs(x_flip - (model.input_size[1] - 1 - x_plain)) <= 1.0


def test_original_lsp_layout_marks_every_joint_labelled(tmp_path):
    rng = np.random.default_rng(1)
    person = _person(rng, 120, 160)
    person[:, 2] = 0
    person[4, 2] = 1  # LSP's third row flags occlusion: still labelled (v = 1)
    savemat(tmp_path / "joints.mat", {"joints": person.T[:, :, None]})  # (3, 14, 1)
    kp = read_lsp_joints(tmp_path / "joints.mat")
    assert kp.shape == (1, 14, 3)
    assert kp[0, 4, 2] == 1 and (np.delete(kp[0, :, 2], 4) == 2).all()
    np.testing.assert_allclose(kp[0, :, :2], person[:, :2])


def test_bad_joints_files_name_the_file(tmp_path):
    bad = tmp_path / "joints.mat"
    bad.write_bytes(b"not a matlab file at all")
    with pytest.raises(InputError, match="joints.mat"):
        read_lsp_joints(bad)
    savemat(bad, {"joints": np.zeros((5, 3, 2))})
    with pytest.raises(InputError, match=r"joints.mat.*shape \(5, 3, 2\)"):
        read_lsp_joints(bad)
    savemat(bad, {"points": np.zeros((14, 3, 2))})
    with pytest.raises(InputError, match="no 'joints'"):
        read_lsp_joints(bad)
    with pytest.raises(InputError, match="not found"):
        read_lsp_joints(tmp_path / "missing.mat")


def test_sources_combine_coco_and_lsp_with_ratios(lspet, coco_mini):
    folder, _, _ = lspet
    sources = [DataSource(str(coco_mini / "annotations" / "person_keypoints_train2017.json"),
                          str(coco_mini / "train2017"), ratio=0.5),
               DataSource(str(folder / "joints.mat"), str(folder / "images"), ratio=2.0)]
    assert [s.format for s in sources] == ["coco", "lsp"]
    instances, sizes = load_sources(sources, COCO17)
    assert sizes == [86, 2] and len(instances) == 88
    ratios = [s.ratio for s in sources]
    e0, e1 = (epoch_indices(sizes, ratios, seed=3, epoch=e) for e in (0, 1))
    assert len(e0) == len(e1) == epoch_size(sizes, ratios) == 43 + 4
    coco0 = e0[e0 < 86]
    assert len(set(coco0.tolist())) == 43  # half of the COCO persons, no repeats
    assert sorted(e0[e0 >= 86].tolist()) == [86, 86, 87, 87]  # each LSP person twice
    assert set(coco0.tolist()) != set(e1[e1 < 86].tolist())  # a different half each epoch
    np.testing.assert_array_equal(e0, epoch_indices(sizes, ratios, seed=3, epoch=0))  # a function of (seed, epoch)


def test_data_source_rejects_bad_values(tmp_path):
    with pytest.raises(UsageError, match="format"):
        DataSource(str(tmp_path / "labels.txt"), str(tmp_path))
    with pytest.raises(UsageError, match="ratio"):
        DataSource(str(tmp_path / "a.json"), str(tmp_path), ratio=0)


@pytest.mark.skipif(not (SHARED_DATA / "lspet" / "joints.mat").is_file(), reason="LSP-Extended not in shared data")
def test_real_lspet_first_person():
    root = SHARED_DATA / "lspet"
    inst = load_lsp_instances(root / "joints.mat", root / "images", COCO17)
    assert len(inst) == 4000
    first = inst[0]
    assert (first.width, first.height) == (157, 105)
    # joints.mat column 0: LSP left shoulder (9) = (102.388, 68.462), right wrist (6) = (131.312, 13.805)
    np.testing.assert_allclose(first.keypoints[COCO17.names.index("left_shoulder")], [102.388378, 68.462163, 2],
                               atol=1e-5)
    np.testing.assert_allclose(first.keypoints[COCO17.names.index("right_wrist")], [131.311648, 13.804999, 2],
                               atol=1e-5)
    assert first.keypoints[COCO17.names.index("right_ankle"), 2] == 0  # flagged not visible in the file


def test_teacher_fill_in_adds_only_missing_joints_of_matched_people(lspet):
    """``kanpose label --fill``: a matched teacher person fills the face points it scores ≥ kpt_thr; ground-truth
    joints stay as they are; a person the teacher does not match (OKS < match_oks) is written unfilled."""
    from kanpose_cli.core.tasks.labeler import fill_missing_keypoints

    folder, _, _ = lspet
    inst = load_lsp_instances(folder / "joints.mat", folder / "images", COCO17)

    class Teacher:
        name, keypoints = "stand-in teacher", COCO17

        def __call__(self, image, path):
            gt = next(i for i in inst if i.image_path == path)
            kp = gt.keypoints[:, :2].copy()
            kp[:5] = [[50, 20], [52, 18], [48, 18], [55, 19], [45, 19]]  # face points
            scores = np.full(17, 0.9)
            scores[3] = 0.2  # left ear below kpt_thr: stays unlabelled
            if gt.image_id == 2:
                kp += 40.0  # far from the person: no match
            return np.array([gt.box]), np.array([0.9]), kp[None], scores[None]

    coco, summary = fill_missing_keypoints(inst, Teacher(), folder / "images", kpt_thr=0.5, match_oks=0.5)
    assert summary.images == 2 and summary.persons == 2 and summary.keypoints == 4 + 1  # 4 face points + left wrist
    a1, a2 = coco["annotations"]
    kp1 = np.array(a1["keypoints"], dtype=float).reshape(17, 3)
    assert a1["filled"] == [0, 1, 2, 4, COCO17.names.index("left_wrist")]
    np.testing.assert_allclose(kp1[[0, 1, 2, 4], :2], [[50, 20], [52, 18], [48, 18], [45, 19]])
    assert kp1[3, 2] == 0 and (kp1[a1["filled"], 2] == 2).all()
    labelled = inst[0].keypoints[:, 2] > 0
    np.testing.assert_allclose(kp1[labelled], inst[0].keypoints[labelled], atol=0.01)  # ground truth untouched
    assert a2["filled"] == [] and a2["match_oks"] < 0.5
    np.testing.assert_allclose(np.array(a2["keypoints"], dtype=float).reshape(17, 3), inst[1].keypoints, atol=0.01)
    assert [im["file_name"] for im in coco["images"]] == ["im00001.jpg", "im00002.jpg"]
    # the written file trains like any COCO set
    import json

    out = folder / "filled.json"
    out.write_text(json.dumps(coco))
    again, sizes = load_sources([DataSource(str(out), str(folder / "images"))], COCO17)
    assert sizes == [2] and (again[0].keypoints[:, 2] > 0).sum() == a1["num_keypoints"]

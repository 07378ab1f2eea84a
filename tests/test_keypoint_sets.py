"""Keypoint sets as data: the built-in files, users' files (keypoint-set JSON, COCO categories, ultralytics YAML),
flip sides and the declared joint mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kanpose_cli.core import keypoints as K
from kanpose_cli.core.errors import InputError, UsageError
from kanpose_cli.core.keypoints import (COCO17, KEYPOINT_SETS, LSP14, KeypointSet, flip_index_from_names,
                                        get_joint_mapping, get_keypoint_set, load_keypoint_set)

SAMPLES = Path("/work/shared/data/keypoint-sets")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared keypoint-set samples not present")

PUBLISHED_K = {"coco17": 17, "lsp14": 14, "mpii16": 16, "aic14": 14, "crowdpose14": 14, "halpe26": 26, "ap10k17": 17,
               "onehand21": 21, "wflw98": 98, "coco_wholebody133": 133}


def test_every_builtin_file_loads_with_its_published_size():
    files = sorted(p.stem for p in K.SET_DIR.glob("*.json") if p.name != "joint_mappings.json")
    assert files == sorted(PUBLISHED_K)
    assert {name: s.num_keypoints for name, s in KEYPOINT_SETS.items()} == PUBLISHED_K
    for name, kset in KEYPOINT_SETS.items():
        raw = json.loads((K.SET_DIR / f"{name}.json").read_text())
        assert raw["source"] and raw["sigmas_source"] and raw["upper_body_source"], name
        assert len(kset.sigmas) == len(kset.flip_index) == kset.num_keypoints
        assert all(0 <= a < kset.num_keypoints and 0 <= b < kset.num_keypoints for a, b in kset.skeleton)
        # flip index: an involution; the upper body is closed under flipping (half-body picks both sides)
        assert all(kset.flip_index[kset.flip_index[k]] == k for k in range(kset.num_keypoints)), name
        assert {kset.flip_index[k] for k in kset.upper_body} == set(kset.upper_body), name
        # mirrored keypoints share their OKS sigma, except where the published sigmas were measured per joint
        # (AI Challenger; COCO-WholeBody's feet, face and hands)
        if name not in ("aic14", "coco_wholebody133"):
            assert all(kset.sigmas[k] == kset.sigmas[kset.flip_index[k]] for k in range(kset.num_keypoints)), name


def test_sets_without_published_sigmas_use_one_over_k_and_say_so():
    for name in ("onehand21", "wflw98"):
        kset = KEYPOINT_SETS[name]
        assert kset.sigmas == tuple(1.0 / kset.num_keypoints for _ in kset.names)
        assert json.loads((K.SET_DIR / f"{name}.json").read_text())["sigmas_source"].startswith("1/K")


def test_coco17_and_lsp14_keep_their_values():
    assert COCO17 is get_keypoint_set("coco17") and LSP14 is get_keypoint_set("LSP14")
    assert COCO17.names[:3] == ("nose", "left_eye", "right_eye") and COCO17.names[-1] == "right_ankle"
    assert COCO17.flip_index == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert COCO17.sigmas == (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107,
                             0.107, 0.087, 0.087, 0.089, 0.089)
    assert COCO17.skeleton[:3] == ((15, 13), (13, 11), (16, 14)) and len(COCO17.skeleton) == 19
    assert COCO17.upper_body == tuple(range(11))
    assert LSP14.names[0] == "right_ankle" and LSP14.names[12:] == ("neck", "head_top")
    assert LSP14.flip_index == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)
    assert LSP14.sigmas == (0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.062, 0.072, 0.079, 0.079, 0.072, 0.062,
                            0.079, 0.079)
    assert LSP14.upper_body == (6, 7, 8, 9, 10, 11, 12, 13)


def test_spot_values_against_mmpose_metainfo():
    """Values read by hand from open-mmlab/mmpose configs/_base_/datasets/*.py (commit 759b39c1)."""
    assert KEYPOINT_SETS["crowdpose14"].sigmas == (0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
                                                   0.087, 0.089, 0.089, 0.079, 0.079)
    mpii = KEYPOINT_SETS["mpii16"]
    pairs = sorted({tuple(sorted((k, j))) for k, j in enumerate(mpii.flip_index) if k != j})
    assert pairs == [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]
    assert mpii.names[6:10] == ("pelvis", "thorax", "upper_neck", "head_top")
    assert mpii.sigmas[12] == 0.179 and mpii.sigmas[9] == 0.026
    assert KEYPOINT_SETS["aic14"].sigmas[0] == 0.01388152 and KEYPOINT_SETS["aic14"].names[12:] == ("head_top", "neck")
    halpe = KEYPOINT_SETS["halpe26"]
    assert halpe.names[17:20] == ("head", "neck", "hip") and halpe.sigmas[17:20] == (0.026, 0.026, 0.066)
    wb = KEYPOINT_SETS["coco_wholebody133"]
    assert wb.names[91] == "left_hand_root" and wb.names[wb.flip_index[91]] == "right_hand_root"
    assert wb.names[wb.flip_index[23]] == "face-16" and wb.sigmas[-1] == 0.031
    ap = KEYPOINT_SETS["ap10k17"]
    assert ap.names[4] == "root_of_tail" and ap.names[ap.flip_index[7]] == "right_front_paw"
    assert KEYPOINT_SETS["onehand21"].flip_index == tuple(range(21))
    assert len(KEYPOINT_SETS["onehand21"].skeleton) == 20 and KEYPOINT_SETS["wflw98"].flip_index[0] == 32


def test_round_trip_to_dict_from_dict():
    for kset in KEYPOINT_SETS.values():
        back = KeypointSet.from_dict(json.loads(json.dumps(kset.to_dict())))
        assert back == kset


def test_names_ignore_case_and_dashes_and_suggest_on_typos():
    assert load_keypoint_set("COCO-WholeBody133") is KEYPOINT_SETS["coco_wholebody133"]
    assert load_keypoint_set(" Halpe26 ") is KEYPOINT_SETS["halpe26"]
    assert load_keypoint_set(COCO17) is COCO17
    with pytest.raises(UsageError, match=r"unknown keypoint set 'crowdpos14'; did you mean crowdpose14\?"):
        load_keypoint_set("crowdpos14")
    with pytest.raises(KeyError, match="did you mean mpii16"):
        get_keypoint_set("mpi16")
    with pytest.raises(UsageError, match="known: "):
        load_keypoint_set("zzzzzz")


def test_flip_index_from_names_reads_every_left_right_spelling():
    names = ["nose", "left_eye", "right_eye", "L_Ear", "R_Ear", "LeftPaw", "RightPaw", "hip_l", "hip_r",
             "front left leg", "front right leg", "cleft"]
    flip = flip_index_from_names(names)
    assert flip == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 11)
    assert flip_index_from_names(["a", "b", "left_only"]) == (0, 1, 2)


@needs_samples
@pytest.mark.parametrize("folder,expected", [("aic", "aic14"), ("ap10k", "ap10k17"), ("crowdpose", "crowdpose14"),
                                             ("onehand10k", "onehand21"), ("ochuman", "coco17"), ("wflw", None)])
def test_coco_category_gives_the_set_of_each_sample(folder, expected):
    path = SAMPLES / folder / f"test_{folder}.json"
    data = json.loads(path.read_text())
    k = len(data["annotations"][0]["keypoints"]) // 3
    kset = load_keypoint_set(path)
    assert kset.num_keypoints == k
    if expected is None:  # WFLW's categories name no keypoints: generic names, no flip pairs, 1/K sigmas
        assert kset.names[:2] == ("kpt_0", "kpt_1") and kset.flip_index == tuple(range(k))
        assert kset.sigmas == tuple(1.0 / k for _ in range(k)) and kset.name == "face98"
    else:
        assert kset is KEYPOINT_SETS[expected]


@needs_samples
@pytest.mark.parametrize("folder,name", [("ap10k", "ap10k17"), ("aic", "aic14"), ("crowdpose", "crowdpose14"),
                                         ("onehand10k", "onehand21")])
def test_sample_categories_agree_with_builtin_names_and_skeleton(folder, name):
    """The built-in names are the datasets' own (compared without case or separators: AIC writes 'Right Shoulder'),
    and every link of the file's 1-based skeleton is a link of the built-in set."""
    cat = json.loads((SAMPLES / folder / f"test_{folder}.json").read_text())["categories"][0]
    kset = KEYPOINT_SETS[name]
    assert [K.normalise_keypoint_name(n) for n in cat["keypoints"]] == list(kset.names)
    if folder == "crowdpose":  # its files carry COCO-17's skeleton (links up to 17): the built-in set is used whole
        assert max(max(link) for link in cat["skeleton"]) == 17
        return
    links = {frozenset(p) for p in kset.skeleton}
    assert {frozenset((a - 1, b - 1)) for a, b in cat["skeleton"]} <= links


def _coco_file(tmp_path, names, skeleton, k=None, name="hand"):
    k = len(names) if k is None else k
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [0] * (3 * k)}],
            "categories": [{"id": 1, "name": name, "keypoints": names, "skeleton": skeleton}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_custom_coco_category_makes_a_new_set(tmp_path):
    names = ["tip", "left_base", "right_base", "Left Handle", "Right Handle"]
    kset = load_keypoint_set(_coco_file(tmp_path, names, [[1, 2], [1, 3], [2, 4], [3, 5]], name="Pole Vault"))
    assert kset.name == "pole_vault5" and kset.names == tuple(names)
    assert kset.skeleton == ((0, 1), (0, 2), (1, 3), (2, 4))  # 1-based in the file
    assert kset.flip_index == (0, 2, 1, 4, 3)
    assert kset.sigmas == (0.2,) * 5 and kset.upper_body == tuple(range(5))
    # a skeleton that uses keypoint 0 is 0-based; links beyond K are dropped (CrowdPose's files carry COCO's)
    kset = load_keypoint_set(_coco_file(tmp_path, names, [[0, 1], [3, 4], [4, 5], [16, 17]]))
    assert kset.skeleton == ((0, 1), (3, 4)) and kset.name == "hand5"
    kset = load_keypoint_set(_coco_file(tmp_path, names, [[1, 2], [5, 6]]))
    assert kset.skeleton == ((0, 1),)


def test_keypoint_set_json_file(tmp_path):
    path = tmp_path / "my-hand.json"
    d = KEYPOINT_SETS["onehand21"].to_dict()
    path.write_text(json.dumps(d))
    assert load_keypoint_set(path) == KEYPOINT_SETS["onehand21"]
    del d["name"], d["sigmas"]
    path.write_text(json.dumps(d))
    kset = load_keypoint_set(str(path))
    assert kset.name == "my_hand" and kset.sigmas == (1 / 21,) * 21


def test_yolo_yaml_round_trip(tmp_path):
    for kset in (COCO17, KEYPOINT_SETS["ap10k17"], KEYPOINT_SETS["wflw98"]):
        path = tmp_path / "data.yaml"
        path.write_text(yaml.safe_dump({"path": "../ds", "train": "images/train", "val": "images/val",
                                        **K.yolo_keypoint_fields(kset)}))
        assert load_keypoint_set(path) is kset
    custom = KeypointSet.from_dict({"name": "bat3", "names": ["knob", "left_grip", "right_grip"],
                                    "flip_index": [0, 2, 1]})
    path = tmp_path / "bat.yml"
    path.write_text(yaml.safe_dump(K.yolo_keypoint_fields(custom, class_name="bat")))
    back = load_keypoint_set(path)
    assert (back.name, back.names, back.flip_index, back.sigmas) == ("bat3", custom.names, (0, 2, 1), (1 / 3,) * 3)


def test_yolo_yaml_without_names(tmp_path):
    path = tmp_path / "data.yaml"
    # ultralytics' coco8-pose.yaml before 8.3: COCO's flip_idx, no names -> COCO-17
    path.write_text("kpt_shape: [17, 3]\nflip_idx: [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]\n"
                    "names:\n  0: person\n")
    assert load_keypoint_set(path) is COCO17
    path.write_text("kpt_shape: [4, 2]\nflip_idx: [1, 0, 2, 3]\nnames: [tiger]\n")
    kset = load_keypoint_set(path)
    assert kset.names == ("kpt_0", "kpt_1", "kpt_2", "kpt_3") and kset.flip_index == (1, 0, 2, 3)
    assert kset.name == "tiger4" and kset.sigmas == (0.25,) * 4
    path.write_text("kpt_shape: [3, 3]\nkpt_names:\n  0: [nose, l_ear, r_ear]\n")
    assert load_keypoint_set(path).flip_index == (0, 2, 1)  # no flip_idx: from the names


@pytest.mark.parametrize("text,entry", [
    ("kpt_shape: [17]\n", "kpt_shape must be"),
    ("kpt_shape: [3, 4]\n", "kpt_shape must be"),
    ("kpt_shape: [3, 3]\nflip_idx: [0, 1]\n", "flip_idx must list 3"),
    ("kpt_shape: [3, 3]\nflip_idx: [1, 2, 0]\n", "flip_idx is not symmetric: 0 -> 1 but 1 -> 2"),
    ("kpt_shape: [3, 3]\nkpt_names: {0: [a, b]}\n", "kpt_names must give 3"),
    ("kpt_shape: [2, 3]\nkpt_names: [a, a]\n", "kpt_names names 'a' twice"),
    ("kpt_shape: [3, 3\n", "not valid YAML at line"),
    ("- 1\n- 2\n", "expected a mapping with 'kpt_shape'"),
])
def test_malformed_yaml_gives_one_line_naming_file_and_entry(tmp_path, text, entry):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_keypoint_set(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and entry in msg


@pytest.mark.parametrize("data,entry", [
    ({"name": "x", "names": ["a", "b"], "flip_index": [1, 1]}, "'flip_index' is not symmetric"),
    ({"name": "x", "names": ["a", "b"], "sigmas": [0.1]}, "'sigmas' has 1 entries, expected 2"),
    ({"name": "x", "names": ["a", "b"], "skeleton": [[0, 2]]}, "'skeleton' link [0, 2] is out of range"),
    ({"names": []}, "'names' must be a non-empty list"),
    ({"images": []}, "neither a keypoint-set file"),
    ({"categories": []}, "no 'categories' entry"),
    ({"categories": [{"keypoints": ["a", 3]}]}, "categories[0].keypoints must be a list of keypoint names"),
    ({"categories": [{"keypoints": ["a", "b"], "skeleton": [[1, "x"]]}]}, "categories[0].skeleton[0] = [1, 'x']"),
    ({"categories": [{"keypoints": ["a", "b"], "skeleton": [[1, 2], [-1, 2]]}]}, "categories[0].skeleton[1]"),
    ({"categories": [{"keypoints": ["a", "a"]}]}, "categories[0].keypoints names 'a' twice"),
    ({"categories": [{"keypoints": []}], "annotations": []}, "no annotation has keypoints"),
    ({"categories": [{"keypoints": []}], "annotations": [{"keypoints": [1, 2]}]}, "annotations[0].keypoints has 2"),
])
def test_malformed_json_gives_one_line_naming_file_and_entry(tmp_path, data, entry):
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as e:
        load_keypoint_set(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and entry in msg


def test_missing_or_unparsable_files(tmp_path):
    with pytest.raises(InputError, match="keypoint-set file .*nope.json does not exist"):
        load_keypoint_set(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"names\": [")
    with pytest.raises(InputError, match=r"bad.json: not valid JSON \(.* at line 1 column"):
        load_keypoint_set(bad)
    other = tmp_path / "set.txt"
    other.write_text("x")
    with pytest.raises(UsageError, match="expected a .json or .yaml file"):
        load_keypoint_set(other)


def test_sides_follow_the_flip_index_not_the_name_prefix():
    assert set(KEYPOINT_SETS["onehand21"].sides()) == {"centre"}  # no flip pairs at all
    ap = KEYPOINT_SETS["ap10k17"]
    sides = dict(zip(ap.names, ap.sides()))
    assert (sides["left_front_paw"], sides["right_back_paw"], sides["root_of_tail"]) == ("left", "right", "centre")
    neutral = KeypointSet.from_dict({"name": "n", "names": ["a", "b", "c", "d", "e"], "flip_index": [3, 4, 2, 0, 1]})
    assert neutral.sides() == ("left", "left", "centre", "right", "right")  # lower index of each pair is left
    # names that say left win over the index order, also with l_/r_ or left/right anywhere
    named = KeypointSet.from_dict({"name": "m", "names": ["r_x", "l_x", "mid", "tail_right", "tail_left"],
                                   "flip_index": [1, 0, 2, 4, 3]})
    assert named.sides() == ("right", "left", "centre", "right", "left")
    assert LSP14.sides()[:6] == ("right",) * 3 + ("left",) * 3


def test_declared_joint_mappings_join_joints_of_the_same_name():
    assert len(K.JOINT_MAPPINGS) >= 9
    for (source, target), mapping in K.JOINT_MAPPINGS.items():
        src, tgt = get_keypoint_set(source), get_keypoint_set(target)
        assert all(src.names[s] == tgt.names[t] for s, t in mapping.pairs), (source, target)
        assert len({t for _, t in mapping.pairs}) == len(mapping.pairs)
    assert K.LSP14_TO_COCO17 is get_joint_mapping("lsp14", "COCO17")
    assert len(get_joint_mapping("coco17", "mpii16").pairs) == 12
    assert get_joint_mapping("coco17", "crowdpose14").pairs[0] == (5, 0)
    with pytest.raises(KeyError, match="no joint mapping from 'onehand21'"):
        get_joint_mapping("onehand21", "coco17")



def _draw(kset, points):
    """One person whose keypoints sit at ``points`` (K, 2), drawn on a grey 400 x 400 image without its box."""
    import numpy as np

    from kanpose_cli.core.draw import draw_poses
    from kanpose_cli.core.results import PoseResult

    result = PoseResult(boxes=[[0, 0, 10, 10]], box_scores=[1.0], keypoints=np.asarray(points, float)[None],
                        keypoint_scores=np.ones((1, kset.num_keypoints)), image_size=(400, 400), keypoint_set=kset)
    return draw_poses(np.full((400, 400, 3), 128, np.uint8), result, draw_boxes=False, radius=4, thickness=2)


def _side_at(canvas, x, y):
    """Which of the side colours the pixel (x, y) is closest to (lines are anti-aliased)."""
    from kanpose_cli.core.draw import _LEFT, _MID, _RIGHT

    pixel = [int(v) for v in canvas[y, x]]
    return min((("left", _LEFT), ("right", _RIGHT), ("centre", _MID)),
               key=lambda c: sum((a - b) ** 2 for a, b in zip(pixel, c[1])))[0]


def test_drawing_colours_by_flip_side():
    grid = [(20 + 40 * (i % 9), 20 + 40 * (i // 9)) for i in range(21)]  # dots far apart, none covers another
    hand = _draw(KEYPOINT_SETS["onehand21"], grid)
    assert {_side_at(hand, x, y) for x, y in grid} == {"centre"}  # a hand: no left/right at all
    ap = KEYPOINT_SETS["ap10k17"]
    canvas = _draw(ap, grid[:17])
    drawn = {name: _side_at(canvas, *grid[k]) for k, name in enumerate(ap.names)}
    assert (drawn["left_eye"], drawn["right_back_paw"], drawn["neck"]) == ("left", "right", "centre")
    assert [drawn[n] for n in ap.names] == list(ap.sides())
    # neutral names: the lower index of a pair is left; links take their ends' side (a-b left, d-e right, a-d centre)
    neutral = KeypointSet.from_dict({"name": "n", "names": ["a", "b", "c", "d", "e"], "flip_index": [3, 4, 2, 0, 1],
                                     "skeleton": [[0, 1], [3, 4], [0, 3]]})
    pts = [(50, 50), (50, 250), (200, 150), (350, 50), (350, 250)]
    canvas = _draw(neutral, pts)
    assert [_side_at(canvas, x, y) for x, y in pts] == ["left", "left", "centre", "right", "right"]
    assert (_side_at(canvas, 50, 150), _side_at(canvas, 350, 150), _side_at(canvas, 120, 50)) == \
        ("left", "right", "centre")


def test_oks_nms_uses_the_sets_sigmas():
    """Two instances 6 px apart per keypoint on a 100 x 100 area: with the wide sigmas of a 3-keypoint set (1/K) they
    are the same person, with COCO-like narrow sigmas they are not. The caller must say which."""
    import numpy as np

    from kanpose_cli.core.evaluation.oks_nms import oks_nms

    a = np.array([[10.0, 10.0, 1.0], [50.0, 40.0, 1.0], [80.0, 90.0, 1.0]])
    b = a + [6.0, 0.0, 0.0]
    wide = KeypointSet.from_dict({"name": "t3", "names": ["a", "b", "c"]}).sigmas_array()
    args = (np.stack([a, b]), np.array([0.9, 0.8]), np.full(2, 1e4))
    assert oks_nms(*args, sigmas=wide) == [0]
    assert oks_nms(*args, sigmas=np.full(3, 0.025)) == [0, 1]
    with pytest.raises(TypeError):
        oks_nms(*args)  # no COCO default
    with pytest.raises(ValueError, match="2 OKS sigmas for 3 keypoints"):
        oks_nms(*args, sigmas=np.full(2, 0.1))


def test_ultralytics_shipped_dataset_yamls():
    """The pose dataset YAMLs that come with ultralytics (read as files; ultralytics is not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    folder = Path(spec.origin).parent / "cfg" / "datasets"
    assert load_keypoint_set(folder / "coco8-pose.yaml") is COCO17
    dog = load_keypoint_set(folder / "dog-pose.yaml")
    assert dog.num_keypoints == 24 and dog.name == "dog24"
    raw = yaml.safe_load((folder / "dog-pose.yaml").read_text())
    assert list(dog.names) == raw["kpt_names"][0] and "flip_idx" not in raw  # flip pairs from the names
    assert dog.flip_index[:6] == (6, 7, 8, 9, 10, 11) and dog.flip_index[12:18] == (12, 13, 15, 14, 16, 17)
    assert dog.sides()[dog.names.index("front_left_paw")] == "left"
    hand = load_keypoint_set(folder / "hand-keypoints.yaml")
    assert hand.num_keypoints == 21 and hand.sigmas == (1 / 21,) * 21

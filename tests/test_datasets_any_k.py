"""Datasets as users have them, with any keypoint set (issue 33, items 2-3): COCO-style JSON with any K (the set from
``categories[0]``), the ultralytics YOLO-pose layout (read to the same people as the COCO JSON it was written from),
one-line errors for malformed files, and ``kanpose train`` → ``kanpose eval coco`` on a 21-keypoint hand set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from kanpose_cli.cli.app import app
from kanpose_cli.core.data.coco import load_coco_instances, load_coco_source, read_coco_json
from kanpose_cli.core.data.dataset_keypoints import source_mapping
from kanpose_cli.core.data.yolo_pose import label_path, load_yolo_instances, read_data_yaml, yolo_to_coco
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.keypoints import (COCO17, KEYPOINT_SETS, LSP14, flip_index_from_names, keypoint_set_from_coco,
                                        load_keypoint_set, same_keypoint_names)

SETS = SHARED_DATA / "keypoint-sets"
HANDS = SETS / "onehand10k" / "test_onehand10k.json"
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "amfacpose-r18-128x96-coco-lsp.safetensors"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set KANPOSE_SHARED_DATA)")
    return path


# ------------------------------------------------------------------------------------------------ COCO JSON, any K
@pytest.mark.parametrize("rel, name, k, people, flips", [
    ("onehand10k/test_onehand10k.json", "onehand21", 21, 4, {}),
    ("aic/test_aic.json", "aic14", 14, 9, {0: 3, 6: 9, 12: 12}),  # Right Shoulder <-> Left Shoulder, hips
    ("crowdpose/test_crowdpose.json", "crowdpose14", 14, 4, {0: 1, 10: 11, 12: 12}),  # one person has 0 keypoints
    ("ap10k/test_ap10k.json", "ap10k17", 17, 2, {0: 1, 2: 2, 5: 8, 11: 14}),
    ("ochuman/test_ochuman.json", "coco17", 17, 5, dict(enumerate(COCO17.flip_index))),
])
def test_coco_reader_takes_the_keypoint_set_from_categories(rel, name, k, people, flips):
    ann = need(SETS / rel)
    data = read_coco_json(ann)
    kset = keypoint_set_from_coco(data, str(ann))
    # the names are a built-in set's (AIC writes 'Right Shoulder'): that set whole, with its published OKS sigmas
    assert kset is KEYPOINT_SETS[name] and kset.num_keypoints == k
    assert same_keypoint_names(kset.names, data["categories"][0]["keypoints"])
    for a, b in flips.items():
        assert kset.flip_index[a] == b and kset.flip_index[b] == a
    if not flips:  # a hand has no left/right keypoints
        assert kset.flip_index == tuple(range(k))
    inst = load_coco_source(ann, ann.parent, kset)
    assert len(inst) == people
    assert all(i.keypoints.shape == (k, 3) for i in inst)
    first = data["annotations"][0]
    np.testing.assert_array_equal(inst[0].keypoints.ravel(), np.asarray(first["keypoints"], dtype=float))


def _renamed(data: dict) -> dict:
    """``data`` with its keypoints renamed ``my_...``: not a built-in set's names, so the file's own set is made."""
    cat = data["categories"][0]
    cat["keypoints"] = [f"my_{n}" for n in cat["keypoints"]]
    return data


def test_coco_skeleton_is_one_based_and_links_beyond_k_are_dropped():
    hands = keypoint_set_from_coco(_renamed(read_coco_json(need(HANDS))))
    assert hands.name == "hand21" and np.allclose(hands.sigmas, 1 / 21)
    assert hands.skeleton[0] == (0, 1) and hands.skeleton[-1] == (19, 20) and len(hands.skeleton) == 20
    data = read_coco_json(need(SETS / "crowdpose" / "test_crowdpose.json"))
    assert max(max(link) for link in data["categories"][0]["skeleton"]) == 17
    assert len(data["categories"][0]["skeleton"]) == 12
    crowd = keypoint_set_from_coco(_renamed(data))
    # CrowdPose's file carries COCO's skeleton (1-based up to 17) with 14 keypoints: links naming 15..17 go
    assert crowd.name == "person14" and crowd.flip_index[:2] == (1, 0)
    assert all(0 <= a < 14 and 0 <= b < 14 for a, b in crowd.skeleton) and len(crowd.skeleton) == 9


def test_a_file_without_keypoint_names_gets_generic_names_and_k_from_the_annotations():
    kset = keypoint_set_from_coco(read_coco_json(need(SETS / "wflw" / "test_wflw.json")))
    assert kset.num_keypoints == 98 and kset.names[:2] == ("kpt_0", "kpt_1") and kset.name == "face98"
    assert keypoint_set_from_coco({"images": [], "annotations": [{"keypoints": [0] * 51}]}) == COCO17


def test_flip_pairs_from_left_right_names():
    names = ["nose", "Left Eye", "Right Eye", "l_knee", "r_knee", "left-paw", "right-paw", "tail", "leftover"]
    assert flip_index_from_names(names) == (0, 2, 1, 4, 3, 6, 5, 7, 8)


def test_a_source_on_another_set_maps_through_a_declared_mapping_or_fails_in_one_line():
    assert source_mapping(COCO17, COCO17, "x") is None
    assert source_mapping(LSP14, COCO17, "x").source == "lsp14"
    hands = keypoint_set_from_coco(read_coco_json(need(HANDS)))
    with pytest.raises(InputError) as exc:
        source_mapping(hands, COCO17, "hands.json")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("hands.json: its 21 keypoints (onehand21)") and "no joint mapping" in msg


def test_malformed_coco_file_names_the_file_and_the_annotation(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    good = {"id": 11, "image_id": 1, "bbox": [1, 1, 20, 20], "keypoints": [5, 5, 2] * 17, "iscrowd": 0}
    bad = {"id": 12, "image_id": 1, "bbox": [1, 1, 20, 20], "keypoints": [5, 5, 2] * 16 + [1, 2], "iscrowd": 0}
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}], "annotations": [good, bad],
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.names)}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        load_coco_instances(path, tmp_path, COCO17)
    assert str(exc.value) == f"{path}: ann id 12: 'keypoints' has 50 values, expected 3×17"
    bad.update(keypoints=[5, 5, 2] * 17, bbox=[1, 2, 3])
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"ann id 12: 'bbox' must be 4 numbers"):
        load_coco_instances(path, tmp_path, COCO17)
    data["categories"][0]["keypoints"] = "nose"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"bad.json: categories\[0\]\.keypoints must be a list"):
        load_coco_source(path, tmp_path, COCO17)


def test_keypoint_set_file_and_name(tmp_path):
    assert load_keypoint_set("coco17") == COCO17
    f = tmp_path / "hand.yaml"
    f.write_text("name: hand3\nnames: [wrist, left_tip, right_tip]\nflip_index: [0, 2, 1]\nsigmas: [0.1, 0.2, 0.3]\n")
    kset = load_keypoint_set(str(f))
    assert kset.names == ("wrist", "left_tip", "right_tip") and kset.sigmas == (0.1, 0.2, 0.3)
    f.write_text("name: hand3\nnames: [wrist, a, b]\nflip_index: [0, 2, 2]\n")
    with pytest.raises(InputError, match="hand.yaml: 'flip_index' is not symmetric"):
        load_keypoint_set(str(f))


# ------------------------------------------------------------------------------------------------ YOLO-pose
def write_yolo_dataset(ann_file: Path, images_dir: Path, root: Path, kpt_names: list[str] | None = None,
                       flip_idx: list[int] | None = None, name: str = "person") -> Path:
    """Write a COCO keypoint file out as an ultralytics YOLO-pose dataset (images symlinked into images/train,
    one label file per image in labels/train, train.txt listing ``./images/train/...``, data.yaml); every non-crowd
    annotation with a box becomes one line, in annotation order. Returns the data.yaml."""
    data = json.loads(ann_file.read_text())
    k = len(data["annotations"][0]["keypoints"]) // 3
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    lines: dict[int, list[str]] = {}
    for a in data["annotations"]:
        if a.get("iscrowd", 0):
            continue
        im = next(i for i in data["images"] if i["id"] == a["image_id"])
        W, H = im["width"], im["height"]
        x, y, w, h = a["bbox"]
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        vals = [(x + w / 2) / W, (y + h / 2) / H, w / W, h / H]
        for px, py, v in kp:
            vals += [px / W, py / H, v]
        lines.setdefault(im["id"], []).append("0 " + " ".join(f"{v:.8f}" for v in vals))
    listed = []
    for im in data["images"]:
        dst = root / "images" / "train" / im["file_name"]
        os.symlink(images_dir / im["file_name"], dst)
        listed.append(f"./images/train/{im['file_name']}")
        if im["id"] in lines:
            (root / "labels" / "train" / (Path(im["file_name"]).stem + ".txt")).write_text(
                "\n".join(lines[im["id"]]) + "\n")
    (root / "train.txt").write_text("\n".join(listed) + "\n")
    yaml_lines = [f"path: {root}", "train: images/train", "val: train.txt", f"kpt_shape: [{k}, 3]",
                  f"names:\n  0: {name}"]
    if flip_idx is not None:
        yaml_lines.append(f"flip_idx: {json.dumps(flip_idx)}")
    if kpt_names is not None:
        yaml_lines.append(f"kpt_names:\n  0: {json.dumps(kpt_names)}")
    (root / "data.yaml").write_text("\n".join(yaml_lines) + "\n")
    return root / "data.yaml"


@pytest.fixture(scope="module")
def coco_mini_yolo(coco_mini, tmp_path_factory) -> tuple[Path, Path, Path]:
    ann = coco_mini / "annotations" / "person_keypoints_train2017.json"
    images = coco_mini / "train2017"
    root = tmp_path_factory.mktemp("yolo") / "coco-mini-pose"
    return write_yolo_dataset(ann, images, root, flip_idx=list(COCO17.flip_index)), ann, images


def test_yolo_pose_reader_gives_the_coco_readers_people(coco_mini_yolo):
    """coco-mini train2017 written as a YOLO-pose dataset reads back to the same people as the COCO JSON: boxes
    within 1e-3 px after the normalised round trip, the same labelled keypoints at the same places."""
    yaml_file, ann, images = coco_mini_yolo
    data = read_data_yaml(yaml_file)
    assert data.kpt_shape == (17, 3) and data.keypoints == COCO17
    coco = load_coco_instances(ann, images, COCO17)
    for split in ("train", "val"):  # a folder of images; a .txt list of ./ paths
        yolo = load_yolo_instances(data, split)
        assert len(yolo) == len(coco) == 86
        by_name: dict[str, list] = {}
        for inst in coco:
            by_name.setdefault(Path(inst.image_path).name, []).append(inst)
        got: dict[str, list] = {}
        for inst in yolo:
            got.setdefault(Path(inst.image_path).name, []).append(inst)
        assert sorted(got) == sorted(by_name)
        for name, people in by_name.items():
            for a, b in zip(people, got[name], strict=True):
                assert (a.width, a.height) == (b.width, b.height)
                np.testing.assert_allclose(b.box, a.box, atol=1e-3, rtol=0)
                lab_a, lab_b = a.keypoints[:, 2] > 0, b.keypoints[:, 2] > 0
                np.testing.assert_array_equal(lab_a, lab_b)
                np.testing.assert_array_equal(a.keypoints[:, 2], b.keypoints[:, 2])
                np.testing.assert_allclose(b.keypoints[lab_b, :2], a.keypoints[lab_a, :2], atol=1e-3, rtol=0)


def test_yolo_label_path_rule():
    assert label_path("/d/images/train/images/a.b.jpg") == Path("/d/images/train/labels/a.b.txt")
    assert label_path("/d/images/x.png") == Path("/d/labels/x.txt")


def test_yolo_split_as_coco_annotations_scores_its_own_ground_truth_ap_1(coco_mini_yolo):
    from kanpose_cli.core.data.coco import quiet_coco
    from kanpose_cli.core.evaluation.coco_metric import score_results

    yaml_file, _, _ = coco_mini_yolo
    coco, root = yolo_to_coco(yaml_file, "val")
    assert len(coco["images"]) == 80 and len(coco["annotations"]) == 86
    assert Path(root, coco["images"][0]["file_name"]).is_file()
    gt = quiet_coco(coco)
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in coco["annotations"]]
    assert score_results(gt, results, keypoint_set=COCO17)["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2", "line 2: 4 values, expected 56"),
    ("0 0.5 0.5 0.2 0.2" + " 0.5 x 2" + " 0.5 0.5 2" * 16, "line 2: 'x' is not a number"),
    ("3 0.5 0.5 0.2 0.2" + " 0.5 0.5 2" * 17, "line 2: class 3 is not a class id of the dataset (0..0)"),
    ("0 0.5 0.5 0.2 0.2" + " 1.5 0.5 2" + " 0.5 0.5 2" * 16, "line 2: coordinates must be normalised"),
    ("0 0.5 0.5 0.2 0.2" + " 0.5 0.5 7" * 17, "line 2: keypoint visibility must be 0, 1 or 2"),
])
def test_malformed_label_line_names_file_and_line(tmp_path, line, message):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    import cv2

    cv2.imwrite(str(root / "images" / "a.jpg"), np.zeros((32, 48, 3), np.uint8))
    good = "0 0.5 0.5 0.2 0.2" + " 0.5 0.5 2" * 17
    (root / "labels" / "a.txt").write_text(f"{good}\n{line}\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images\nval: images\nkpt_shape: [17, 3]\nnames: [person]\n")
    with pytest.raises(InputError) as exc:
        load_yolo_instances(root / "data.yaml")
    assert str(exc.value).startswith(f"{root / 'labels' / 'a.txt'} {message}") and "\n" not in str(exc.value)
    # the same through the CLI: exit 1, one error line, no traceback
    res = CliRunner().invoke(app, ["train", "--data", str(root / "data.yaml"), "--model", "amfacpose-r18-128x96",
                                   "--epochs", "1", "--workers", "0", "-q", "--project", str(tmp_path / "runs")])
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.output


def test_yolo_yaml_errors_are_one_line(tmp_path):
    f = tmp_path / "data.yaml"
    f.write_text("train: images\nnames: [a]\n")
    with pytest.raises(InputError, match="no 'kpt_shape'"):
        read_data_yaml(f)
    f.write_text("train: images\nnames: [a]\nkpt_shape: [3, 4]\n")
    with pytest.raises(InputError, match=r"kpt_shape must be \[K, 2\] or \[K, 3\]"):
        read_data_yaml(f)
    f.write_text("train: images\nnames: [a]\nkpt_shape: [3, 2]\nflip_idx: [0, 1]\n")
    with pytest.raises(InputError, match="flip_idx must list 3 keypoint indices"):
        read_data_yaml(f)


def test_two_column_keypoints_and_zero_points_are_unlabelled(tmp_path):
    import cv2

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    cv2.imwrite(str(root / "images" / "a.png"), np.zeros((50, 100, 3), np.uint8))
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.4 0.4 0.25 0.5 0 0 0.5 0.6\n")
    (root / "data.yaml").write_text("train: images\nkpt_shape: [3, 2]\nflip_idx: [0, 1, 2]\nnames: {0: hand}\n")
    data = read_data_yaml(root / "data.yaml")
    assert data.root == root and data.keypoints.name == "hand3"
    (inst,) = load_yolo_instances(data)
    np.testing.assert_allclose(inst.keypoints, [[25, 25, 2], [0, 0, 0], [50, 30, 2]])
    np.testing.assert_allclose(inst.box, [30, 15, 69, 34])  # xywh (30, 15, 40, 20), inclusive pixels


# ------------------------------------------------------------------------------------------------ train / eval, K=21
def _card(path: Path):
    from kanpose_cli.core.weights.card import read_model_card

    return read_model_card(path)


@pytest.mark.slow
def test_train_hands_from_coco_json_with_coco_init_then_eval(tmp_path, monkeypatch):
    """A 21-keypoint hand set through ``kanpose train`` (--init the shipped COCO-17 checkpoint: everything but the
    head loaded, the table says the head's tensors were skipped for their shape) and ``kanpose eval coco``."""
    from safetensors import safe_open

    hands = need(HANDS)
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--model", "amfacpose-r18-128x96", "--init", str(SHIPPED),
                              "--train-ann", str(hands), "--train-images", str(hands.parent), "--val-ann", str(hands),
                              "--val-images", str(hands.parent), "--epochs", "1", "--batch", "2", "--workers", "0",
                              "-q", "--project", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    assert "keypoints onehand21 (21)" in res.stderr
    skipped = [ln for ln in res.stderr.splitlines() if "head.proj" in ln and "skipped" in ln]
    assert len(skipped) == 2 and all("differs from the model's (21" in ln for ln in skipped)
    run = tmp_path / "runs" / "exp1"
    assert json.loads((run / "config.json").read_text())["keypoints"]["names"][:2] == ["wrist", "thumb1"]
    last = run / "weights" / "last.safetensors"
    kset = _card(last).keypoints()
    assert kset.num_keypoints == 21 and kset.name == "onehand21" and kset.skeleton[0] == (0, 1)
    with safe_open(str(last), "pt") as f:
        assert f.get_tensor("net.head.proj.weight").shape[0] == 21
    # eval coco with any K: metrics.json holds an AP in [0, 1], scored with the set's sigmas
    res = runner.invoke(app, ["eval", "coco", "--ann", str(hands), "--images", str(hands.parent), "--weights",
                              str(last), "--save-dir", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "eval" / "exp1" / "metrics.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0 and metrics["num_images"] == 4
    assert metrics["settings"]["keypoint_set"] == "onehand21"
    # a COCO-17 model on the hand file: one line, exit 2
    res = runner.invoke(app, ["eval", "coco", "--ann", str(hands), "--images", str(hands.parent), "--weights",
                              str(SHIPPED), "--save-dir", str(tmp_path / "eval")])
    assert res.exit_code == 2 and "predicts 17 keypoints (coco17); the annotations of test_onehand10k.json have 21" \
        in res.stderr


@pytest.mark.slow
def test_train_yolo_pose_data_yaml_and_resume_rebuild_the_same_model(tmp_path, monkeypatch):
    """``kanpose train --data data.yaml`` (the hands written as a YOLO-pose dataset with kpt_names): the model takes
    the YAML's set, validates on its val split (OKS-AP with the set's sigmas), and ``--resume`` rebuilds it."""
    hands = need(HANDS)
    names = json.loads(hands.read_text())["categories"][0]["keypoints"]
    yaml_file = write_yolo_dataset(hands, hands.parent, tmp_path / "hands", kpt_names=names, name="hand")
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    base = ["--workers", "0", "-q", "--project", str(tmp_path / "runs")]
    res = runner.invoke(app, ["train", "--data", str(yaml_file), "--model", "amfacpose-r18-128x96", "--epochs", "1",
                              "--batch", "2", "--val-every", "1", *base])
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "exp1"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["keypoints"]["name"] == "onehand21" and cfg["data"]["val"]["format"] == "yolo"
    assert cfg["data"]["train"][0]["split"] == "train"
    header = (run / "results.csv").read_text().splitlines()
    row = dict(zip(header[0].split(","), header[1].split(",")))
    assert 0.0 <= float(row["AP"]) <= 1.0
    assert _card(run / "weights" / "best.safetensors").keypoints().num_keypoints == 21
    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2", *base])
    assert res.exit_code == 0, res.output
    assert "keypoints onehand21 (21)" in res.stderr
    assert _card(run / "weights" / "last.safetensors").keypoints().names == tuple(names)


def test_half_body_is_off_for_a_set_without_halves():
    from kanpose_cli.core.data.augment import AugmentConfig, half_body

    rng = np.random.default_rng(0)
    kp = np.random.default_rng(1).uniform(0, 100, (21, 2))
    vis = np.ones(21)
    cfg = AugmentConfig()
    assert half_body(rng, kp, vis, range(21), 0.75, cfg) is None  # a set read from a file: every keypoint "upper"
    assert half_body(rng, kp, vis, range(10), 0.75, cfg) is not None  # a set with an upper and a lower half


def test_ap10k_species_categories_are_scored_as_one_skeleton():
    """AP-10K files put each species in its own category; kanpose writes results with ``category_id`` 1, so the
    annotations are scored as one category: the ground truth fed back scores AP 1, a moved keypoint less."""
    from kanpose_cli.core.evaluation.coco_metric import score_results
    from kanpose_cli.core.keypoints import get_keypoint_set

    ann = need(SETS / "ap10k" / "test_ap10k.json")
    data = json.loads(ann.read_text())
    assert len({a["category_id"] for a in data["annotations"]}) == 2  # antelope (1) and another species (26)
    kset = get_keypoint_set("ap10k17")
    res = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
           for a in data["annotations"]]
    assert score_results(ann, res, keypoint_set=kset)["AP"] == pytest.approx(1.0)
    moved = [dict(r, keypoints=[v + 40.0 if i % 3 == 0 else v for i, v in enumerate(r["keypoints"])]) for r in res]
    assert score_results(ann, moved, keypoint_set=kset)["AP"] < 0.9

"""Any keypoint set end to end (issue 33, "Done when"): a 21-keypoint hand set and the 14-keypoint LSP set each go
through ``kanpose train`` (a few steps, ``--init`` the shipped COCO-17 checkpoint) → ``kanpose eval`` → ``kanpose
predict`` (JSON keypoint names, a drawn image) → ``kanpose export`` (ONNX) → ``kanpose predict`` from the ONNX file,
which must give the checkpoint's keypoints."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from kanpose_cli.cli.app import app
from kanpose_cli.core.keypoints import get_keypoint_set

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "amfacpose-r18-128x96-coco-lsp.safetensors"
HANDS = SHARED_DATA / "keypoint-sets" / "onehand10k" / "test_onehand10k.json"
LSPET = SHARED_DATA / "lspet"

# name -> (train arguments, eval arguments, an image to predict, K, the first two keypoint names)
CASES = {
    "hand21": (
        lambda: ["--train-ann", str(HANDS), "--train-images", str(HANDS.parent)],
        lambda ckpt, out: ["eval", "coco", "--ann", str(HANDS), "--images", str(HANDS.parent), "--weights", ckpt,
                           "--save-dir", out],
        lambda: HANDS.parent / "9.jpg", 21, ["wrist", "thumb1"]),
    "lsp14": (
        # 8 of the 4,000 LSP-Extended people per epoch: a few steps
        lambda: ["--train-ann", str(LSPET / "joints.mat"), "--train-images", str(LSPET / "images"),
                 "--keypoint-set", "lsp14", "--train-ratio", "0.002"],
        lambda ckpt, out: ["eval", "lsp", "--data", str(LSPET), "--range", "1-6", "--weights", ckpt,
                           "--save-dir", out],
        lambda: LSPET / "images" / "im00001.jpg", 14, ["right_ankle", "right_knee"]),
}


def _predict(runner, image: Path, weights: str, out: Path) -> dict:
    res = runner.invoke(app, ["predict", str(image), "--weights", weights, "--detector", "none", "--device", "cpu",
                              "--kpt-thr", "0",
                              "--save-dir", str(out)])
    assert res.exit_code == 0, res.output
    run = out / "exp1"
    drawn = cv2.imread(str(run / image.name))
    original = cv2.imread(str(image))
    assert drawn is not None and drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original.astype(int)).sum() > 0  # something was drawn
    return json.loads((run / f"{image.stem}.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_keypoint_set_flows_through_train_eval_predict_export(case, tmp_path, monkeypatch):
    train_args, eval_args, image_of, num_keypoints, first_names = CASES[case]
    if not (HANDS.is_file() and (LSPET / "joints.mat").is_file()):
        pytest.skip(f"shared data not found under {SHARED_DATA} (set KANPOSE_SHARED_DATA)")
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()

    # train: a few steps from the COCO-17 checkpoint (everything but the head)
    res = runner.invoke(app, ["train", "--model", "amfacpose-r18-128x96", "--init", str(SHIPPED), *train_args(),
                              "--epochs", "1", "--batch", "2", "--workers", "0", "-q", "--device", "cpu",
                              "--project", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    ckpt = tmp_path / "runs" / "exp1" / "weights" / "last.safetensors"
    from kanpose_cli.core.weights.card import read_model_card

    kset = read_model_card(ckpt).keypoints()
    assert kset.num_keypoints == num_keypoints and list(kset.names[:2]) == first_names
    k = kset.num_keypoints

    # eval: the benchmark's metric is a number in [0, 1] for this set
    res = runner.invoke(app, eval_args(str(ckpt), str(tmp_path / "eval")))
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "eval" / "exp1" / "metrics.json").read_text())
    value = metrics["AP"] if case == "hand21" else metrics["PCK@0.2"]
    assert 0.0 <= value <= 1.0

    # predict: the JSON names the set's keypoints, one (x, y, score) row per keypoint
    image = image_of()
    pred = _predict(runner, image, str(ckpt), tmp_path / "pred")
    assert pred["keypoint_names"] == list(kset.names)
    assert len(pred["instances"]) == 1
    kpts = np.asarray(pred["instances"][0]["keypoints"], dtype=float)  # --kpt-thr 0: every keypoint written
    scores = np.asarray(pred["instances"][0]["keypoint_scores"], dtype=float)
    assert kpts.shape == (k, 2) and scores.shape == (k,)

    # export to ONNX; the file carries the whole set and predicts the same keypoints
    onnx_file = tmp_path / f"{case}.onnx"
    res = runner.invoke(app, ["export", "--weights", str(ckpt), "--out", str(onnx_file)])
    assert res.exit_code == 0, res.output
    assert read_model_card(onnx_file).keypoints() == kset
    pred_onnx = _predict(runner, image, str(onnx_file), tmp_path / "pred-onnx")
    assert pred_onnx["keypoint_names"] == list(kset.names)
    kpts_onnx = np.asarray(pred_onnx["instances"][0]["keypoints"], dtype=float)
    scores_onnx = np.asarray(pred_onnx["instances"][0]["keypoint_scores"], dtype=float)
    assert np.abs(kpts_onnx - kpts).max() < 0.05  # pixels of the image
    assert np.abs(scores_onnx - scores).max() < 1e-3


def test_built_in_hand_and_lsp_sets_are_the_ones_the_flow_trains():
    """The sets above are the built-in ones (names and K), so the flow test checks real skeletons."""
    assert get_keypoint_set("onehand21").num_keypoints == 21
    assert get_keypoint_set("lsp14").names[:2] == ("right_ankle", "right_knee")

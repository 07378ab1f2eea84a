"""``kanpose train --init``: the parts of a model that a checkpoint has are loaded, the rest stays new, and a table
says which (KAN-FPN-Stem from ViTPose-S weights: ViT blocks and head loaded, patch embedding skipped, stem new)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.models import create_model
from kanpose_cli.core.weights import init_weights, read_model_card, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vitpose_s_files(tmp_path_factory):
    """A random ViTPose-S as a kanpose checkpoint and as an official (mmpose) ``.pth``, and the model itself."""
    folder = tmp_path_factory.mktemp("vits")
    torch.manual_seed(0)
    vit = create_model("vitpose-s")
    save_checkpoint(vit, folder / "vitpose-s.safetensors")
    official = {("keypoint_head." + k[5:] if k.startswith("head.") else k): v for k, v in vit.net.state_dict().items()}
    torch.save({"state_dict": official, "meta": {"epoch": 210}}, folder / "vitpose_small.pth")
    return folder, vit


@pytest.mark.parametrize("file", ["vitpose-s.safetensors", "vitpose_small.pth"])
def test_kanfpn_s4_from_vitpose_s_loads_blocks_and_head(vitpose_s_files, file):
    folder, vit = vitpose_s_files
    model = create_model("kanfpn-s4")
    stem_before = model.net.stem.body.body.conv1.weight.clone()
    report = init_weights(model, str(folder / file))
    by = {(r.part, r.status): r for r in report.rows}
    assert by[("backbone.blocks", "loaded")].tensors == 12 * 12 and by[("head.final_layer", "loaded")].tensors == 2
    assert ("backbone.pos_embed", "loaded") in by and ("head.deconv_layers", "loaded") in by
    skipped = by[("backbone.patch_embed", "skipped")]
    assert skipped.tensors == 2 and "stem replaces" in skipped.reason and skipped.params == 384 * 3 * 16 * 16 + 384
    assert {r.part for r in report.rows if r.status == "new"} == {"stem.body", "stem.fpn", "stem.reducer"}
    assert report.loaded == 159 and report.skipped == 2
    assert report.format == ("kanpose vitpose-s" if file.endswith("safetensors") else "mmpose-vitpose")
    torch.testing.assert_close(model.net.backbone.blocks[7].mlp.fc2.weight, vit.net.backbone.blocks[7].mlp.fc2.weight)
    torch.testing.assert_close(model.net.head.deconv_layers[1].running_var, vit.net.head.deconv_layers[1].running_var)
    assert torch.equal(model.net.stem.body.body.conv1.weight, stem_before)  # new parts keep their initial values
    assert "159 tensors loaded" in report.summary()


def test_init_errors_are_one_line(vitpose_s_files, tmp_path):
    folder, _ = vitpose_s_files
    with pytest.raises(WeightsError, match="init weights not found"):
        init_weights(create_model("kanfpn-s4"), str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsError, match="none of the .* fit amfacpose") as err:
        init_weights(create_model("amfacpose-r18-256x192"), str(folder / "vitpose-s.safetensors"))
    assert "\n" not in str(err.value)
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(UsageError, match="not an ONNX file"):
        init_weights(create_model("kanfpn-s4"), str(tmp_path / "m.onnx"))
    with pytest.raises(UsageError, match="no published weights"):
        init_weights(create_model("amfacpose-r18-256x192"), "hub")


def test_train_kanfpn_s4_with_init_reports_and_runs(vitpose_s_files, coco_mini, tmp_path, monkeypatch):
    """`kanpose train --model kanfpn-s4 --init <ViTPose-S checkpoint>` runs 2 steps on 8 real persons, prints the
    loaded/skipped/new table, and records the init in the checkpoint's provenance."""
    from kanpose_cli.core.data.coco import subset_annotations

    folder, _ = vitpose_s_files
    ann = tmp_path / "sub8.json"
    subset_annotations(coco_mini / "annotations" / "person_keypoints_train2017.json", ann, 8)
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    res = CliRunner().invoke(app, [
        "train", "--model", "kanfpn-s4", "--init", str(folder / "vitpose_small.pth"), "--train-ann", str(ann),
        "--train-images", str(coco_mini / "train2017"), "--epochs", "1", "--batch", "4", "--no-aug", "--workers", "0",
        "-q", "--set", "sched.warmup_iters=1", "--project", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    out = res.stderr
    assert "159 tensors loaded" in out and "2 skipped" in out
    for part, status in [("backbone.blocks", "loaded"), ("head.deconv_layers", "loaded"), ("stem.fpn", "new"),
                         ("stem.body", "new"), ("backbone.patch_embed", "skipped")]:
        assert any(part in line and status in line for line in out.splitlines()), (part, status, out)
    assert "done: 1 epoch, 2 steps" in out
    ckpt = tmp_path / "runs" / "exp1" / "weights" / "last.safetensors"
    init = read_model_card(ckpt).provenance["init"]
    assert init["source"] == "vitpose_small.pth" and init["loaded"] == 159 and init["new"] > 300
    cfg = json.loads((tmp_path / "runs" / "exp1" / "config.json").read_text())
    assert cfg["init"].endswith("vitpose_small.pth")


def test_init_report_counts_a_mixed_module_list_per_class(tmp_path):
    """AMFACPose's ``backbone.scrm`` holds three Identity and one SCRM (``scrm="last"``): the kind says so."""
    model = create_model("amfacpose-r18-128x96")
    save_checkpoint(model, tmp_path / "a.safetensors")
    report = init_weights(create_model("amfacpose-r18-128x96"), str(tmp_path / "a.safetensors"))
    kinds = {r.part: r.kind for r in report.rows}
    assert kinds["backbone.scrm"] == "3 × Identity + 1 × SCRM"
    assert kinds["backbone.stages"] == "4 × Sequential" and kinds["head.proj"] == "Conv2d"


def test_shipped_weights_by_name():
    """``shipped``, the shipped file's name (with or without ``.safetensors``, any case) and the model's name all
    resolve to the shipped file; a name that matches nothing is a one-line error listing the shipped files."""
    from kanpose_cli.core.paths import shipped_weights_dir
    from kanpose_cli.core.weights import resolve_init, resolve_weights_path

    shipped = shipped_weights_dir() / "amfacpose-r18-128x96-coco-lsp.safetensors"
    assert shipped.is_file()
    for name in ("shipped", "SHIPPED", "amfacpose-r18-128x96-coco-lsp", "amfacpose-r18-128x96-coco-lsp.safetensors",
                 "AMFACPose-R18-128x96-COCO-LSP", "amfacpose-r18-128x96"):
        assert resolve_weights_path(name, "amfacpose-r18-128x96") == shipped, name
    assert resolve_weights_path("shipped", None) == shipped  # the default model's
    assert resolve_init("amfacpose-r18-128x96-coco-lsp.safetensors") == str(shipped.resolve())
    assert resolve_init("hub") == "hub"
    with pytest.raises(WeightsError, match="init weights not found: nonesuch .*amfacpose-r18-128x96-coco-lsp") as err:
        resolve_init("nonesuch")
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="'amfacpose-r18-256x192' has no shipped weights"):
        resolve_weights_path("shipped", "amfacpose-r18-256x192")
    with pytest.raises(WeightsError, match="not found: sub/amfacpose-r18-128x96-coco-lsp"):  # a path is only a path
        resolve_weights_path("sub/amfacpose-r18-128x96-coco-lsp", None)


def test_predict_and_eval_weights_accept_shipped_names():
    """``--weights`` of predict/eval/export goes through the same resolution (load_pose_model)."""
    from kanpose_cli.core.weights import load_pose_model

    a = load_pose_model(None, "amfacpose-r18-128x96-coco-lsp.safetensors")
    b = load_pose_model(None, "shipped")
    assert a.weights_label == b.weights_label == "amfacpose-r18-128x96-coco-lsp.safetensors"
    assert a.name == "amfacpose-r18-128x96"
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(a.net(x), b.net(x))
    with pytest.raises(WeightsError, match="weights file not found: nonesuch.safetensors"):
        load_pose_model(None, "nonesuch.safetensors")


def test_train_init_shipped_prints_the_path(coco_mini, tmp_path, monkeypatch):
    """`kanpose train --init shipped` loads every tensor of the shipped file and prints where it came from."""
    from kanpose_cli.core.data.coco import subset_annotations
    from kanpose_cli.core.paths import shipped_weights_dir

    ann = tmp_path / "sub4.json"
    subset_annotations(coco_mini / "annotations" / "person_keypoints_train2017.json", ann, 4)
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "300")
    res = CliRunner().invoke(app, [
        "train", "--init", "shipped", "--train-ann", str(ann), "--train-images", str(coco_mini / "train2017"),
        "--epochs", "1", "--batch", "4", "--no-aug", "--workers", "0", "-q", "--project", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    shipped = (shipped_weights_dir() / "amfacpose-r18-128x96-coco-lsp.safetensors").resolve()
    assert f"init {shipped}" in res.stderr
    assert "0 skipped, 0 new" in res.stderr
    cfg = json.loads((tmp_path / "runs" / "exp1" / "config.json").read_text())
    assert cfg["init"] == str(shipped)
    bad = CliRunner().invoke(app, ["train", "--init", "nonesuch", "--train-ann", str(ann), "--train-images",
                                   str(coco_mini / "train2017"), "--project", str(tmp_path / "runs")])
    assert bad.exit_code == 3 and len(bad.stderr.strip().splitlines()) == 1
    assert "amfacpose-r18-128x96-coco-lsp" in bad.stderr

"""``kanpose export`` / ONNX-backed predict: parity with PyTorch on real crops, metadata, CLI errors.

One small variant per model family is chosen at run time from the registry (families are added concurrently).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.models import create_model, get_spec, list_models
from kanpose_cli.core.models.complexity import count_params

FAMILIES = sorted({get_spec(n).family for n in list_models()})
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")

_SMALL: dict[str, str] = {}


def smallest_variant(family: str) -> str:
    """The variant of ``family`` with the fewest parameters (ties: smaller input), built once per session."""
    if family not in _SMALL:
        def key(name):
            spec = get_spec(name)
            try:  # cheap: no memory, no init
                with torch.device("meta"):
                    params = count_params(create_model(name))
            except Exception:  # noqa: BLE001 - some builders compute values at build time (meta tensors refuse .item())
                params = count_params(create_model(name))
            return params, spec.input_size[0] * spec.input_size[1], name
        _SMALL[family] = min(list_models(family), key=key)
    return _SMALL[family]


@pytest.fixture(scope="module")
def crops_cache():
    return {}


def _crops(model, coco_mini, cache):
    key = (tuple(model.input_size), model.spec.udp)
    if key not in cache:
        from kanpose_cli.core.export.exporter import gt_crops

        cache[key] = gt_crops(model, coco_mini, n=4)
    return cache[key]


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_export_parity_every_family(family, coco_mini, tmp_path, crops_cache):
    """Raw-output ONNX export of one small variant per family: decoded keypoints within 0.01 px of PyTorch on real
    GT-box crops (batch 4, exported with batch 2: the batch axis is dynamic); metadata round-trips."""
    from kanpose_cli.core.export.exporter import check_onnx_parity, export_onnx, read_onnx_meta

    name = smallest_variant(family)
    torch.manual_seed(0)
    model = create_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert not model.training, "export must leave the model in eval mode"
    meta = read_onnx_meta(path)
    assert meta["model"] == name and meta["input_size"] == list(model.input_size)
    assert meta["keypoint_names"] == list(model.keypoints.names)
    assert meta["codec"] == model.codec.config() and meta["decode"] is False
    assert meta["mean"] == list(model.spec.mean) and meta["std"] == list(model.spec.std)
    crops = _crops(model, coco_mini, crops_cache)
    report = check_onnx_parity(model, path, crops, tol_px=0.01)
    assert report.n_crops == 4
    assert report.raw_max_abs is not None and report.raw_max_abs < 1e-3
    assert report.kpt_max_px <= 0.01, f"{name}: {report}"
    assert report.score_max_abs < 1e-3


def test_onnx_decode_in_graph_simcc(coco_mini, tmp_path, crops_cache):
    """``--decode``: the SimCC decode traces; keypoints (crop px) + scores straight from onnxruntime."""
    from kanpose_cli.core.export.exporter import check_onnx_parity, export_onnx
    from kanpose_cli.core.models.registry import PoseModel
    from kanpose_cli.core.weights import load_pose_model

    name = smallest_variant("amfacpose") if "amfacpose" in FAMILIES else smallest_variant(FAMILIES[0])
    torch.manual_seed(0)
    model = create_model(name)
    path = export_onnx(model, tmp_path / "dec.onnx", decode=True)
    crops = _crops(model, coco_mini, crops_cache)
    report = check_onnx_parity(model, path, crops)
    assert report.raw_max_abs is None and report.kpt_max_px <= 0.01, report
    onnx_model = load_pose_model(None, str(path))  # the same PoseModel class, onnxruntime as its network
    assert isinstance(onnx_model, PoseModel) and onnx_model.spec is get_spec(name)
    assert onnx_model.net.decode_in_graph and onnx_model.backend == "onnxruntime CPUExecutionProvider"
    x = model.normalize(torch.from_numpy(crops))
    k, s = onnx_model.predict(x)
    k_ref, s_ref = model.predict(x)
    assert k.shape == (4, model.keypoints.num_keypoints, 2) and s.shape == k.shape[:2]
    assert float((k - k_ref).abs().max()) <= 0.01
    # flip test: raw-output files merge exactly like PyTorch; decode-in-graph files stay close on real crops
    raw = load_pose_model(name, str(export_onnx(model, tmp_path / "raw.onnx")))
    kf, _ = raw.predict(x, flip=True)
    kf_ref, _ = model.predict(x, flip=True)
    assert float((kf - kf_ref).abs().max()) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_decode_in_graph_every_family(family, coco_mini, tmp_path, crops_cache):
    from kanpose_cli.core.export.exporter import check_onnx_parity, export_onnx

    name = smallest_variant(family)
    torch.manual_seed(0)
    model = create_model(name)
    report = check_onnx_parity(model, export_onnx(model, tmp_path / "d.onnx", decode=True),
                               _crops(model, coco_mini, crops_cache))
    assert report.kpt_max_px <= 0.01, report


@pytest.mark.slow
def test_torchscript_export_parity(coco_mini, tmp_path, crops_cache):
    from kanpose_cli.core.export.exporter import check_torchscript_parity, export_torchscript

    name = smallest_variant(FAMILIES[0])
    model = create_model(name)
    report = check_torchscript_parity(model, export_torchscript(model, tmp_path / "m.pt"),
                                      _crops(model, coco_mini, crops_cache))
    assert report.ok, report


def _predict_json(source: Path, weights: Path, out: Path) -> tuple[dict[str, dict], str]:
    res = runner.invoke(app, ["predict", str(source), "--weights", str(weights), "--detector", "none",
                              "--no-save", "--kpt-thr", "0", "--save-dir", str(out)])
    assert res.exit_code == 0, res.output
    files = sorted((out / "exp1").glob("*.json"))
    assert files
    return {f.name: json.loads(f.read_text()) for f in files}, res.output


def test_predict_with_onnx_matches_safetensors(unlabeled_images, tmp_path):
    """Random-weights checkpoint -> ``kanpose export`` -> ``kanpose predict --weights model.onnx`` gives the same
    keypoints (within 0.5 px) as the .safetensors checkpoint on real images."""
    from kanpose_cli.core.weights.checkpoint import save_checkpoint

    name = smallest_variant("amfacpose") if "amfacpose" in FAMILIES else smallest_variant(FAMILIES[0])
    torch.manual_seed(1)
    ckpt = save_checkpoint(create_model(name), tmp_path / "m.safetensors")
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted(unlabeled_images.glob("*.jpg"))[:2]:
        (images / p.name).symlink_to(p)
    onnx_path = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export", "--weights", str(ckpt), "--out", str(onnx_path), "--image",
                              str(next(images.iterdir())), "--crops", "2"])
    assert res.exit_code == 0, res.output
    assert onnx_path.is_file() and "parity" in res.output
    ref, _ = _predict_json(images, ckpt, tmp_path / "pt")
    got, output = _predict_json(images, onnx_path, tmp_path / "ort")
    assert "CPUExecutionProvider" in output
    assert ref.keys() == got.keys()
    for key in ref:
        assert got[key]["model"] == name
        for a, b in zip(ref[key]["instances"], got[key]["instances"]):
            ka, kb = np.array(a["keypoints"], dtype=float), np.array(b["keypoints"], dtype=float)
            assert ka.shape == kb.shape == (17, 2)
            assert np.abs(ka - kb).max() <= 0.5


@pytest.mark.parametrize("decode", [False, True])
def test_predict_with_torchscript_export_matches_source(unlabeled_images, tmp_path, decode):
    """``kanpose export --format torchscript`` -> ``kanpose predict --weights <file>`` without ``--model``: the file's
    card names the model, and the keypoints match the source weights' (PyTorch) within float tolerance, for raw
    outputs and for the decode in the graph (issue 31: the file could not be used)."""
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted(unlabeled_images.glob("*.jpg"))[:2]:
        (images / p.name).symlink_to(p)
    ts = tmp_path / ("best-decode.torchscript.pt" if decode else "best.torchscript.pt")
    res = runner.invoke(app, ["export", "--weights", "shipped", "--format", "torchscript", "--out", str(ts),
                              "--no-verify"] + (["--decode"] if decode else []))
    assert res.exit_code == 0, res.output
    assert ts.is_file()
    from kanpose_cli.core.weights import read_model_card

    card = read_model_card(ts)
    assert card.format == "torchscript" and card.model == "amfacpose-r18-128x96" and card.decode == decode
    assert card.input_size == (128, 96) and card.codec["type"] == "simcc"

    def run(weights, out, *extra):
        r = runner.invoke(app, ["predict", str(images), "--weights", str(weights), "--detector", "none", "--no-save",
                                "--kpt-thr", "0", "--save-dir", str(out), *extra])
        assert r.exit_code == 0, r.output
        return {f.name: json.loads(f.read_text()) for f in sorted((out / "exp1").glob("*.json"))}, r.stderr

    ref, _ = run("shipped", tmp_path / "pt", "--backend", "torch")
    got, log = run(ts, tmp_path / "ts")
    assert "backend torchscript" in " ".join(log.split())
    assert ref.keys() == got.keys() and len(ref) == 2
    for key in ref:
        assert got[key]["model"] == "amfacpose-r18-128x96" and ts.name in got[key]["weights"]
        for a, b in zip(ref[key]["instances"], got[key]["instances"], strict=True):
            ka, kb = np.array(a["keypoints"], dtype=float), np.array(b["keypoints"], dtype=float)
            assert ka.shape == kb.shape == (17, 2)
            assert np.abs(ka - kb).max() <= 0.05  # image pixels
            assert np.abs(np.array(a["keypoint_scores"]) - np.array(b["keypoint_scores"])).max() <= 1e-3
    res = runner.invoke(app, ["predict", str(images), "--weights", str(ts), "--backend", "onnxruntime"])
    assert res.exit_code == 2 and "TorchScript file" in res.stderr
    res = runner.invoke(app, ["predict", str(images), "--weights", str(ts), "--model", "amfacpose-r18-256x192"])
    assert res.exit_code == 3 and "use --model amfacpose-r18-128x96" in res.stderr


def test_onnx_errors(tmp_path):
    """Bad input -> one line, non-zero exit: missing file (3), CUDA without provider (3), not-kanpose ONNX (3)."""
    import onnx
    from onnx import TensorProto, helper

    from kanpose_cli.core.weights.onnx import onnx_providers
    from kanpose_cli.core.errors import DeviceError

    import cv2

    img = tmp_path / "img"
    img.mkdir()
    cv2.imwrite(str(img / "a.jpg"), np.full((64, 48, 3), 127, np.uint8))
    res = runner.invoke(app, ["predict", str(img), "--weights", str(tmp_path / "missing.onnx")])
    assert res.exit_code == 3 and "not found" in res.output
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DeviceError, match="CUDAExecutionProvider"):
            onnx_providers("cuda")
    res = runner.invoke(app, ["predict", str(img), "--weights", str(tmp_path / "x.onnx"), "--device", "cuda"])
    assert res.exit_code == 3
    node = helper.make_node("Identity", ["input"], ["out"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    res = runner.invoke(app, ["predict", str(img), "--weights", str(foreign)])
    assert res.exit_code == 3 and "no kanpose metadata" in res.output
    res = runner.invoke(app, ["export", "--weights", "random", "--format", "tflite"])
    assert res.exit_code == 2 and "unknown export format" in res.output


def test_onnx_mish_matches_torch_and_leaves_no_softplus(tmp_path):
    """Mish is exported as x·n/(n+2) (no Softplus node, which onnxruntime runs as a slow scalar loop): the same
    values as ``F.mish`` over fp32's range, the original network keeps ``nn.Mish``, and the exported AMFACPose
    graph has Exp but no Softplus/Tanh."""
    import onnx

    from kanpose_cli.core.export.exporter import OnnxMish, export_onnx, onnx_friendly

    x = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor([-1e30, -88.0, 0.0, 19.99, 20.0, 20.01, 1e30])])
    ref, got = torch.nn.functional.mish(x), OnnxMish()(x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=2e-6, atol=1e-6)

    model = create_model("amfacpose-r18-128x96").eval()
    n_mish = sum(isinstance(m, torch.nn.Mish) for m in model.modules())
    assert n_mish == 5  # the 3 CoordConv stem convs and the 2 SimCC MLPs
    copy_ = onnx_friendly(model)
    assert sum(isinstance(m, OnnxMish) for m in copy_.modules()) == n_mish
    assert sum(isinstance(m, torch.nn.Mish) for m in model.modules()) == n_mish
    x = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        for a, b in zip(model.net(x), copy_.net(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ops = {n.op_type for n in onnx.load(str(export_onnx(model, tmp_path / "m.onnx"))).graph.node}
    assert "Exp" in ops and not ops & {"Softplus", "Tanh", "Mish"}

"""``--backend auto|torch|onnxruntime`` (core/inference/backend.py): the cached ONNX export run by onnxruntime gives
the keypoints of torch on real images, one export serves later runs, other weights get their own file, and the
rules of ``auto`` and the errors hold."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.errors import UsageError

runner = CliRunner()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty kanpose cache for the test (``KANPOSE_HOME``)."""
    home = tmp_path / "kanpose-home"
    monkeypatch.setenv("KANPOSE_HOME", str(home))
    return home


def test_auto_is_onnxruntime_on_cpu_and_matches_torch_on_real_images(coco_mini, cache):
    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.data.coco import CocoKeypointData
    from kanpose_cli.core.data.sources import read_image
    from kanpose_cli.core.weights.onnx import OnnxNet

    data = CocoKeypointData(coco_mini / "annotations" / "person_keypoints_val2017.json", coco_mini / "val2017")
    auto = PoseEstimator(boxes="gt", annotations=data, flip=True)
    torch_est = PoseEstimator(boxes="gt", annotations=data, flip=True, backend="torch")
    assert isinstance(auto.pose_model.net, OnnxNet) and not isinstance(torch_est.pose_model.net, OnnxNet)
    assert auto.weights_label == torch_est.weights_label == "amfacpose-r18-128x96-coco-lsp.safetensors"
    assert (auto.backend, torch_est.backend) == ("onnxruntime CPUExecutionProvider", "torch")
    files = list((cache / "onnx").glob("*.onnx"))
    assert [f.name[:len("amfacpose-r18-128x96-")] for f in files] == ["amfacpose-r18-128x96-"]
    ids = [i for i in data.image_ids if data.coco.getAnnIds(imgIds=[i], iscrowd=False)][:8]  # images with people
    images = [read_image(data.image(i).path) for i in ids]
    paths = [str(data.image(i).path) for i in ids]
    a, b = auto.predict(images, paths, ids), torch_est.predict(images, paths, ids)
    assert sum(len(r) for r in a) >= 6
    for ra, rb in zip(a, b):
        assert ra.keypoints.shape == rb.keypoints.shape
        if len(ra):  # original-image pixels: float rounding only, far inside the 0.5 px
            assert np.abs(ra.keypoints - rb.keypoints).max() < 0.05
            assert np.abs(ra.keypoint_scores - rb.keypoint_scores).max() < 1e-4
    mtime = files[0].stat().st_mtime_ns
    again = PoseEstimator(detector="none")  # the same weights: the cached file, not a new export
    assert isinstance(again.pose_model.net, OnnxNet)
    assert list((cache / "onnx").glob("*.onnx")) == files and files[0].stat().st_mtime_ns == mtime


def test_cache_key_follows_the_weights(cache):
    from kanpose_cli.core.inference.backend import onnx_cache_path
    from kanpose_cli.core.models import create_model

    model = create_model("amfacpose-r18-128x96")
    first = onnx_cache_path(model)
    assert onnx_cache_path(model) == first and first.parent == cache / "onnx"
    with torch.no_grad():
        next(model.net.parameters()).view(-1)[0] += 1e-3
    assert onnx_cache_path(model) != first and onnx_cache_path(model).name.startswith("amfacpose-r18-128x96-")


def test_auto_rules_and_errors(tmp_path, cache):
    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.inference.backend import resolve_backend
    from kanpose_cli.core.models import create_model

    model = create_model("amfacpose-r18-128x96")
    model.weights_label = "mine.safetensors"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("auto", model, cpu, half=False) == "onnxruntime"
    assert resolve_backend("auto", model, cuda, half=False) == "torch"
    assert resolve_backend("auto", model, cpu, half=True) == "torch"
    assert resolve_backend("torch", model, cpu, half=False) == "torch"
    with pytest.raises(UsageError, match="unknown backend 'tensorrt'"):
        resolve_backend("tensorrt", model, cpu, half=False)
    with pytest.raises(UsageError, match="drop --half"):
        resolve_backend("onnxruntime", model, cpu, half=True)
    rnd = PoseEstimator(weights="random", detector="none")
    assert rnd.weights_label == "RANDOM WEIGHTS (untrained)"  # auto keeps random weights on torch: nothing to cache
    with pytest.raises(UsageError, match="does not apply to yolo"):
        PoseEstimator("yolo:yolo11n-pose.pt", backend="torch")
    ready = PoseEstimator(model, detector="none")  # a ready object stays as given under auto
    assert ready.pose_model is model
    onnx_file = PoseEstimator(model, detector="none", backend="onnxruntime").pose_model
    with pytest.raises(UsageError, match="is an ONNX file"):
        resolve_backend("torch", onnx_file, cpu, half=False)
    assert not (cache / "onnx").exists() or all(p.suffix == ".onnx" for p in (cache / "onnx").iterdir())


def test_cli_backend_onnxruntime_with_random_weights_and_a_bad_backend(tmp_path, cache):
    import importlib.util
    from pathlib import Path

    image = tmp_path / "bus.jpg"
    image.write_bytes((Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg").read_bytes())
    r = runner.invoke(app, ["predict", str(image), "--weights", "random", "--backend", "onnxruntime",
                            "--detector", "none", "--no-save", "--save-dir", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    data = json.loads(next((tmp_path / "out" / "exp1").glob("*.json")).read_text())
    assert data["weights"] == "RANDOM WEIGHTS (untrained)" and len(data["instances"]) == 1
    assert "backend onnxruntime CPUExecutionProvider" in " ".join(r.stderr.split())
    assert not (cache / "onnx").exists()  # random weights: a temporary file, nothing cached
    r = runner.invoke(app, ["predict", str(image), "--weights", "random", "--backend", "tensorrt",
                            "--save-dir", str(tmp_path / "out2")])
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown backend 'tensorrt'" in lines[0]


def test_first_onnx_export_is_announced_once(tmp_path, cache):
    """``--backend auto`` with the shipped weights and an empty cache: one ``note:`` line says the model is exported
    to ONNX once; the second run reuses the cached file and says nothing about it."""
    import importlib.util
    from pathlib import Path

    image = tmp_path / "bus.jpg"
    image.write_bytes((Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg").read_bytes())
    args = ["predict", str(image), "--detector", "none", "--no-save", "--no-save-json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    notes = [ln for ln in first.stderr.splitlines() if ln.startswith("note:") and "ONNX" in ln]
    assert len(notes) == 1, first.stderr
    assert "exporting amfacpose-r18-128x96" in notes[0] and "later runs reuse" in notes[0]
    assert len(list((cache / "onnx").glob("amfacpose-r18-128x96-*.onnx"))) == 1
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "backend onnxruntime" in " ".join(second.stderr.split())
    assert "note:" not in second.stderr


def test_the_detector_follows_the_backend_on_cpu(cache):
    """``auto`` runs the YOLO person detector as ultralytics' ONNX export (cached once) with the boxes of the
    ``.pt`` to float rounding; ``torch`` keeps the ``.pt``."""
    import importlib.util
    from pathlib import Path

    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.data.sources import read_image

    bus = read_image(Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg")
    auto, plain = PoseEstimator(weights="random"), PoseEstimator(weights="random", backend="torch")
    assert auto.box_source.detector.backend == "onnxruntime" and plain.box_source.detector.backend == "torch"
    assert auto.backend == "torch (detector onnxruntime)"  # random pose weights stay on torch
    assert [p.name[:len("yolo11n-pose-")] for p in (cache / "onnx").glob("*.onnx")] == ["yolo11n-pose-"]
    (a, sa), (b, sb) = auto.box_source([bus], [""], [None])[0], plain.box_source([bus], [""], [None])[0]
    assert len(a) == len(b) == 4  # the four people of bus.jpg
    assert np.abs(a - b).max() < 0.05 and np.abs(sa - sb).max() < 1e-3  # pixels; scores


def test_onnxruntime_micro_batches_large_crops_like_torch(cache):
    """An export stores the largest intermediate of one crop; onnxruntime then runs a CPU batch of 256×192
    AMFACPose crops (4.5 MiB each, 36 MiB at batch 8 > the 32 MiB mmap cap) as micro-batches of ⌊12 ÷ 4.5⌋ = 2,
    with the same outputs as one whole-batch run; a small batch runs whole."""
    from kanpose_cli.core.inference.backend import to_onnxruntime
    from kanpose_cli.core.models import create_model
    from kanpose_cli.core.models.inference import largest_activation_bytes

    model = create_model("amfacpose-r18-256x192").eval()
    expected = largest_activation_bytes(model.net, torch.zeros(1, 3, 256, 192))
    assert expected == 384 * 64 * 48 * 4  # the AFPN concatenation: 384 channels at 1/4 resolution, fp32 (4.5 MiB)
    net = to_onnxruntime(model).net
    assert net.sample_bytes == expected
    calls = []
    run = net.session.run
    net.session.run = lambda names, feed: calls.append(len(feed[net.input_name])) or run(names, feed)
    x = torch.randn(8, 3, 256, 192)
    chunked = net(x)
    assert calls == [2, 2, 2, 2]
    calls.clear()
    net(x[:4])
    assert calls == [4]  # 18 MiB: under the cap, one run
    net.sample_bytes = 0  # unknown (a file without it): whole batches
    calls.clear()
    whole = net(x)
    assert calls == [8]
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

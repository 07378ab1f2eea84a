"""``kanpose bench``: quick mode rows, JSON/CSV output, model selection and errors."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.errors import DeviceError, UsageError
from kanpose_cli.core.models import create_model, get_spec, list_models
from kanpose_cli.core.models.complexity import count_params

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _small_model() -> str:
    """A small registered model (fewest params among 256×192-or-smaller AMFACPose variants, else the first)."""
    names = [n for n in list_models("amfacpose") if "rkan" not in n] or list_models()
    return min(names, key=lambda n: (get_spec(n).input_size[0] * get_spec(n).input_size[1], n))


def test_resolve_models_patterns_and_errors():
    from kanpose_cli.core.benchmark.benchmark import parse_int_list, parse_precisions, resolve_models

    names = list_models()
    assert resolve_models(None) == names
    fam = get_spec(names[0]).family
    assert resolve_models(f"{fam}*") == [n for n in names if n.startswith(fam)]
    assert resolve_models(f"{names[0]},{names[0]}") == [names[0]]
    with pytest.raises(UsageError, match="no registered model"):
        resolve_models("not-a-model")
    assert parse_int_list("8,1,8") == [1, 8]
    with pytest.raises(UsageError):
        parse_int_list("0,1")
    with pytest.raises(DeviceError):
        parse_precisions("fp32,fp16", torch.device("cpu"))


def test_bf16_on_cpu_only_with_native_bf16(monkeypatch):
    from kanpose_cli.core.benchmark import benchmark as B

    monkeypatch.setattr(B, "cpu_has_bf16", lambda: True)
    assert B.parse_precisions("fp32,bf16", torch.device("cpu")) == ["fp32", "bf16"]
    monkeypatch.setattr(B, "cpu_has_bf16", lambda: False)
    with pytest.raises(DeviceError, match="AVX-512 BF16 or AMX"):
        B.parse_precisions("bf16", torch.device("cpu"))


def test_bench_quick_rows_json_csv(tmp_path):
    """Quick mode, one model + peers, end to end on one bundled sample image: sane rows, the stage split of the
    end-to-end rows (in memory, and the predict loop on the file) and both files."""
    name = _small_model()
    out = tmp_path / "bench"
    res = runner.invoke(app, ["bench", "--quick", "--models", name, "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "model-only" in res.output and "end to end" in res.output
    data = json.loads((out / "bench.json").read_text())
    assert data["env"]["device"] == "cpu" and data["env"]["threads"] == 1 and data["env"]["torch"]
    assert data["env"]["peak_tflops"]["fp32"] > 0
    rows = data["rows"]
    model_rows = [r for r in rows if r["section"] == "model"]
    assert [r["batch"] for r in model_rows] == [1, 2]
    params = count_params(create_model(name))
    for r in model_rows:
        assert r["status"] == "ok" and r["model"] == name and r["impl"] == "kanpose"
        assert r["params"] == params
        assert r["p50_ms"] > 0 and r["p90_ms"] >= r["p50_ms"] * 0.999 and r["throughput"] > 0
        assert r["gmacs"] > 0 and r["tflops"] > 0 and 0 < r["util"] <= 1.0
        assert r["iqr_ms"] >= 0 and r["iters"] >= 1
    assert "IQR ms" in res.output
    e2e = {(r["model"], r["impl"]): r for r in rows if r["section"] == "e2e"}
    assert (name, "kanpose") in e2e and (name, "kanpose-loop") in e2e
    assert any("(peer)" in k for k, _ in e2e) and any(k.startswith("detector") for k, _ in e2e)
    for r in e2e.values():
        assert r["status"] == "ok" and r["images"] == 1 and r["images_per_s"] > 0
        assert r["persons_per_s"] >= 0 and r["persons"] >= 0
    # the stage split, ms per image: each measured stage > 0 and inside the row's wall time
    memory, loop = e2e[(name, "kanpose")], e2e[(name, "kanpose-loop")]
    assert memory["decode_ms"] is None and memory["wait_ms"] is None  # decoded before timing
    assert memory["detect_ms"] > 0 and memory["pose_ms"] > 0
    assert memory["detect_ms"] + memory["pose_ms"] <= memory["ms_per_image"]
    assert loop["decode_ms"] > 0 and loop["detect_ms"] > 0 and loop["pose_ms"] > 0 and loop["wait_ms"] >= 0
    assert loop["wait_ms"] + loop["detect_ms"] + loop["pose_ms"] <= loop["ms_per_image"]  # decode: in background
    assert loop["persons"] == memory["persons"]  # the same image, the same people
    detector = next(r for (k, _), r in e2e.items() if k.startswith("detector"))
    assert detector["detect_ms"] == pytest.approx(detector["ms_per_image"]) and detector["pose_ms"] is None
    peer = next(r for (k, _), r in e2e.items() if "(peer)" in k)
    assert 0 < peer["pose_ms"] <= peer["ms_per_image"] and peer["detect_ms"] is None  # one stage: all pose
    assert "decode" in res.output and "detect" in res.output  # the table's stage columns
    with open(out / "bench.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and {"model", "p50_ms", "throughput", "device_name"} <= set(table[0])
    assert {"decode_ms", "wait_ms", "detect_ms", "pose_ms"} <= set(table[0])


def test_utilisation_never_above_100_percent():
    """Rows faster than the matmul reference (nominal MACs, a loaded machine: the issue's 171.6 %) set the peak:
    every utilisation stays in [0, 1], the fastest row is 100 %, and a note says why; slower rows are unchanged."""
    from kanpose_cli.core.benchmark.benchmark import BenchRow, fill_utilisation

    rows = [BenchRow("model", "a", "kanpose", "fp32", 1, tflops=0.5), BenchRow("model", "a", "onnxruntime", "fp32",
                                                                               1, tflops=1.716),
            BenchRow("model", "b", "kanpose", "bf16", 1, tflops=0.2), BenchRow("e2e", "a", "kanpose")]
    peaks, notes = fill_utilisation(rows, {"fp32": 1.0, "bf16": 0.8})
    assert peaks == {"fp32": 1.716, "bf16": 0.8}
    assert [r.util for r in rows[:3]] == pytest.approx([0.5 / 1.716, 1.0, 0.25]) and rows[3].util is None
    assert all(0 <= r.util <= 1 for r in rows[:3])
    assert len(notes) == 1 and "above the reference peak 1.000" in notes[0] and "onnxruntime" in notes[0]
    rows = [BenchRow("model", "a", "kanpose", "fp32", 1, tflops=0.5)]
    assert fill_utilisation(rows, {"fp32": None}) == ({}, []) and rows[0].util is None  # unknown GPU: no peak


def test_spread_column_and_wide_spread_warning():
    """IQR and IQR/median from repeated timings; a warning (machine loaded, figures vary) when the spread is wide."""
    from kanpose_cli.core.benchmark.benchmark import spread_warning, timing_row

    steady = timing_row([0.100, 0.101, 0.099, 0.100, 0.102], "fp32", 8, macs=int(1e9))
    assert steady.p50_ms == pytest.approx(100.0) and steady.iqr_ms == pytest.approx(1.0)
    assert steady.spread == pytest.approx(0.01) and steady.throughput == pytest.approx(80.0)
    assert steady.tflops == pytest.approx(2 * 1e9 * 8 / 0.1 / 1e12)
    noisy = timing_row([0.05, 0.10, 0.20, 0.40, 0.10, 1.0], "fp32", 1, macs=None)
    assert noisy.spread > 0.2
    steady.model, noisy.model = "steady", "noisy"
    assert spread_warning([steady]) is None
    warning = spread_warning([steady, noisy])
    assert warning is not None and "loaded" in warning and "figures vary" in warning and "noisy" in warning
    assert "1 of 2 rows" in warning
    assert timing_row([0.1, 0.5], "fp32", 1, None).spread is None  # too few timings to call it a spread


def test_timer_timings_follow_the_settings():
    """The single-implementation path uses torch.utils.benchmark.Timer: at least min_iters timings, the thread
    count kept."""
    from kanpose_cli.core.benchmark.benchmark import make_settings, time_with_timer

    settings = make_settings("cpu", "1", "fp32", False, False, 1, 1, 5, 0.05, True, False, False)
    calls = []
    times = time_with_timer(lambda: calls.append(sum(range(2000))), settings)
    assert len(times) >= settings.min_iters and all(t > 0 for t in times)
    assert len(calls) >= settings.warmup + len(times) + 1 and torch.get_num_threads() == 1


def test_bench_onnxruntime_rows(tmp_path, monkeypatch):
    """``--onnxruntime``: an ``onnxruntime`` model-only row beside every ``kanpose`` row (same params and MACs),
    and a ``kanpose-onnxruntime`` end-to-end row that finds the same people as the torch row."""
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    name = _small_model()
    out = tmp_path / "bench"
    res = runner.invoke(app, ["bench", "--quick", "--models", name, "--threads", "1", "--onnxruntime", "--no-peers",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "bench.json").read_text())["rows"]
    model_rows = {(r["impl"], r["batch"]): r for r in rows if r["section"] == "model"}
    assert set(model_rows) == {(impl, b) for impl in ("kanpose", "onnxruntime") for b in (1, 2)}
    for b in (1, 2):
        ort, pt = model_rows[("onnxruntime", b)], model_rows[("kanpose", b)]
        assert ort["status"] == "ok" and ort["p50_ms"] > 0 and ort["throughput"] > 0
        assert (ort["params"], ort["gmacs"]) == (pt["params"], pt["gmacs"])
    e2e = {r["impl"]: r for r in rows if r["section"] == "e2e" and r["model"] == name}
    assert e2e["kanpose-onnxruntime"]["status"] == "ok"
    assert e2e["kanpose-onnxruntime"]["persons"] == e2e["kanpose"]["persons"]
    assert len(list((tmp_path / "home" / "onnx").glob(f"{name}-*.onnx"))) == 1  # exported once, for both sections


def test_bench_cli_errors():
    res = runner.invoke(app, ["bench", "--models", "nope-model", "--quick"])
    assert res.exit_code == 2 and "nope-model" in res.output
    res = runner.invoke(app, ["bench", "--quick", "--device", "cuda"]) if not torch.cuda.is_available() else None
    if res is not None:
        assert res.exit_code == 3 and "CUDA" in res.output
    res = runner.invoke(app, ["bench", "--quick", "--precision", "fp16", "--models", _small_model()])
    if not torch.cuda.is_available():
        assert res.exit_code == 3 and "fp16" in res.output


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers not installed")
def test_transformers_vitpose_twin_same_weights():
    """The transformers VitPose peer computes the same heatmaps as our vitpose-s with the converted weights."""
    if "vitpose-s" not in list_models():
        pytest.skip("vitpose-s not registered")
    from kanpose_cli.core.benchmark.benchmark import hf_vitpose_twin

    model = create_model("vitpose-s")
    hf, diff = hf_vitpose_twin(model)
    x = torch.randn(2, 3, 256, 192)
    with torch.inference_mode():
        a, b = hf(pixel_values=x).heatmaps, model.net(x)
    assert a.shape == b.shape == (2, 17, 64, 48)
    assert float(b.abs().max()) > 0
    assert diff < 1e-4 and float((a - b).abs().max()) < 1e-4

"""Benchmarks: model-only speed (params, GMACs, latency, throughput, utilisation) and end-to-end speed
(detector + top-down pose on real images), with peers measured in the same run.

What is timed (stated in every result):

- **model-only**: the network forward pass on a batch of pre-normalised random crops already on the device
  (``net(x)`` under ``torch.inference_mode``), no decode, no pre-processing, no host<->device copies. CUDA is
  synchronised before reading the clock. Latency p50/p90 are over the timed iterations at each batch size;
  throughput = batch / median latency (images/s). A single implementation is timed with
  ``torch.utils.benchmark.Timer.blocked_autorange`` (median and IQR of its blocks); a model and its peer twin are
  timed interleaved (A, B, A, B ...) by our own loop, so that load changes hit both alike. **Spread**: the
  interquartile range of the repeated measurements (``iqr_ms``) and its ratio to the median (``spread``); when a
  row's spread exceeds :data:`SPREAD_WARNING` (IQR/median > 0.2) the result carries a warning that the machine is
  loaded and the figures vary. Peer rows: the ``transformers`` ``VitPoseForPoseEstimation``
  with the **same weights** as our ``vitpose-s/-b`` (converted with ``core/weights/convert.convert_vitpose``),
  forward of ``pixel_values`` to heatmaps.
- **end-to-end**: for each image already decoded in memory (disk I/O excluded): YOLO person detection, crops,
  batched pose forward, decode, back-projection to image pixels (:class:`TopDownPipeline`). Reported as images/s,
  persons/s and ms/image, split into the ``detect`` and ``pose`` stages (ms per image,
  :class:`~kanpose_cli.core.inference.timing.StageTimes`). Peer: ultralytics YOLO11n-pose end to end (one stage, its
  own boxes and keypoints) on the same images. A "detector only" row shows the detector's share.
- **end-to-end, predict loop** (impl ``kanpose-loop``): the same images read from their files by
  :meth:`PoseEstimator.run`, the loop under ``kanpose predict`` (a background thread reads and decodes the next
  chunk of 8 images while this one is detected and estimated; nothing is written). Its stage split adds ``decode``
  (in the background thread, overlapped) and ``wait`` (time the loop stood idle waiting for a decoded image).
- **GMACs**: multiply-accumulates of one forward pass (``core/models/complexity``; 1 MAC = 1 multiply-add, what
  papers call "GFLOPs"); achieved FLOP/s = 2·MACs·batch / latency.
- **Utilisation** = achieved FLOP/s ÷ peak, in [0, 1]. The peak of a precision is the highest FLOP rate measured
  on the device in the run: the reference (CPU: a measured matmul, ``torch.mm`` of 2048² matrices, best of several
  runs with the same thread count, measured before *and* after the model rows; GPU: the datasheet dense peak, table
  :data:`GPU_PEAK_TFLOPS`, fp32 = non-tensor-core FP32, fp16/bf16 = dense tensor core; unknown GPUs: no peak, no
  utilisation), or a model row that ran faster than it. A row can beat the matmul reference because achieved FLOP/s
  counts the model's nominal MACs (a Winograd or FFT convolution does fewer multiplies) and because a loaded machine
  lowers the reference; the result then notes it (:func:`fill_utilisation`). So utilisation never exceeds 100 %.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import fnmatch
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kanpose_cli import __version__
from kanpose_cli.core.errors import DeviceError, InputError, UsageError
from kanpose_cli.core.inference.timing import StageTimes
from kanpose_cli.core.io import atomic_path, write_json_atomic
from kanpose_cli.core.registry import close_matches
from kanpose_cli.core.text import plural

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SPREAD_WARNING = 0.2  # IQR / median of a row's repeated timings above which the figures are called unreliable

# Datasheet dense peaks in TFLOP/s: (fp32 non-tensor, fp16/bf16 dense tensor core). Matched by substring of
# torch.cuda.get_device_name(), most specific first.
GPU_PEAK_TFLOPS: list[tuple[str, float, float]] = [
    ("H200", 67.0, 989.0),
    ("H100 PCIe", 51.0, 756.0),
    ("H100 NVL", 60.0, 835.0),
    ("H100", 67.0, 989.0),  # SXM
    ("A100", 19.5, 312.0),
    ("L40S", 91.6, 362.0),
    ("L4", 30.3, 121.0),
    ("A10G", 31.2, 70.0),
    ("A10", 31.2, 125.0),
    ("RTX 4090", 82.6, 165.0),
    ("RTX 3090", 35.6, 71.0),
    ("V100", 15.7, 125.0),
    ("T4", 8.1, 65.0),
]


@dataclass
class BenchSettings:
    """Benchmark settings (all printed with the results).

    Attributes:
        device: torch device. batches: batch sizes of the sweep (latency p50/p90 reported for every one; batch 1
            is the latency figure). precisions: subset of ``fp32``, ``fp16``, ``bf16`` (the last two CUDA only).
        channels_last: NHWC memory format for model and input. compile: ``torch.compile`` the network.
        warmup: untimed iterations per row. iters: timed iterations per row (fewer if ``max_seconds`` runs out,
            at least ``min_iters``). max_seconds: time cap per row for the timed loop, seconds.
        threads: CPU threads (``torch.set_num_threads``). e2e_passes: passes over the images end to end.
        quick: the few-iteration mode for tests/CI.
        plain: also time each kanpose network as built (no inference preparation) as impl ``kanpose-plain``,
            interleaved with the prepared one (impl ``kanpose``: BN folded, CPU micro-batches — what predict runs).
        onnxruntime: also time each kanpose network exported to ONNX and run by onnxruntime (impl ``onnxruntime``,
            fp32 on CPU only, interleaved with the others; what ``--backend auto`` runs on CPU), and end to end a
            second row per model on that backend.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batches: list[int] = field(default_factory=lambda: [1, 8])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    channels_last: bool = False
    compile: bool = False
    warmup: int = 2
    iters: int = 20
    min_iters: int = 3
    max_seconds: float = 10.0
    threads: int = 1
    e2e_passes: int = 1
    quick: bool = False
    plain: bool = False
    onnxruntime: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["device"] = str(self.device)
        return d


def make_settings(device: str = "cpu", batch: str | None = None, precision: str | None = None,
                  channels_last: bool = False, compile: bool = False, threads: int | None = None,
                  warmup: int | None = None, iters: int | None = None, max_time: float | None = None,
                  quick: bool = False, plain: bool = False, onnxruntime: bool = False) -> BenchSettings:
    """The settings of ``kanpose bench`` from its options; None takes the default for the device.

    Defaults: batches 1,8 on CPU and 1,8,32,64 on CUDA (1,2 with ``quick``); precision fp32 on CPU, fp32,fp16,bf16
    on CUDA; warm-up 2 (CPU) / 10 (CUDA) / 1 (quick) iterations; up to 20 (CPU) / 100 (CUDA) / 3 (quick) timed
    iterations or 8 s (CPU) / 5 s (CUDA) / 1 s (quick) per row; threads: torch's current value.

    Raises:
        DeviceError: device or precision unavailable. UsageError: a bad batch list.
    """
    from kanpose_cli.core.device import select_device

    dev = select_device(device)
    cuda = dev.type == "cuda"
    batches = parse_int_list(batch) if batch else ([1, 2] if quick else ([1, 8, 32, 64] if cuda else [1, 8]))
    precisions = parse_precisions(precision or ("fp32,fp16,bf16" if cuda and not quick else "fp32"), dev)
    return BenchSettings(
        device=dev, batches=batches, precisions=precisions, channels_last=channels_last, compile=compile,
        warmup=warmup if warmup is not None else (1 if quick else (2 if not cuda else 10)),
        iters=iters if iters is not None else (3 if quick else (20 if not cuda else 100)),
        min_iters=1 if quick else 3,
        max_seconds=max_time if max_time is not None else (1.0 if quick else (8.0 if not cuda else 5.0)),
        threads=threads or torch.get_num_threads(), quick=quick, plain=plain, onnxruntime=onnxruntime)


def busy_warning(settings: BenchSettings) -> str | None:
    """A warning when the CPU is busier than its core count (timings will be noisy), else None."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if settings.device.type != "cpu" or load <= (os.cpu_count() or 1):
        return None
    hint = "; with several threads OpenMP barriers stall badly, try --threads 1" if settings.threads > 1 else ""
    return f"the machine is busy (load average {load:.1f} on {os.cpu_count()} CPUs): timings will be noisy{hint}"


@dataclass
class BenchRow:
    """One result row.

    ``section`` is ``model`` (model-only) or ``e2e`` (end to end). Times in milliseconds; throughput in images/s;
    ``tflops`` achieved TFLOP/s; ``util`` in [0, 1] or None (:func:`fill_utilisation`); ``iqr_ms`` the
    interquartile range of the repeated timings (model rows), ``spread`` = IQR / median (None with < 3 timings);
    ``status`` ``ok`` | ``oom`` | ``failed`` | ``skipped``.
    End-to-end rows split ``ms_per_image`` into stages, milliseconds per image (None where a stage was not
    measured): ``decode_ms`` (file read + decode, predict-loop rows only, in a background thread), ``wait_ms``
    (the loop waiting for a decoded image), ``detect_ms`` (person boxes), ``pose_ms`` (crops, pose network,
    decode to image pixels; a one-stage peer's whole time).
    """

    section: str
    model: str
    impl: str
    precision: str = "fp32"
    batch: int = 1
    params: int | None = None
    gmacs: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    iqr_ms: float | None = None
    spread: float | None = None
    mean_ms: float | None = None
    throughput: float | None = None
    tflops: float | None = None
    util: float | None = None
    iters: int = 0
    images: int | None = None
    persons: int | None = None
    images_per_s: float | None = None
    persons_per_s: float | None = None
    ms_per_image: float | None = None
    decode_ms: float | None = None
    wait_ms: float | None = None
    detect_ms: float | None = None
    pose_ms: float | None = None
    status: str = "ok"
    note: str = ""


@dataclass
class BenchResult:
    """All rows plus the environment and settings they were measured in."""

    env: dict
    settings: dict
    rows: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"env": self.env, "settings": self.settings, "notes": self.notes, "warnings": self.warnings,
                "rows": [asdict(r) for r in self.rows]}


# ------------------------------------------------------------------------------------------------ helpers
def resolve_models(spec: str | None) -> list[str]:
    """``--models`` value -> registered names, in registry order, no duplicates.

    Args:
        spec: comma-separated names or shell patterns (``vitpose-*``, ``amfacpose-r18*``); None/empty = all.

    Raises:
        UsageError: an item matches no registered model (with close matches).
    """
    from kanpose_cli.core.models import list_models

    names = list_models()
    if not spec or spec.strip().lower() in ("all", "*"):
        return names
    chosen: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        wild, key = any(c in item for c in "*?["), item.lower()  # case-insensitive, like the model registry
        hits = [n for n in names if (fnmatch.fnmatchcase(n.lower(), key) if wild else n.lower() == key)]
        if not hits:
            close = close_matches(item, names, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else " Run `kanpose models` for the list."
            raise UsageError(f"--models: no registered model matches {item!r}.{hint}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def parse_int_list(text: str, what: str = "--batch") -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``; raises UsageError for non-positive or non-integer items."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise UsageError(f"{what}: expected positive integers, got {text!r}")
    return sorted(set(values))


def parse_precisions(text: str, device: torch.device) -> list[str]:
    """``"fp32,fp16"`` -> list. Raises UsageError (unknown) or DeviceError (fp16 without CUDA; bf16 on a CPU
    without AVX-512 BF16 or AMX, where torch would emulate it)."""
    out = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in out if p not in PRECISIONS]
    if bad or not out:
        raise UsageError(f"--precision: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(PRECISIONS)}")
    if device.type != "cuda" and "fp16" in out:
        raise DeviceError("--precision fp16 needs a CUDA device; use --precision fp32 or bf16 on CPU")
    if device.type != "cuda" and "bf16" in out and not cpu_has_bf16():
        raise DeviceError("--precision bf16 on CPU needs AVX-512 BF16 or AMX (not found in /proc/cpuinfo)")
    return out


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``; False
    where that file does not exist)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def environment_info(device: torch.device, threads: int) -> dict:
    """Device, versions, thread count and date (UTC) for the result files."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{_cpu_name()} ({os.cpu_count()} logical CPUs visible)"
    return {
        "device": str(device), "device_name": name, "threads": threads,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(), "platform": platform.platform(),
        "kanpose": __version__, "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "onnxruntime": _version("onnxruntime"), "transformers": _version("transformers"),
        "ultralytics": _version("ultralytics"), "numpy": np.__version__,
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def measure_cpu_peak_gflops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul rate in GFLOP/s with the current torch thread count: best of ``repeats`` runs of an
    ``n × n`` by ``n × n`` product (2·n³ FLOPs) in ``dtype``, after one warm-up."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def gpu_peak_tflops(device_name: str, precision: str) -> float | None:
    """Datasheet dense peak (TFLOP/s) of a known GPU for ``precision``; None if the GPU is not in the table."""
    for key, fp32, half in GPU_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return fp32 if precision == "fp32" else half
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(fn: Callable[[], object], device: torch.device, warmup: int, iters: int, min_iters: int,
                  max_seconds: float) -> list[float]:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then up to ``iters`` timed ones (stops early after
    ``min_iters`` once ``max_seconds`` of timed calls have passed). CUDA is synchronised around each call."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iters:
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
        if len(times) >= min_iters and time.perf_counter() - start > max_seconds:
            break
    return times


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timing_row(times: list[float], precision: str, batch: int, macs: int | None, note: str = "") -> BenchRow:
    """A model-only :class:`BenchRow` from repeated timings (seconds per call): p50, p90, mean, IQR and spread
    (IQR / median; None with fewer than 3 timings), throughput = batch / p50, achieved TFLOP/s from ``macs``."""
    p50 = statistics.median(times)
    iqr = _percentile(times, 75) - _percentile(times, 25)
    row = BenchRow("model", "", "", precision, batch, p50_ms=1e3 * p50, p90_ms=1e3 * _percentile(times, 90),
                   iqr_ms=1e3 * iqr, spread=iqr / p50 if len(times) >= 3 and p50 > 0 else None,
                   mean_ms=1e3 * statistics.fmean(times), throughput=batch / p50, iters=len(times), note=note)
    if macs:
        row.gmacs = macs / 1e9
        row.tflops = 2.0 * macs * batch / p50 / 1e12
    return row


def spread_warning(rows: list[BenchRow], limit: float = SPREAD_WARNING) -> str | None:
    """The warning for rows whose repeated timings vary by more than ``limit`` (IQR / median), else None."""
    wide = [r for r in rows if r.status == "ok" and r.spread is not None and r.spread > limit]
    if not wide:
        return None
    worst = max(wide, key=lambda r: r.spread)
    return (f"timings vary: IQR/median above {limit:.0%} in {len(wide)} of "
            f"{sum(1 for r in rows if r.spread is not None)} rows (worst {worst.model} {worst.impl} batch "
            f"{worst.batch}: {worst.spread:.0%}); the machine is loaded and the figures vary: rerun on an idle "
            f"machine or with more --iters")


def fill_utilisation(rows: list[BenchRow], reference: dict[str, float | None]) -> tuple[dict[str, float], list[str]]:
    """Set ``util`` of every model row: achieved TFLOP/s ÷ the peak of its precision, where the peak is the highest
    rate measured in the run, ``max(reference, fastest row)`` (module docstring). So ``0 ≤ util ≤ 1``.

    Args:
        rows: the result rows (end-to-end rows are left alone). reference: TFLOP/s per precision (measured matmul
            on CPU, datasheet on GPU); a missing/None/0 reference means no utilisation for that precision.

    Returns:
        ``(peaks, notes)``: the peak used per precision (TFLOP/s), and one note per precision whose peak is a model
        row rather than the reference.
    """
    peaks: dict[str, float] = {}
    notes: list[str] = []
    for precision, ref in reference.items():
        if not ref:
            continue
        timed = [r for r in rows if r.section == "model" and r.precision == precision and r.tflops]
        fastest = max(timed, key=lambda r: r.tflops, default=None)
        peaks[precision] = float(ref)
        if fastest is not None and fastest.tflops > ref:
            peaks[precision] = fastest.tflops
            notes.append(f"{precision}: {fastest.model} {fastest.impl} batch {fastest.batch} ran at "
                         f"{fastest.tflops:.3f} TFLOP/s, above the reference peak {ref:.3f} (nominal MACs count more "
                         f"multiplies than fast convolution kernels do, or the machine was loaded while the "
                         f"reference was measured): utilisation is relative to {fastest.tflops:.3f}")
    for r in rows:
        if r.section == "model":
            r.util = r.tflops / peaks[r.precision] if r.tflops is not None and r.precision in peaks else None
    return peaks, notes


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower() or \
        isinstance(exc, MemoryError)


# --------------------------------------------------------------------------------------------- model-only
def prepare_network(net: torch.nn.Module, settings: BenchSettings, precision: str,
                    inference_size: tuple[int, int] | None = None) -> torch.nn.Module:
    """Move ``net`` to the device/dtype/memory format of the settings, optionally ``torch.compile`` it.

    With ``inference_size`` ((H, W) pixels) the timed network is the inference copy predict/eval/label run
    (:func:`~kanpose_cli.core.models.inference.prepare_for_inference`: BatchNorm folded into the convolutions,
    micro-batches on CPU); ``net`` itself stays as built.
    """
    net = net.to(settings.device, dtype=PRECISIONS[precision]).eval()
    if inference_size is not None:
        from kanpose_cli.core.models.inference import prepare_for_inference

        net = prepare_for_inference(net, inference_size, settings.device)
    if settings.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if settings.compile:
        net = torch.compile(net)
    return net


def bench_forward(run: Callable[[torch.Tensor], object], input_size: tuple[int, int], settings: BenchSettings,
                  precision: str, batch: int, macs: int | None) -> BenchRow:
    """Time ``run(x)`` for a random (batch, 3, H, W) input; fills the timing fields of a :class:`BenchRow`."""
    H, W = input_size
    x = torch.randn(batch, 3, H, W, device=settings.device, dtype=PRECISIONS[precision])
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def call():
        with torch.inference_mode():
            run(x)

    return timing_row(time_with_timer(call, settings), precision, batch, macs)


def time_with_timer(call: Callable[[], object], settings: BenchSettings) -> list[float]:
    """Seconds per call of ``call`` by ``torch.utils.benchmark.Timer.blocked_autorange`` (it synchronises CUDA and
    runs with ``settings.threads`` threads): ``settings.warmup`` untimed calls, then blocks of calls for about
    ``min(max_seconds, iters × one call)`` seconds, at least ``min_iters`` blocks. Returns the per-call time of each
    block (a slow forward: one call per block)."""
    from torch.utils.benchmark import Timer

    for _ in range(settings.warmup):
        call()
    _sync(settings.device)
    t = time.perf_counter()
    call()
    _sync(settings.device)
    one = time.perf_counter() - t
    timer = Timer(stmt="call()", globals={"call": call}, num_threads=settings.threads)
    budget = max(min(settings.max_seconds, settings.iters * one), 1e-3)
    times = list(timer.blocked_autorange(min_run_time=budget).times)
    while len(times) < settings.min_iters:  # a very slow row: blocked_autorange stops after one block
        times += list(timer.blocked_autorange(min_run_time=one).times)
    torch.set_num_threads(settings.threads)
    return times


def bench_forward_interleaved(runs: list[Callable[[torch.Tensor], object]], input_size: tuple[int, int],
                              settings: BenchSettings, precision: str, batch: int, macs: int | None) -> list[BenchRow]:
    """Like :func:`bench_forward` for several implementations of the same model (ours and a peer): their timed
    calls alternate (A, B, A, B ...) on the same input, so that load changes on a shared machine hit both alike.
    The time cap applies to the whole group. One row per implementation, in order."""
    if len(runs) == 1:
        return [bench_forward(runs[0], input_size, settings, precision, batch, macs)]
    H, W = input_size
    x = torch.randn(batch, 3, H, W, device=settings.device, dtype=PRECISIONS[precision])
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times: list[list[float]] = [[] for _ in runs]
    with torch.inference_mode():
        for _ in range(settings.warmup):
            for run in runs:
                run(x)
        _sync(settings.device)
        start = time.perf_counter()
        while len(times[0]) < settings.iters:
            for i, run in enumerate(runs):
                t = time.perf_counter()
                run(x)
                _sync(settings.device)
                times[i].append(time.perf_counter() - t)
            if len(times[0]) >= settings.min_iters and time.perf_counter() - start > settings.max_seconds * len(runs):
                break
    return [timing_row(ts, precision, batch, macs, note="timed interleaved with its twin") for ts in times]


def _fill_util(row: BenchRow, peak_tflops: float | None) -> None:
    if row.tflops is not None and peak_tflops:
        row.util = row.tflops / peak_tflops


def hf_vitpose_twin(model) -> tuple[torch.nn.Module, float]:
    """A ``transformers`` ``VitPoseForPoseEstimation`` with the same architecture and **the same weights** as our
    ``vitpose-s``/``vitpose-b`` ``model`` (random HF init, converted into ours with ``convert_vitpose``).

    Returns:
        ``(hf_model in eval mode, max |heatmaps_hf − heatmaps_ours|)`` on one random input (a sanity check that
        both really compute the same function).

    Raises:
        UsageError: ``model`` is not a plain ViTPose (classic or simple decoder).
        ImportError: transformers is not installed.
    """
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    from kanpose_cli.core.weights.convert import convert_vitpose

    cfg = model.config
    if model.spec.family != "vitpose":
        raise UsageError(f"{model.name} has no transformers twin")
    H, W = model.input_size
    backbone = VitPoseBackboneConfig(image_size=[H, W], patch_size=[16, 16], hidden_size=cfg.embed_dim,
                                     num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
                                     mlp_ratio=int(cfg.mlp_ratio), qkv_bias=cfg.qkv_bias, layer_norm_eps=1e-6,
                                     out_indices=[cfg.depth])
    hf_cfg = VitPoseConfig(backbone_config=backbone, use_simple_decoder=cfg.decoder == "simple", scale_factor=4,
                           num_labels=cfg.num_keypoints)
    torch.manual_seed(0)
    hf = VitPoseForPoseEstimation(hf_cfg).eval()
    state, report = convert_vitpose(hf.state_dict())
    if report.get("unused"):
        raise UsageError(f"convert_vitpose left HF keys unused: {report['unused'][:3]}")
    model.net.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(1, 3, H, W)
    with torch.inference_mode():
        diff = (hf(pixel_values=x).heatmaps - model.net(x)).abs().max().item()
    return hf, float(diff)


def _onnxruntime_run(model) -> Callable[[torch.Tensor], object]:
    """The forward of ``model``'s network exported to ONNX (cached, :mod:`kanpose_cli.core.inference.backend`) and
    run by onnxruntime on CPU; ``model`` itself stays as it is (a copy is exported)."""
    from kanpose_cli.core.inference.backend import to_onnxruntime

    net = to_onnxruntime(copy.deepcopy(model), "cpu").net
    return lambda x: net(x)


def bench_models(names: list[str], settings: BenchSettings, peers: bool = True,
                 peak: Callable[[str], float | None] = lambda p: None,
                 on_row: Callable[[BenchRow], None] | None = None, notes: list[str] | None = None) -> list[BenchRow]:
    """Model-only rows for every model × precision × batch (plus transformers twins of vitpose-s/-b if ``peers``).

    Out-of-memory at a batch size gives a row with status ``oom`` and skips larger batches for that model.
    """
    from kanpose_cli.core.models import create_model
    from kanpose_cli.core.models.complexity import count_params
    from kanpose_cli.core.models.info import model_complexity

    notes = notes if notes is not None else []
    rows: list[BenchRow] = []
    hf_available = _version("transformers") is not None

    def emit(row: BenchRow) -> None:
        rows.append(row)
        if on_row:
            on_row(row)

    for name in names:
        torch.manual_seed(0)
        model = create_model(name)
        params = count_params(model)
        _, macs = model_complexity(name)
        impls: list[tuple[str, torch.nn.Module, Callable]] = [("kanpose", model.net, lambda m: (lambda x: m(x)))]
        if settings.plain:
            impls.append(("kanpose-plain", model.net, lambda m: (lambda x: m(x))))
        if peers and name in ("vitpose-s", "vitpose-b"):
            if not hf_available:
                notes.append(f"transformers not installed: no peer row for {name}")
            else:
                try:
                    hf, diff = hf_vitpose_twin(model)
                    notes.append(f"{name}: transformers VitPose twin has the same weights "
                                 f"(max |Δ heatmap| = {diff:.2e} on a random input)")
                    impls.append(("transformers", hf, lambda m: (lambda x: m(pixel_values=x).heatmaps)))
                except Exception as exc:  # noqa: BLE001 - keep the benchmark going; say why
                    notes.append(f"{name}: transformers twin failed: {type(exc).__name__}: {exc}")
        for precision in settings.precisions:
            runs = []
            for impl, net, make_run in impls:
                try:
                    size = tuple(model.input_size) if impl == "kanpose" else None
                    runs.append((impl, make_run(prepare_network(net, settings, precision, size))))
                except Exception as exc:  # noqa: BLE001 - report and go on
                    emit(BenchRow("model", name, impl, precision, 0, params, macs / 1e9, status="failed",
                                  note=f"{type(exc).__name__}: {exc}"[:200]))
            if settings.onnxruntime and precision == "fp32" and settings.device.type == "cpu":
                try:
                    runs.append(("onnxruntime", _onnxruntime_run(model)))
                except Exception as exc:  # noqa: BLE001 - report and go on
                    emit(BenchRow("model", name, "onnxruntime", precision, 0, params, macs / 1e9, status="failed",
                                  note=f"{type(exc).__name__}: {exc}"[:200]))
            for batch in settings.batches:
                try:
                    got = bench_forward_interleaved([r for _, r in runs], model.input_size, settings, precision,
                                                    batch, macs)
                except Exception as exc:  # noqa: BLE001 - OOM or a kernel missing for this dtype
                    oom = _is_oom(exc)
                    for impl, _ in runs:
                        emit(BenchRow("model", name, impl, precision, batch, params, macs / 1e9,
                                      status="oom" if oom else "failed", note=f"{type(exc).__name__}: {exc}"[:200]))
                    if settings.device.type == "cuda":
                        torch.cuda.empty_cache()
                    if oom:
                        break
                    continue
                for (impl, _), row in zip(runs, got):
                    row.model, row.impl, row.params = name, impl, params
                    _fill_util(row, peak(precision))
                    emit(row)
            del runs
        del model, impls
    return rows


# -------------------------------------------------------------------------------------------- end to end
def load_images(folder: str | Path | None, max_images: int) -> tuple[list[tuple[str, np.ndarray]], str]:
    """Decode up to ``max_images`` images (sorted by name) into memory.

    Args:
        folder: image folder or single image; None = the two sample images bundled with ultralytics.

    Returns:
        ``([(path, BGR uint8 image)], description)``.

    Raises:
        InputError: missing folder or no readable image.
    """
    from kanpose_cli.core.data.sources import _list_folder, read_image, sample_images

    if folder is None:
        paths = sample_images()
        desc = "ultralytics sample images (bus.jpg, zidane.jpg)"
        if not paths:
            raise InputError("no --images given and the ultralytics sample images were not found")
    else:
        p = Path(folder)
        if p.is_file():
            paths = [p]
        elif p.is_dir():
            paths = _list_folder(p)
        else:
            raise InputError(f"--images: {p} is not a file or folder")
        desc = str(p)
    out = []
    for path in paths:
        if len(out) >= max_images:
            break
        try:
            out.append((str(path), read_image(path)))
        except InputError:
            continue
    if not out:
        raise InputError(f"--images: no readable image in {folder}")
    return out, f"{desc}: {plural(len(out), 'image')}"


def _e2e_row(name: str, impl: str, seconds: float, images: int, persons: int, note: str = "",
             params: int | None = None, gmacs: float | None = None, stages=None,
             measured: tuple[str, ...] = ()) -> BenchRow:
    """One end-to-end row; ``stages`` (a :class:`~kanpose_cli.core.inference.timing.StageTimes`) fills the
    ``<stage>_ms`` fields named in ``measured`` (ms per image)."""
    row = BenchRow("e2e", name, impl, "fp32", 1, params, gmacs, images=images, persons=persons,
                   images_per_s=images / seconds if seconds > 0 else None,
                   persons_per_s=persons / seconds if seconds > 0 else None,
                   ms_per_image=1e3 * seconds / images if images else None, mean_ms=1e3 * seconds / max(images, 1),
                   note=note)
    if stages is not None and images:
        for stage in measured:
            setattr(row, f"{stage}_ms", 1e3 * getattr(stages, stage) / images)
    return row


def _time_images(est, images: list[tuple[str, np.ndarray]], passes: int, device: torch.device) -> tuple[float, int]:
    """``(seconds, persons)`` of ``est`` on every in-memory image, ``passes`` times, after one warm-up image;
    ``est.timings`` holds the stages of the timed passes."""
    est(images[0][1])  # warm-up
    persons = 0
    est.timings = StageTimes()
    t = time.perf_counter()
    for _ in range(passes):
        for _path, img in images:
            persons += len(est(img))
    _sync(device)
    return time.perf_counter() - t, persons


def bench_end_to_end(names: list[str], images: list[tuple[str, np.ndarray]], settings: BenchSettings,
                     detector_weights: str | None = None, peers: bool = True, pose_batch: int = 32,
                     on_row: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:
    """End-to-end rows: the box source alone, each pose model behind it, and the YOLO11n-pose peer, each a
    :class:`~kanpose_cli.core.inference.estimator.PoseEstimator` called on one in-memory image at a time; then, per
    pose model, a ``kanpose-loop`` row: the same images read from their files through :meth:`PoseEstimator.run`
    (background decoding, chunks of 8 images), as ``kanpose predict`` runs them without writing.

    Args:
        images: ``(path, BGR image)`` pairs (:func:`load_images`); the loop rows read ``path`` again.
        detector_weights: YOLO weights of the person boxes (default ``yolo11n-pose.pt``), or ``"none"`` (the whole
            image is one person; the peer then runs the default YOLO pose weights).

    Every configuration is timed over ``settings.e2e_passes`` passes of all images after a one-image warm-up.
    fp32 only. Each row carries its stage split (:class:`BenchRow` ``*_ms`` fields).
    """
    from kanpose_cli.core.data.sources import ImageListSource
    from kanpose_cli.core.detect.boxes import make_box_source
    from kanpose_cli.core.detect.yolo import DEFAULT_DETECTOR
    from kanpose_cli.core.inference.estimator import YOLO_PREFIX, PoseEstimator
    from kanpose_cli.core.models import create_model
    from kanpose_cli.core.models.complexity import count_params
    from kanpose_cli.core.models.info import model_complexity

    rows: list[BenchRow] = []
    dev = str(settings.device)
    boxes = make_box_source("detector", detector_weights, conf=0.25, device=dev)

    def emit(row):
        rows.append(row)
        if on_row:
            on_row(row)

    def find(path, img):
        return boxes([img], [path], [None])[0]

    find(*images[0])  # warm-up
    passes = max(1, settings.e2e_passes)
    t = time.perf_counter()
    found = []
    for _ in range(passes):
        found = [find(path, img) for path, img in images]
    _sync(settings.device)
    label = f"detector {boxes.detector.weights.name}" if boxes.kind == "detector" else "detector none"
    seconds = time.perf_counter() - t
    detected = StageTimes(detect=seconds, frames=len(images) * passes)
    emit(_e2e_row(label, "ultralytics" if boxes.kind == "detector" else "kanpose", seconds,
                  len(images) * passes, sum(len(b[0]) for b in found) * passes,
                  "person boxes only" if boxes.kind == "detector" else "whole image as one person",
                  stages=detected, measured=("detect",)))
    files = ImageListSource([Path(p) for p, _ in images], "folder", plural(len(images), "image"))
    for name in names:
        torch.manual_seed(0)
        model = create_model(name)
        params, macs = count_params(model), model_complexity(name)[1]
        impl = "kanpose"
        try:
            est = PoseEstimator(model, detector=detector_weights, device=settings.device, batch=pose_batch)
            seconds, persons = _time_images(est, images, passes, settings.device)
            emit(_e2e_row(name, impl, seconds, len(images) * passes, persons,
                          f"{est.boxes_label} + {name} (batch ≤ {pose_batch})", params, macs / 1e9,
                          stages=est.timings, measured=("detect", "pose")))
            if settings.onnxruntime and settings.device.type == "cpu":
                impl = "kanpose-onnxruntime"
                ort = PoseEstimator(copy.deepcopy(model), detector=detector_weights, device=settings.device,
                                    batch=pose_batch, backend="onnxruntime")
                seconds, persons = _time_images(ort, images, passes, settings.device)
                emit(_e2e_row(name, impl, seconds, len(images) * passes, persons,
                              f"{ort.boxes_label} + {name} on {ort.backend} (batch ≤ {pose_batch})", params,
                              macs / 1e9, stages=ort.timings, measured=("detect", "pose")))
                del ort
                impl = "kanpose"
            impl = "kanpose-loop"
            persons, stages = 0, StageTimes()
            t = time.perf_counter()
            for _ in range(passes):
                for _frame, result in est.run(files, timings=stages):
                    persons += 0 if result is None else len(result)
            _sync(settings.device)
            emit(_e2e_row(name, impl, time.perf_counter() - t, stages.frames, persons,
                          "predict loop: files, background decoding, chunks of 8 images, no writing", params,
                          macs / 1e9, stages=stages, measured=("decode", "wait", "detect", "pose")))
            del est
        except Exception as exc:  # noqa: BLE001 - report and go on
            row = _e2e_row(name, impl, 0.0, 0, 0, f"{type(exc).__name__}: {exc}"[:200])
            row.status = "oom" if _is_oom(exc) else "failed"
            emit(row)
        del model
    if peers:
        weights = DEFAULT_DETECTOR if boxes.kind != "detector" else str(detector_weights or DEFAULT_DETECTOR)
        est = PoseEstimator(f"{YOLO_PREFIX}{weights}", device=settings.device, conf=0.25)
        est(images[0][1])
        persons = 0
        est.timings = StageTimes()
        t = time.perf_counter()
        for _ in range(passes):
            for _, img in images:
                persons += len(est(img))
        _sync(settings.device)
        emit(_e2e_row(f"{Path(est.yolo.weights.name).stem} (peer)", "ultralytics", time.perf_counter() - t,
                      len(images) * passes, persons, "one-stage YOLO pose: own boxes + keypoints",
                      stages=est.timings, measured=("pose",)))
    return rows


# ---------------------------------------------------------------------------------------------- run + save
def run_benchmark(names: list[str], settings: BenchSettings, images: list[tuple[str, np.ndarray]] | None,
                  images_desc: str = "", peers: bool = True, detector: str | None = None,
                  on_row: Callable[[BenchRow], None] | None = None,
                  on_stage: Callable[[str], None] | None = None) -> BenchResult:
    """Model-only rows for ``names`` (and peers), then end-to-end rows if ``images`` is given.

    Sets ``torch.set_num_threads(settings.threads)`` first (reported). Returns a :class:`BenchResult`.
    """
    torch.set_num_threads(settings.threads)
    env = environment_info(settings.device, settings.threads)
    result = BenchResult(env, settings.to_dict())
    if settings.device.type == "cpu":
        if on_stage:
            on_stage("measuring the CPU fp32 matmul peak")
        n, repeats = (1024, 3) if settings.quick else (2048, 5)
        env["peak_tflops"] = {p: measure_cpu_peak_gflops(n, repeats, PRECISIONS[p]) / 1e3 for p in settings.precisions
                              if p in ("fp32", "bf16")}
        env["peak_tflops"].setdefault("fp32", measure_cpu_peak_gflops(n, repeats) / 1e3)
        env["peak_source"] = f"measured torch.mm {n}² per precision with {settings.threads} threads"

        def peak(p):
            return env["peak_tflops"].get(p)
    else:
        dname = env["device_name"]
        env["peak_tflops"] = {p: gpu_peak_tflops(dname, p) for p in settings.precisions}
        env["peak_source"] = "datasheet (dense)" if any(env["peak_tflops"].values()) else "unknown GPU: no peak"

        def peak(p):
            return gpu_peak_tflops(dname, p)
    if on_stage:
        on_stage("model-only")
    result.rows += bench_models(names, settings, peers=peers, peak=peak, on_row=on_row, notes=result.notes)
    reference = dict(env["peak_tflops"])
    if settings.device.type == "cpu":  # again after the model rows: the best of both (load changes during a run)
        if on_stage:
            on_stage("measuring the CPU matmul peak again")
        for p in reference:
            reference[p] = max(reference[p], measure_cpu_peak_gflops(n, repeats, PRECISIONS[p]) / 1e3)
    env["peak_reference_tflops"] = reference
    env["peak_tflops"], util_notes = fill_utilisation(result.rows, reference)
    result.notes += util_notes
    warning = spread_warning([r for r in result.rows if r.section == "model"])
    if warning:
        result.warnings.append(warning)
    if images:
        if on_stage:
            on_stage("end-to-end")
        result.settings["images"] = images_desc
        result.rows += bench_end_to_end(names, images, settings, detector, peers=peers, on_row=on_row)
    result.notes += vitpose_comparison(result.rows)
    return result


def vitpose_comparison(rows: list[BenchRow]) -> list[str]:
    """Sentences comparing our vitpose-s/-b with the transformers twin at each (precision, batch)."""
    out = []
    ours = {(r.model, r.precision, r.batch): r for r in rows if r.section == "model" and r.impl == "kanpose"
            and r.status == "ok"}
    for r in rows:
        if r.impl != "transformers" or r.status != "ok":
            continue
        o = ours.get((r.model, r.precision, r.batch))
        if o is None or not o.p50_ms:
            continue
        ratio = r.p50_ms / o.p50_ms
        out.append(f"{r.model} {r.precision} batch {r.batch}: kanpose {o.p50_ms:.1f} ms vs transformers "
                   f"{r.p50_ms:.1f} ms (p50) -> ours is {ratio:.2f}× the speed of transformers")
    return out


CSV_FIELDS = [f for f in BenchRow.__dataclass_fields__]


def write_results(result: BenchResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``bench.json`` (env, settings, notes, rows) and ``bench.csv`` (rows; env columns repeated) into
    ``out_dir`` (created), each atomically. Returns both paths."""
    out = Path(out_dir)
    jpath, cpath = out / "bench.json", out / "bench.csv"
    write_json_atomic(jpath, result.to_dict(), default=str)
    env_cols = ["device_name", "threads", "date", "torch", "kanpose"]
    with atomic_path(cpath) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS + env_cols)
        for r in result.rows:
            d = asdict(r)
            w.writerow([("" if d[k] is None else d[k]) for k in CSV_FIELDS] + [result.env.get(k) for k in env_cols])
    return jpath, cpath

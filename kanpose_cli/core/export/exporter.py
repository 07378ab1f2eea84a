"""Export pose models to ONNX / TorchScript (/ TensorRT) with embedded metadata, plus a numeric parity check.

I/O contract of an exported file (also stored in it, see :func:`export_meta`):

- input ``input``: (B, 3, H, W) float32 RGB crops, already normalised: ``(pixel / 255 − mean) / std`` with the
  model's mean/std (ImageNet for every family), crops made with the model's affine (UDP for all models here). B is
  dynamic.
- outputs, raw (default): the network outputs named after the codec: SimCC ``simcc_x (B, K, k·W)``,
  ``simcc_y (B, K, k·H)`` logits; heatmap ``heatmaps (B, K, h, w)``; regression ``coords (B, K, 2)`` (x/W, y/H).
- outputs with ``decode=True``: ``keypoints (B, K, 2)`` float32 (x, y) in **crop pixels** and ``scores (B, K)`` in
  [0, 1], computed in the graph with the same torch code as :meth:`PoseModel.predict` (flip test excluded).

ONNX metadata (``metadata_props``): ``kanpose`` (the full JSON of :func:`export_meta`), plus readable copies
``model``, ``input_size`` (``"H,W"``), ``mean``, ``std``, ``keypoint_names``, ``codec`` (JSON), ``decode``
(``"true"``/``"false"``), ``outputs``. TorchScript stores the same JSON as the extra file ``kanpose.json``.

Layer: below :mod:`kanpose_cli.core.inference`, whose onnxruntime backend
(:mod:`~kanpose_cli.core.inference.backend`) exports and caches graphs with :func:`export_onnx`. So this module uses
only models, weights, data and detect: the parity checks cut their real person crops with
:func:`kanpose_cli.core.data.transforms.make_crops` (the same warp the top-down pipeline uses), never through
the inference package.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from kanpose_cli import __version__
from kanpose_cli.core.errors import InputError, KanposeError, UsageError
from kanpose_cli.core.io import atomic_path, atomic_write
from kanpose_cli.core.models.registry import PoseModel
from kanpose_cli.core.text import plural
from kanpose_cli.core.weights.card import META_KEY, read_onnx_meta

OPSET = 17
#: Bumped whenever the exported graph changes for the same model and weights (part of the onnxruntime cache key).
#: 2: Mish exported as :class:`OnnxMish`. 3: ``sample_bytes`` in the metadata (onnxruntime micro-batches).
EXPORT_REVISION = 3

_RAW_OUTPUT_NAMES = {"simcc": ["simcc_x", "simcc_y"], "heatmap": ["heatmaps"], "regression": ["coords"]}


def raw_output_names(model: PoseModel, n_outputs: int | None = None) -> list[str]:
    """Names of the raw network outputs of ``model`` (by codec type; ``output_i`` for unknown codecs)."""
    names = _RAW_OUTPUT_NAMES.get(model.codec.type)
    if names is None or (n_outputs is not None and len(names) != n_outputs):
        n = n_outputs if n_outputs is not None else 1
        names = [f"output_{i}" for i in range(n)]
    return list(names)


class ExportWrapper(nn.Module):
    """What gets traced: (B, 3, H, W) normalised crops -> raw outputs as a flat tuple, or (keypoints, scores).

    Args:
        model: the :class:`PoseModel`. decode: put the codec's decode in the graph.
    """

    def __init__(self, model: PoseModel, decode: bool = False):
        super().__init__()
        self.model, self.decode = model, decode

    def forward(self, x: torch.Tensor):
        out = self.model.net(x)
        if self.decode:
            kpts, scores = self.model.codec.decode(out)
            return kpts.float(), scores.float()
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class OnnxMish(nn.Module):
    """Mish, ``x · tanh(softplus(x))``, written for the exported graph as ``x · (n / (n + 2))`` with
    ``n = eˣ (eˣ + 2)`` (the same function: ``tanh(log(1 + eˣ)) = ((1 + eˣ)² − 1) / ((1 + eˣ)² + 1)``).

    ONNX has no Mish before opset 18, so ``nn.Mish`` exports as Softplus → Tanh → Mul, and onnxruntime's CPU Softplus
    is a slow scalar loop: it took a quarter of ``amfacpose-r18-128x96``'s onnxruntime time (profile in
    ``docs/benchmarks.md``). This form uses only Exp, Clip, Add, Mul and Div, which onnxruntime vectorises: +37–41 %
    images/s for the AMFACPose models. ``x`` is clamped at 20 inside the exponential (``n / (n + 2)`` is 1 in fp32
    from there on), so nothing overflows. Measured difference to ``torch.nn.functional.mish`` on AMFACPose outputs:
    3e-8 (fp32). Shape-preserving, any float dtype.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(torch.clamp(x, max=20.0))
        n = e * (e + 2.0)
        return x * (n / (n + 2.0))  # not (x·n)/(n+2): x·n overflows for large x


def onnx_friendly(model: PoseModel) -> PoseModel:
    """``model`` itself if it has no ``nn.Mish``, else a deep copy in which every ``nn.Mish`` is an
    :class:`OnnxMish` (the original is not touched)."""
    if not any(isinstance(m, nn.Mish) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Mish):
                setattr(parent, name, OnnxMish())
    return model


def export_meta(model: PoseModel, decode: bool, output_names: list[str]) -> dict:
    """JSON-able description embedded in exported files: :meth:`PoseModel.meta` plus the I/O contract."""
    meta = model.meta()
    meta.update({
        "kanpose_version": __version__,
        "weights": getattr(model, "weights_label", ""),
        "decode": bool(decode),
        "input_name": "input",
        "output_names": list(output_names),
        "input_layout": "NCHW float32 RGB, (x/255 - mean)/std",
        "keypoints_units": "crop pixels (x, y)" if decode else None,
        "flip_index": list(model.keypoints.flip_index),
        "sample_bytes": _sample_bytes(model),
    })
    return meta


def _sample_bytes(model: PoseModel) -> int:
    """Bytes of the largest fp32 intermediate of one crop (onnxruntime's CPU micro-batches: ``OnnxNet``); 0 if
    the network cannot be observed."""
    from kanpose_cli.core.models.inference import largest_activation_bytes

    H, W = model.input_size
    try:
        return int(largest_activation_bytes(model.net.eval(), torch.zeros(1, 3, H, W)))  # exporters: CPU fp32
    except Exception:  # noqa: BLE001 - an unobservable network just runs whole batches
        return 0


def _n_outputs(model: PoseModel) -> int:
    H, W = model.input_size
    with torch.no_grad():
        out = model.net(torch.zeros(1, 3, H, W, device=next(model.parameters()).device))
    return len(out) if isinstance(out, (tuple, list)) else 1


def export_onnx(model: PoseModel, path: str | Path, decode: bool = False, opset: int = OPSET,
                batch: int = 2) -> Path:
    """Export ``model`` (on CPU, fp32) to ONNX with a dynamic batch axis and metadata (module docstring).

    Uses the TorchScript-based exporter (``dynamo=False``; needs no onnxscript). The example input has ``batch``
    crops so that batch-dependent shapes stay symbolic.

    Returns:
        The written path.

    Raises:
        KanposeError: the exporter failed (message names the exception).
    """
    import onnx

    path = Path(path)
    model = model.float().cpu().eval()
    traced = onnx_friendly(model)
    names = ["keypoints", "scores"] if decode else raw_output_names(model, _n_outputs(model))
    H, W = model.input_size
    x = torch.randn(batch, 3, H, W)
    dyn = {n: {0: "batch"} for n in ["input", *names]}
    with atomic_path(path) as tmp:  # a failed or killed export never leaves a half-written file at ``path``
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                # the wrapper must be in eval mode: the exporter restores the wrapper's mode on the whole model
                torch.onnx.export(ExportWrapper(traced, decode).eval(), (x,), str(tmp), dynamo=False,
                                  input_names=["input"], output_names=names, dynamic_axes=dyn, opset_version=opset,
                                  do_constant_folding=True)
            except Exception as exc:  # noqa: BLE001 - the exporter raises many types
                raise KanposeError(f"ONNX export of {model.name} failed: {type(exc).__name__}: {exc}") from None
            finally:
                model.eval()
                traced.eval()
        proto = onnx.load(str(tmp))
        meta = export_meta(model, decode, names)
        props = {META_KEY: json.dumps(meta), "model": model.name, "input_size": f"{H},{W}",
                 "mean": ",".join(str(v) for v in model.spec.mean), "std": ",".join(str(v) for v in model.spec.std),
                 "keypoint_names": ",".join(model.keypoints.names), "codec": json.dumps(model.codec.config()),
                 "decode": "true" if decode else "false", "outputs": ",".join(names)}
        del proto.metadata_props[:]
        for k, v in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.producer_name, proto.producer_version = "kanpose", __version__
        onnx.save(proto, str(tmp))
    return path


def export_torchscript(model: PoseModel, path: str | Path, decode: bool = False) -> Path:
    """Trace ``model`` (CPU, fp32) to TorchScript; the metadata JSON goes in the extra file ``kanpose.json``.

    Raises:
        KanposeError: tracing failed.
    """
    path = Path(path)
    model = model.float().cpu().eval()
    H, W = model.input_size
    names = ["keypoints", "scores"] if decode else raw_output_names(model, _n_outputs(model))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(ExportWrapper(model, decode).eval(), torch.randn(2, 3, H, W), check_trace=False)
            with atomic_path(path) as tmp:
                torch.jit.save(traced, str(tmp), _extra_files={"kanpose.json": json.dumps(export_meta(model, decode,
                                                                                                       names))})
        except Exception as exc:  # noqa: BLE001 - the tracer and scripting raise many types
            raise KanposeError(f"TorchScript export of {model.name} failed: {type(exc).__name__}: {exc}") from None
    return path


def tensorrt_status(device: torch.device) -> str | None:
    """None if a TensorRT engine can be built here, else the reason it is skipped (one line)."""
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed"
    if device.type != "cuda" or not torch.cuda.is_available():
        return "TensorRT needs a CUDA device (--device cuda)"
    return None


def export_tensorrt(onnx_path: str | Path, path: str | Path, fp16: bool = False, max_batch: int = 64,
                    input_size: tuple[int, int] = (256, 192)) -> Path:
    """Build a serialized TensorRT engine from an exported ONNX file (dynamic batch 1..``max_batch``).

    Raises:
        KanposeError: parsing or building failed.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise KanposeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    H, W = input_size
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, H, W), (max(1, max_batch // 2), 3, H, W), (max_batch, 3, H, W))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise KanposeError("TensorRT engine build failed")
    return atomic_write(path, lambda tmp: tmp.write_bytes(bytes(engine)))


# ---------------------------------------------------------------------------------------------- parity check
def gt_crops(model, coco_dir: str | Path, n: int = 8, min_area: float = 32 * 32) -> np.ndarray:
    """Real person crops from the ground-truth boxes of a COCO folder (``annotations/person_keypoints_val2017.json``
    and ``val2017/``), largest people first.

    Returns:
        (N, H, W, 3) uint8 RGB crops at the model's input size (N ≤ ``n``).

    Raises:
        InputError: annotations or images missing.
    """
    from kanpose_cli.core.data.coco import CocoKeypointData, standard_layout
    from kanpose_cli.core.data.sources import read_image
    from kanpose_cli.core.data.transforms import make_crops

    ann_path, images_dir = standard_layout(coco_dir, "val2017")
    if not ann_path.is_file():
        raise InputError(f"COCO annotations not found: {ann_path}")
    data = CocoKeypointData(ann_path, images_dir)
    per_image = []  # (largest box area, image id, boxes largest first) under the one GT-box convention
    for image_id in data.image_ids:
        boxes, _ = data.gt_boxes(image_id)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        keep = np.argsort(-area, kind="stable")[area[np.argsort(-area, kind="stable")] >= min_area]
        if len(keep):
            per_image.append((float(area[keep[0]]), image_id, boxes[keep]))
    crops = []
    for _, image_id, boxes in sorted(per_image, key=lambda t: -t[0]):
        image = read_image(data.image(image_id).path)
        c, _, _ = make_crops(image, boxes[:2], model.input_size, model.spec.udp)
        crops.extend(c)
        if len(crops) >= n:
            break
    if not crops:
        raise InputError(f"no person boxes found in {ann_path}")
    return np.stack(crops[:n])


def detector_crops(model, image_path: str | Path, detector: str | None = None, n: int = 8) -> np.ndarray:
    """Real person crops from the person boxes of one image (the box source of ``detector``: YOLO weights, default
    ``yolo11n-pose.pt``, or ``none``); the whole image if no person is found.

    Returns:
        (N, H, W, 3) uint8 RGB crops.
    """
    from kanpose_cli.core.data.sources import read_image
    from kanpose_cli.core.detect.boxes import make_box_source
    from kanpose_cli.core.data.transforms import make_crops

    image = read_image(image_path)
    boxes, _ = make_box_source("detector", detector)([image], [str(image_path)], [None])[0]
    if len(boxes) == 0:
        h, w = image.shape[:2]
        boxes = np.array([[0, 0, w, h]], dtype=np.float32)
    crops, _, _ = make_crops(image, boxes[:n], model.input_size, model.spec.udp)
    return crops


def parity_crops(model, coco: str | Path | None = None, image: str | Path | None = None,
                 n: int = 8) -> tuple[np.ndarray, str]:
    """The real person crops of the export parity check, and a description of them.

    ``coco``: ground-truth boxes of a COCO folder (:func:`gt_crops`); ``image``: detector boxes on that image
    (:func:`detector_crops`); neither: detector boxes on the first sample photo that ships with ultralytics
    (``bus.jpg``).

    Raises:
        UsageError: both given. InputError: unreadable data, or no sample photo installed.
    """
    from kanpose_cli.core.data.sources import sample_images

    if coco is not None and image is not None:
        raise UsageError("give either --coco or --image for the parity crops, not both")
    if coco is not None:
        crops = gt_crops(model, coco, n=n)
        return crops, f"{len(crops)} GT-box crops from {Path(coco).name}"
    if image is None:
        samples = sample_images()
        if not samples:
            raise InputError("no parity image: pass --coco DIR or --image FILE (or --no-verify)")
        image = samples[0]
    crops = detector_crops(model, image, n=n)
    return crops, f"{plural(len(crops), 'crop')} from YOLO boxes on {Path(image).name}"


@dataclass
class ParityReport:
    """Result of comparing an exported model with PyTorch on the same crops.

    Attributes:
        backend: ``onnxruntime (CPUExecutionProvider)`` or ``torchscript``.
        n_crops: number of crops compared.
        raw_max_abs: max |exported − PyTorch| over the raw network outputs (None if the file decodes in-graph).
        kpt_max_px: max |Δ| of the decoded keypoints, crop pixels.
        score_max_abs: max |Δ| of the keypoint scores.
        tol_px: pass threshold for ``kpt_max_px``.
    """

    backend: str
    n_crops: int
    raw_max_abs: float | None
    kpt_max_px: float
    score_max_abs: float
    tol_px: float = 0.01
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.kpt_max_px) and self.kpt_max_px <= self.tol_px)


def _torch_reference(model: PoseModel, x: torch.Tensor):
    with torch.no_grad():
        raw = model.net(x)
        kpts, scores = model.codec.decode(raw)
    raw = tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)
    return [r.float().numpy() for r in raw], kpts.float().numpy(), scores.float().numpy()


def _compare(model, raw_ref, kpts_ref, scores_ref, outputs, decode: bool):
    """-> (raw max abs or None, keypoint max px, score max abs) for exported ``outputs`` (list of arrays)."""
    if decode:
        kpts, scores = outputs[0], outputs[1]
        raw_diff = None
    else:
        raw_diff = max(float(np.abs(o - r).max()) for o, r in zip(outputs, raw_ref))
        t = [torch.from_numpy(np.asarray(o)) for o in outputs]
        with torch.no_grad():
            k, s = model.codec.decode(tuple(t) if len(t) > 1 else t[0])
        kpts, scores = k.float().numpy(), s.float().numpy()
    return raw_diff, float(np.abs(kpts - kpts_ref).max()), float(np.abs(scores - scores_ref).max())


def check_onnx_parity(model: PoseModel, onnx_path: str | Path, crops_rgb: np.ndarray, tol_px: float = 0.01,
                      provider: str = "CPUExecutionProvider") -> ParityReport:
    """Run the exported ONNX file with onnxruntime and ``model`` with PyTorch (CPU, fp32) on the same crops.

    Args:
        crops_rgb: (N, H, W, 3) uint8 RGB crops (real people: see :func:`gt_crops` / :func:`detector_crops`).
        tol_px: the pass threshold on decoded keypoints, crop pixels.
    """
    from kanpose_cli.core.weights.onnx import import_onnxruntime

    ort = import_onnxruntime()

    meta = read_onnx_meta(onnx_path)
    decode = bool(meta.get("decode"))
    model = model.float().cpu().eval()
    x = model.normalize(torch.from_numpy(np.ascontiguousarray(crops_rgb)))
    raw_ref, kpts_ref, scores_ref = _torch_reference(model, x)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=[provider])
    start = time.perf_counter()
    outputs = sess.run(None, {"input": x.numpy()})
    seconds = time.perf_counter() - start
    raw, kp, sc = _compare(model, raw_ref, kpts_ref, scores_ref, outputs, decode)
    return ParityReport(f"onnxruntime ({sess.get_providers()[0]})", len(crops_rgb), raw, kp, sc, tol_px, seconds)


def check_torchscript_parity(model: PoseModel, ts_path: str | Path, crops_rgb: np.ndarray,
                             tol_px: float = 0.01) -> ParityReport:
    """Same as :func:`check_onnx_parity` for a TorchScript file."""
    extra = {"kanpose.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still the TorchScript loader
        ts = torch.jit.load(str(ts_path), map_location="cpu", _extra_files=extra)
    decode = bool(json.loads(extra["kanpose.json"] or "{}").get("decode"))
    model = model.float().cpu().eval()
    x = model.normalize(torch.from_numpy(np.ascontiguousarray(crops_rgb)))
    raw_ref, kpts_ref, scores_ref = _torch_reference(model, x)
    start = time.perf_counter()
    with torch.no_grad():
        out = ts(x)
    seconds = time.perf_counter() - start
    outputs = [o.numpy() for o in out]
    raw, kp, sc = _compare(model, raw_ref, kpts_ref, scores_ref, outputs, decode)
    return ParityReport("torchscript", len(crops_rgb), raw, kp, sc, tol_px, seconds)


def resolve_formats(formats: str) -> list[str]:
    """``"onnx,torchscript"`` -> list; raises UsageError for unknown names."""
    known = ("onnx", "torchscript", "engine")
    out = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in out if f not in known]
    if bad or not out:
        raise UsageError(f"unknown export format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(known)}")
    return out

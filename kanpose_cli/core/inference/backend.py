"""Which runtime executes the pose network: PyTorch, or onnxruntime on a graph exported once and cached.

``--backend`` of ``kanpose predict``, ``eval``, ``label`` and ``bench`` (API: ``PoseEstimator(backend=...)``):

- ``torch``: the network as built, prepared for inference (:mod:`kanpose_cli.core.models.inference`).
- ``onnxruntime``: the model is exported to ONNX (:func:`~kanpose_cli.core.export.exporter.export_onnx`, raw
  outputs, fp32) into ``<cache>/onnx/<model>-<key>.onnx`` and run by onnxruntime
  (:class:`~kanpose_cli.core.weights.onnx.OnnxNet`). ``key`` is a SHA-256 over the model's name, config, codec and
  every weight tensor, the kanpose and torch versions, the ONNX opset and the exporter's revision, so one export
  serves every later run with the same weights, and other weights or another kanpose get their own file.
  Pre-processing, the flip test and the codec's decoding stay kanpose's own code, so keypoints match torch to float
  rounding (measured: see ``docs/benchmarks.md``). Writes are atomic: an interrupted export leaves no file behind.
The YOLO person detector follows the same choice on CPU (:func:`detector_backend`).

- ``auto`` (default): ``onnxruntime`` where it was measured faster, i.e. on CPU in fp32 with trained weights;
  ``torch`` on CUDA (onnxruntime-gpu is not a dependency), with ``--half``, for a file that is already ``.onnx``,
  and for ``--weights random`` (nothing worth caching). If the export fails, ``auto`` says so in one warning and
  stays on torch; an explicit ``onnxruntime`` raises instead.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path

import torch

from kanpose_cli.core.errors import KanposeError, UsageError
from kanpose_cli.core.models.registry import PoseModel

BACKENDS = ("auto", "torch", "onnxruntime")


def backend_name(model: PoseModel) -> str:
    """What runs ``model``'s network, for logs and settings: ``torch`` or ``onnxruntime <execution provider>``."""
    return getattr(model.net, "backend", None) or "torch"


def is_onnx_model(model: PoseModel) -> bool:
    """Whether ``model``'s network is already an onnxruntime session (``--weights model.onnx``)."""
    from kanpose_cli.core.weights.onnx import OnnxNet

    return isinstance(model.net, OnnxNet)


def is_torchscript_model(model: PoseModel) -> bool:
    """Whether ``model``'s network is a TorchScript export (``--weights model.torchscript.pt``), run as traced."""
    from kanpose_cli.core.weights.torchscript import TorchScriptNet

    return isinstance(model.net, TorchScriptNet)


def resolve_backend(backend: str, model: PoseModel, device: torch.device, half: bool) -> str:
    """The backend ``backend`` stands for with this model and device: ``"torch"`` or ``"onnxruntime"``.

    A TorchScript export always runs as traced (``torch``).

    Raises:
        UsageError: an unknown name; ``onnxruntime`` with ``--half`` or a TorchScript file; ``torch`` for an
            ``.onnx`` file.
    """
    from kanpose_cli.core.weights import RANDOM_LABEL

    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    onnx_file = is_onnx_model(model)
    if is_torchscript_model(model):  # a TorchScript export runs as traced, in libtorch
        if backend == "onnxruntime":
            raise UsageError(f"{model.weights_label} is a TorchScript file; --backend onnxruntime needs a PyTorch "
                             f"checkpoint or an .onnx export")
        return "torch"
    if backend == "auto":
        random = getattr(model, "weights_label", "") == RANDOM_LABEL
        return "onnxruntime" if onnx_file or (device.type == "cpu" and not half and not random) else "torch"
    if backend == "torch" and onnx_file:
        raise UsageError(f"{model.weights_label} is an ONNX file, run by onnxruntime; --backend torch needs a "
                         f"PyTorch checkpoint")
    if backend == "onnxruntime" and half:
        raise UsageError("--backend onnxruntime runs the exported fp32 graph; drop --half or use --backend torch")
    return backend


def onnx_cache_key(model: PoseModel, opset: int) -> str:
    """SHA-256 (hex) of everything the exported graph depends on (module docstring)."""
    from kanpose_cli import __version__
    from kanpose_cli.core.export.exporter import EXPORT_REVISION

    h = hashlib.sha256()
    h.update(json.dumps({"meta": model.meta(), "kanpose": __version__, "torch": torch.__version__.split("+")[0],
                         "opset": opset, "export": EXPORT_REVISION}, sort_keys=True, default=str).encode())
    for name, tensor in model.net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def onnx_cache_path(model: PoseModel) -> Path:
    """``<cache>/onnx/<model>-<first 16 hex digits of the key>.onnx`` (not created here)."""
    from kanpose_cli.core.export.exporter import OPSET
    from kanpose_cli.core.paths import cache_dir

    return cache_dir() / "onnx" / f"{model.name}-{onnx_cache_key(model, OPSET)[:16]}.onnx"


def to_onnxruntime(model: PoseModel, device: torch.device | str = "cpu") -> PoseModel:
    """``model`` run by onnxruntime: its cached ONNX export, made now if missing.

    Args:
        model: a PyTorch :class:`PoseModel` (any device; it is moved to CPU fp32 for the export, and should not be
            used afterwards). The first export of trained weights is announced with :func:`~kanpose_cli.core.logs.note`
            (``exporting … to ONNX once``). device: where onnxruntime runs (``cpu``, or ``cuda`` with onnxruntime-gpu).

    Returns:
        A new :class:`PoseModel` whose network is an onnxruntime session, with the torch model's ``weights_label``
        (the network's ``backend`` says ``onnxruntime <provider>``).

    Raises:
        KanposeError: the export failed. WeightsError / DeviceError: onnxruntime cannot load or run the file.
    """
    from kanpose_cli.core.weights import RANDOM_LABEL
    from kanpose_cli.core.weights.onnx import load_onnx_model

    label = getattr(model, "weights_label", "")
    if label == RANDOM_LABEL:  # fresh random weights each time: export to a file that goes away after loading
        with tempfile.TemporaryDirectory(prefix="kanpose-onnx-") as tmp:
            onnx_model = _export_and_load(model, Path(tmp) / f"{model.name}.onnx", device, load_onnx_model)
    else:
        path = onnx_cache_path(model)
        if not path.is_file():
            from kanpose_cli.core.logs import note

            note(f"exporting {model.name} ({label}) to ONNX once for onnxruntime (a few seconds); later runs reuse "
                 f"the cached file {path}")
        onnx_model = _export_and_load(model, path, device, load_onnx_model)
    onnx_model.weights_label = label
    return onnx_model


def _export_and_load(model: PoseModel, path: Path, device, load) -> PoseModel:
    from kanpose_cli.core.export.exporter import export_onnx

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path)
    return load(path, expected_model=model.name, device=device)


def detector_backend(backend: str, device: torch.device, half: bool) -> str:
    """What runs the YOLO person detector under ``backend``: ``onnxruntime`` for ``auto`` / ``onnxruntime`` on CPU
    without ``half`` (ultralytics' own ONNX export, cached: :func:`kanpose_cli.core.detect.yolo.onnx_detector`),
    ``torch`` otherwise (on CUDA the detector stays PyTorch: onnxruntime-gpu is not a dependency)."""
    return "onnxruntime" if backend in ("auto", "onnxruntime") and device.type == "cpu" and not half else "torch"


def apply_backend(model: PoseModel, backend: str, device: torch.device, half: bool) -> PoseModel:
    """``model`` on the backend that ``backend`` resolves to (:func:`resolve_backend`).

    Returns:
        ``model`` itself for ``torch`` (and for a model that is already ONNX), else :func:`to_onnxruntime`'s copy.

    Raises:
        UsageError: see :func:`resolve_backend`. KanposeError: an explicit ``onnxruntime`` whose export failed
            (``auto`` warns and keeps torch instead).
    """
    chosen = resolve_backend(backend, model, device, half)
    if chosen == "torch" or is_onnx_model(model):
        return model
    try:
        return to_onnxruntime(model, device)
    except KanposeError as exc:
        if backend != "auto":
            raise
        warnings.warn(f"onnxruntime backend unavailable ({exc}); running {model.name} with torch", stacklevel=2)
        return model

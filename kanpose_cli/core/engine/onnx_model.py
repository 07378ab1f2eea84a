"""An exported ``.onnx`` pose model run by onnxruntime, usable wherever :class:`TopDownPipeline` takes a
:class:`PoseModel` (``kanpose predict --weights model.onnx``).

Everything the pipeline needs is rebuilt from the file's metadata (written by
:func:`kanpose_cli.core.engine.exporter.export_onnx`): model name, input size, mean/std, UDP flag, keypoint set and
codec settings. Files with raw outputs are decoded by the same torch codec as the PyTorch path, so keypoints match
it to float rounding; the flip test then merges raw outputs exactly like :meth:`PoseModel.predict`. Files exported
with ``--decode`` return keypoints directly; their flip test averages the keypoints (and scores) of the crop and the
mirrored crop after mapping ``x -> W - 1 - x`` and swapping left/right (documented deviation: PyTorch merges
logits/heatmaps before decoding).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from kanpose_cli.core.codecs import build_codec
from kanpose_cli.core.errors import DeviceError, UsageError, WeightsError
from kanpose_cli.core.keypoints import get_keypoint_set


def onnx_providers(device: torch.device | str) -> list[str]:
    """onnxruntime providers for a torch device: CPU -> ``[CPUExecutionProvider]``; CUDA -> CUDA then CPU.

    Raises:
        DeviceError: CUDA asked for but onnxruntime has no ``CUDAExecutionProvider`` (onnxruntime-gpu missing).
    """
    import onnxruntime as ort

    dev = torch.device(device)
    if dev.type == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise DeviceError(f"--device {device}: onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                          f"(available: {', '.join(available)}); install onnxruntime-gpu or use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxPoseModel:
    """A pose model backed by an onnxruntime session; quacks like :class:`PoseModel` for the pipeline.

    Args:
        path: ``.onnx`` file written by ``kanpose export``.
        device: ``cpu`` or ``cuda[:N]``; selects the execution provider (no silent CPU fallback for CUDA).
        expected_model: if given, the file must hold this registered model.

    Attributes:
        name, input_size ``(H, W)``, keypoints (:class:`KeypointSet`), spec (``udp``, ``mean``, ``std``, ``name``,
        ``family``), codec, provider (the provider onnxruntime actually uses), weights_label, decode_in_graph.

    Raises:
        WeightsError: unreadable file, no kanpose metadata, or another model than ``expected_model``.
        DeviceError: see :func:`onnx_providers`.
    """

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", expected_model: str | None = None):
        import onnxruntime as ort

        from kanpose_cli.core.engine.exporter import read_onnx_meta
        from kanpose_cli.core.errors import InputError

        self.path = Path(path)
        try:
            meta = read_onnx_meta(self.path)
        except InputError as exc:
            raise WeightsError(str(exc)) from None
        self.meta = meta
        name = meta.get("model", "unknown")
        if expected_model is not None and name != expected_model:
            raise WeightsError(f"{self.path.name} holds {name!r}, not {expected_model!r}; use --model {name}")
        self.name = name
        self.input_size = tuple(int(v) for v in meta["input_size"])
        self.keypoints = get_keypoint_set(meta.get("keypoint_set", "coco17"))
        if list(self.keypoints.names) != list(meta.get("keypoint_names", self.keypoints.names)):
            raise WeightsError(f"{self.path.name}: keypoint names differ from the {self.keypoints.name} set")
        self.spec = SimpleNamespace(name=name, family=meta.get("family", ""), udp=bool(meta.get("udp", True)),
                                    mean=tuple(meta["mean"]), std=tuple(meta["std"]))
        self.codec = build_codec(meta["codec"], self.input_size)
        self.decode_in_graph = bool(meta.get("decode"))
        self.device = torch.device(device)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=onnx_providers(self.device))
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise WeightsError(f"onnxruntime cannot load {self.path}: {exc}") from None
        self.provider = self.session.get_providers()[0]
        if self.device.type == "cuda" and self.provider != "CUDAExecutionProvider":
            raise DeviceError(f"onnxruntime fell back to {self.provider} for {self.path.name}; CUDA not usable")
        self.input_name = self.session.get_inputs()[0].name
        self.weights_label = f"{self.path.name} via onnxruntime {self.provider}"

    # --- nn.Module look-alikes used by TopDownPipeline -----------------------------------------------------
    def to(self, device):
        """No-op for CPU / the session's device; the session was created for ``device`` at load time."""
        return self

    def eval(self):
        return self

    def half(self):
        raise UsageError("--half is not supported with ONNX weights (the file is fp32); drop --half")

    def normalize(self, crops_rgb_uint8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 normalised with the file's mean/std."""
        x = crops_rgb_uint8.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.spec.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def run(self, x: torch.Tensor) -> list[np.ndarray]:
        """(B, 3, H, W) normalised crops -> the file's outputs as numpy arrays."""
        return self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})

    def predict(self, crops: torch.Tensor, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`PoseModel.predict`: (B, 3, H, W) normalised crops ->
        ``(keypoints (B, K, 2) float32 crop pixels, scores (B, K) in [0, 1])`` on the input's device."""
        dev = crops.device
        if self.decode_in_graph:
            k, s = (torch.from_numpy(a) for a in self.run(crops))
            if flip:
                kf, sf = (torch.from_numpy(a) for a in self.run(crops.flip(-1)))
                idx = torch.as_tensor(list(self.keypoints.flip_index))
                kf = kf.index_select(1, idx)
                kf[..., 0] = (self.input_size[1] - 1.0) - kf[..., 0]
                k, s = (k + kf) * 0.5, (s + sf.index_select(1, idx)) * 0.5
            return k.float().to(dev), s.float().to(dev)
        out = self._raw(crops)
        if flip:
            flipped = self.codec.flip_back(self._raw(crops.flip(-1)), self.keypoints.flip_index)
            out = self.codec.merge_flip(out, flipped)
        kpts, scores = self.codec.decode(out)
        return kpts.float().to(dev), scores.float().to(dev)

    def _raw(self, crops: torch.Tensor):
        outs = [torch.from_numpy(a) for a in self.run(crops)]
        return tuple(outs) if len(outs) > 1 else outs[0]


def load_onnx_model(path: str | Path, expected_model: str | None = None,
                    device: torch.device | str = "cpu") -> OnnxPoseModel:
    """Load an exported ``.onnx`` pose model (see :class:`OnnxPoseModel` for errors)."""
    return OnnxPoseModel(path, device=device, expected_model=expected_model)

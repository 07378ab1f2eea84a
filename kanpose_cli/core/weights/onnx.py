"""ONNX as a runtime backend of :class:`~kanpose_cli.core.models.registry.PoseModel` (``--weights model.onnx``).

An exported file (``kanpose export``) is loaded into the *same* pose-model class as a PyTorch checkpoint: its model
card (:mod:`kanpose_cli.core.weights.card`) names the registered model, config and codec, and only the network is
replaced by :class:`OnnxNet`, an ``nn.Module`` that runs an onnxruntime session. Normalisation, the flip test and
decoding are therefore :class:`PoseModel`'s own code. Files with raw outputs are decoded by the model's codec, so
keypoints match PyTorch to float rounding; files exported with ``--decode`` output keypoints and get the
``decoded`` codec (:mod:`kanpose_cli.core.codecs.decoded`), whose flip test averages keypoints after mirroring.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from kanpose_cli.core.errors import DeviceError, WeightsError
from kanpose_cli.core.models.inference import cpu_micro_batch
from kanpose_cli.core.models.registry import PoseModel
from kanpose_cli.core.paths import keep_third_party_files_in_cache
from kanpose_cli.core.weights.card import META_KEY, ModelCard, read_model_card
from kanpose_cli.core.weights.checkpoint import check_expected_model, model_around_exported_net


def import_onnxruntime():
    """``onnxruntime``, imported after :func:`~kanpose_cli.core.paths.keep_third_party_files_in_cache` (so that it
    writes nothing outside the kanpose cache)."""
    keep_third_party_files_in_cache()
    import onnxruntime

    return onnxruntime


def onnx_providers(device: torch.device | str) -> list[str]:
    """onnxruntime providers for a torch device: CPU -> ``[CPUExecutionProvider]``; CUDA -> CUDA then CPU.

    Raises:
        DeviceError: CUDA asked for but onnxruntime has no ``CUDAExecutionProvider`` (onnxruntime-gpu missing).
    """
    ort = import_onnxruntime()

    dev = torch.device(device)
    if dev.type == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise DeviceError(f"--device {device}: onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                          f"(available: {', '.join(available)}); install onnxruntime-gpu or use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxNet(nn.Module):
    """An onnxruntime session as the network of a :class:`PoseModel`.

    Forward: (B, 3, H, W) normalised crops (any float dtype, any device) -> the file's outputs as float32 tensors
    on the input's device: one tensor, or a tuple when the file has several outputs.

    Args:
        path: the ``.onnx`` file. device: ``cpu`` or ``cuda[:N]``, which picks the execution provider (no silent
            CPU fallback for CUDA). decode_in_graph: the file outputs ``(keypoints, scores)``.

    On CPU a large batch runs in micro-batches by the same rule as the PyTorch inference copy
    (:func:`~kanpose_cli.core.models.inference.cpu_micro_batch`, from the ``sample_bytes`` a kanpose export stores:
    the largest intermediate of one crop); measured 8–11 % more images/s for the 256×192 and 384×288 AMFACPose
    models at batch 8 (``docs/benchmarks.md``). Files without it run whole batches.

    Attributes:
        provider: the execution provider onnxruntime actually uses. backend: ``onnxruntime <provider>``.
        sample_bytes: see above (0: unknown).
        supports_half: False (the graph is fp32; :meth:`PoseModel.half` refuses).

    Raises:
        WeightsError: onnxruntime cannot load the file. DeviceError: see :func:`onnx_providers`; CUDA asked for but
            onnxruntime fell back to another provider.
    """

    supports_half = False

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", decode_in_graph: bool = False):
        super().__init__()
        ort = import_onnxruntime()

        self.path, self.device, self.decode_in_graph = Path(path), torch.device(device), bool(decode_in_graph)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        providers = onnx_providers(self.device)
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise WeightsError(f"onnxruntime cannot load {self.path}: {exc}") from None
        self.provider = self.session.get_providers()[0]
        if self.device.type == "cuda" and self.provider != "CUDAExecutionProvider":
            raise DeviceError(f"onnxruntime fell back to {self.provider} for {self.path.name}; CUDA not usable")
        self.input_name = self.session.get_inputs()[0].name
        self.sample_bytes = _sample_bytes(self.session)

    @property
    def backend(self) -> str:
        """``"onnxruntime <execution provider>"``, e.g. ``onnxruntime CPUExecutionProvider``."""
        return f"onnxruntime {self.provider}"

    def forward(self, x: torch.Tensor):
        """(B, 3, H, W) normalised crops -> the exported graph's outputs as tensors on ``x``'s device (one tensor, or
        a tuple such as SimCC's ``(x_logits, y_logits)``); computed in fp32 by onnxruntime."""
        arr = x.detach().float().cpu().numpy()
        step = cpu_micro_batch(len(arr), self.sample_bytes) if self.device.type == "cpu" else None
        if step is None:
            outs = self.session.run(None, {self.input_name: arr})
        else:  # large crops: micro-batches, as the torch path does (measured +8-11 % on onnxruntime too)
            parts = [self.session.run(None, {self.input_name: arr[i:i + step]}) for i in range(0, len(arr), step)]
            outs = [np.concatenate(p) for p in zip(*parts)]
        tensors = tuple(torch.from_numpy(o).to(x.device) for o in outs)
        return tensors if len(tensors) > 1 else tensors[0]


def _sample_bytes(session) -> int:
    """``sample_bytes`` from a kanpose file's metadata (largest intermediate of one crop); 0 if absent."""
    try:
        meta = json.loads(session.get_modelmeta().custom_metadata_map.get(META_KEY, "{}"))
        return int(meta.get("sample_bytes") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0


def load_onnx_model(path: str | Path, expected_model: str | None = None, device: torch.device | str = "cpu",
                    card: ModelCard | None = None) -> PoseModel:
    """An exported ``.onnx`` pose model as a :class:`PoseModel` run by onnxruntime (module docstring).

    Args:
        path: the file. expected_model: if given, the file must hold this registered model.
        device: ``cpu`` or ``cuda[:N]``. card: the file's card if already read.

    Returns:
        The model in eval mode; ``weights_label`` is ``<file> via onnxruntime <provider>``.

    Raises:
        WeightsError: unreadable file, no kanpose metadata, another model than ``expected_model``, a model or
            keypoint set this kanpose does not know. DeviceError: see :class:`OnnxNet`.
    """
    path = Path(path)
    card = card or read_model_card(path)
    check_expected_model(path, card, expected_model)
    net = OnnxNet(path, device, decode_in_graph=card.decode)
    return model_around_exported_net(path, card, net, net.backend)

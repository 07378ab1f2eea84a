"""TorchScript files written by ``kanpose export --format torchscript`` as a runtime of
:class:`~kanpose_cli.core.models.registry.PoseModel` (``--weights model.torchscript.pt``).

The export (:func:`kanpose_cli.core.export.exporter.export_torchscript`) traces the network on CPU in fp32 and stores
the model card JSON (:mod:`kanpose_cli.core.weights.card`: model name, config, input size, keypoints, codec; plus the
export's ``decode`` flag and output names) as the archive's extra file ``kanpose.json``. The card is read straight
from the zip archive (nothing is deserialised), so ``--model`` is not needed. As with ONNX files, only the network is
replaced (by :class:`TorchScriptNet`): normalisation, the flip test and decoding stay :class:`PoseModel`'s own code,
and ``--decode`` files get the ``decoded`` codec. Loading runs ``torch.jit.load``, which executes the file's
TorchScript code (not Python): load only files you trust, as with any exported model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from kanpose_cli.core.errors import DeviceError, WeightsError
from kanpose_cli.core.models.registry import PoseModel
from kanpose_cli.core.weights.card import ModelCard, read_model_card, torchscript_card_json
from kanpose_cli.core.weights.checkpoint import check_expected_model, model_around_exported_net

def is_kanpose_torchscript(path: str | Path) -> bool:
    """True for a TorchScript file written by ``kanpose export`` (a zip archive with ``extra/kanpose.json``)."""
    path = Path(path)
    return path.is_file() and torchscript_card_json(path) is not None


class TorchScriptNet(nn.Module):
    """A traced TorchScript module as the network of a :class:`PoseModel`.

    Forward: (B, 3, H, W) normalised crops, float32 -> the traced outputs (one tensor, or a tuple such as SimCC's
    ``(x_logits, y_logits)``, or ``(keypoints (B, K, 2) crop pixels, scores (B, K))`` for ``--decode`` files).

    Attributes:
        backend: ``"torchscript"`` (so the inference preparation leaves it as traced). supports_half: False (the
            trace is fp32).

    Raises:
        WeightsError: ``torch.jit.load`` cannot read the file.
    """

    supports_half = False
    backend = "torchscript"

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated (FutureWarning) but still its loader
                self.module = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - the TorchScript loader raises many types
            raise WeightsError(f"cannot load TorchScript file {self.path.name}: {type(exc).__name__}: {exc}") from None
        self.module.eval()

    def forward(self, x: torch.Tensor):
        out = self.module(x.float())
        if isinstance(out, (tuple, list)):
            return tuple(out) if len(out) > 1 else out[0]
        return out


def load_torchscript_model(path: str | Path, expected_model: str | None = None, device: torch.device | str = "cpu",
                           card: ModelCard | None = None) -> PoseModel:
    """A ``kanpose export`` TorchScript file as a :class:`PoseModel` (module docstring).

    Args:
        path: the ``.torchscript.pt`` file. expected_model: if given, the file must hold this registered model.
        device: ``cpu`` (the export is traced on CPU). card: the file's card if already read.

    Returns:
        The model in eval mode; ``weights_label`` is ``<file> via torchscript``.

    Raises:
        WeightsError: unreadable file, no kanpose metadata, another model than ``expected_model``, a model or
            keypoint set this kanpose does not know. DeviceError: a device other than CPU.
    """
    path = Path(path)
    if torch.device(device).type != "cpu":
        raise DeviceError(f"{path.name} is a TorchScript export traced on CPU; run it with --device cpu, or use the "
                          f".safetensors checkpoint (or an .onnx export) on {device}")
    card = card or read_model_card(path)
    check_expected_model(path, card, expected_model)
    return model_around_exported_net(path, card, TorchScriptNet(path), "torchscript")

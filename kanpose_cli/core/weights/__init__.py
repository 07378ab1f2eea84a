"""Model files in one place: checkpoint I/O, the model card, foreign-format conversion, published weights from the
Hugging Face Hub, and ONNX files as a runtime backend.

- :mod:`~kanpose_cli.core.weights.card`: :class:`ModelCard`, read the same way from ``.safetensors`` and ``.onnx``.
- :mod:`~kanpose_cli.core.weights.checkpoint`: :func:`save_checkpoint`, :func:`load_checkpoint`, safe tensor reading.
- :mod:`~kanpose_cli.core.weights.convert`: official / Hugging Face / ViTPose+ (mixture of experts) -> our keys.
- :mod:`~kanpose_cli.core.weights.hub`: ``--weights hub`` and ``hf://`` download, verify, convert once, reuse.
- :mod:`~kanpose_cli.core.weights.onnx`: onnxruntime behind the same :class:`PoseModel`.
- :mod:`~kanpose_cli.core.weights.loader`: :func:`load_pose_model` (the entry point) and :func:`init_weights`.

Layering: this package sits above :mod:`kanpose_cli.core.models` (which declares published weights as plain data)
and below :mod:`kanpose_cli.core.export`, :mod:`kanpose_cli.core.inference` and the other task packages. Importing
it loads no torch-heavy optional dependency (onnx, onnxruntime and huggingface_hub are imported when used).
"""

from kanpose_cli.core.weights.card import ModelCard, read_model_card
from kanpose_cli.core.weights.checkpoint import load_checkpoint, save_checkpoint
from kanpose_cli.core.weights.loader import (
    DEFAULT_MODEL,
    RANDOM,
    RANDOM_LABEL,
    SHIPPED,
    InitReport,
    init_weights,
    load_pose_model,
    resolve_init,
    resolve_weights_path,
    shipped_files,
)

__all__ = ["DEFAULT_MODEL", "RANDOM", "RANDOM_LABEL", "SHIPPED", "InitReport", "ModelCard", "init_weights",
           "load_checkpoint", "load_pose_model", "read_model_card", "resolve_init", "resolve_weights_path",
           "save_checkpoint", "shipped_files"]

"""Device selection with clear errors (ultralytics ``select_device`` style).

``auto`` (every command's default) is CUDA device 0 when ``torch.cuda.is_available()``, else the CPU. An explicit
``cuda`` / ``cuda:N`` never falls back: it is an error when CUDA is missing. Apple MPS is not supported (the models
and the ONNX backend are not tested on it), so ``auto`` never picks it.
"""

from __future__ import annotations

import os

import torch

from kanpose_cli.core.errors import DeviceError
from kanpose_cli.core.text import plural


def select_device(device: str = "cpu", half: bool = False) -> torch.device:
    """Parse ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``N`` into a torch device (``auto``: ``cuda:0`` when CUDA
    is available, else ``cpu``).

    Raises:
        DeviceError: CUDA asked for but unavailable (says what was seen), index out of range, or ``half`` on CPU.
    """
    spec = str(device).strip().lower()
    if spec.isdigit():
        spec = f"cuda:{spec}"
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec not in ("cpu", "cuda") and not spec.startswith("cuda:"):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            extra = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
            raise DeviceError(f"--device {device} asked for CUDA, but torch.cuda.is_available() is False "
                              f"(torch {torch.__version__}, {plural(torch.cuda.device_count(), 'GPU')}{extra}); "
                              f"use --device cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: only {plural(torch.cuda.device_count(), 'CUDA device')} visible")
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if half and dev.type != "cuda":
        raise DeviceError("--half (FP16) needs a CUDA device; drop --half or use --device cuda")
    return dev

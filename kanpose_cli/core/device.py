"""Device selection with clear errors (ultralytics ``select_device`` style): never silently falls back."""

from __future__ import annotations

import os

import torch

from kanpose_cli.core.errors import DeviceError


def select_device(device: str = "cpu", half: bool = False) -> torch.device:
    """Parse ``cpu``, ``cuda``, ``cuda:N`` or ``N`` into a torch device.

    Raises:
        DeviceError: CUDA asked for but unavailable (says what was seen), index out of range, or ``half`` on CPU.
    """
    spec = str(device).strip().lower()
    if spec.isdigit():
        spec = f"cuda:{spec}"
    if spec not in ("cpu", "cuda") and not spec.startswith("cuda:"):
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            extra = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
            raise DeviceError(f"--device {device} asked for CUDA, but torch.cuda.is_available() is False "
                              f"(torch {torch.__version__}, {torch.cuda.device_count()} GPUs{extra}); use --device cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if half and dev.type != "cuda":
        raise DeviceError("--half (FP16) needs a CUDA device; drop --half or use --device cuda")
    return dev

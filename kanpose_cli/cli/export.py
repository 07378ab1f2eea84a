"""``kanpose export``: ONNX / TorchScript (/ TensorRT) files with embedded metadata and an automatic parity check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, print_table
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import DeviceOpt, ModelOpt, WeightsOpt

EPILOG = (
    "Examples:  kanpose export --model vitpose-s --weights random  ·  kanpose export -w best.safetensors "
    "--decode --out model.onnx  ·  kanpose export -w best.safetensors --format onnx,torchscript --image people.jpg"
)


@handle_errors
def export(
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    formats: Annotated[str, typer.Option("--format", "-f", help="onnx, torchscript, engine (TensorRT; needs "
                                         "tensorrt and CUDA), comma-separated.")] = "onnx",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output file (.onnx) or folder; default: next to the weights file, else "
        "exports/<model>.<ext>.")] = None,
    decode: Annotated[bool, typer.Option(
        "--decode/--raw", help="Put the decode in the graph: outputs keypoints (B, K, 2) crop pixels + scores (B, K) "
        "instead of raw network outputs.")] = False,
    opset: Annotated[int, typer.Option("--opset", min=11, help="ONNX opset.")] = 17,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Parity check vs PyTorch on real crops.")] = True,
    coco: Annotated[Optional[Path], typer.Option(
        "--coco", help="COCO folder (annotations/person_keypoints_val2017.json + val2017/) whose GT boxes give the "
        "parity crops (default: YOLO boxes on ultralytics' sample photo bus.jpg).")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Image whose YOLO person boxes give the parity "
                                                  "crops (instead of --coco).")] = None,
    n_crops: Annotated[int, typer.Option("--crops", min=1, help="Number of parity crops.")] = 8,
    tol: Annotated[float, typer.Option("--tol", min=0.0, help="Max decoded-keypoint difference (crop pixels) "
                                       "for the parity check to pass.")] = 0.01,
    device: DeviceOpt = "auto",
):
    """Export a pose model to ONNX (dynamic batch, metadata inside) / TorchScript (traced on CPU, metadata inside)
    and check it against PyTorch. predict, eval and label run both files with --weights FILE (no --model needed).

    The parity check runs the file with onnxruntime (CPU) and the model with PyTorch (CPU, fp32) on the same real
    person crops and prints the max abs difference of the raw outputs and of the decoded keypoints in pixels.
    Exit code 1 if it fails.
    """
    from kanpose_cli.core.device import select_device
    from kanpose_cli.core.export import exporter as E
    from kanpose_cli.core.weights import load_pose_model
    from kanpose_cli.core.errors import UsageError
    from kanpose_cli.core.io import check_writable

    if out is not None:  # before anything is loaded (exit 3)
        check_writable(out.parent if out.suffix.lower() in (".onnx", ".pt", ".engine", ".ts") else out, "--out")
    dev = select_device(device)
    fmts = E.resolve_formats(formats)
    if weights is not None and weights.lower().endswith((".onnx", ".torchscript.pt")):
        raise UsageError("--weights is already an exported file; export from a .safetensors checkpoint or 'random'")
    if verify and coco is not None and image is not None:
        raise UsageError("give either --coco or --image for the parity crops, not both")
    pose = load_pose_model(model, weights, "cpu")
    pose = pose.float().eval()
    if out is None:  # next to a weights file, else exports/<model>
        wpath = Path(weights).expanduser() if weights not in (None, "random") else None
        base = wpath.with_suffix("") if wpath is not None and wpath.is_file() else Path("exports") / pose.name
    elif out.suffix.lower() in (".onnx", ".pt", ".engine", ".ts"):
        base = out.with_suffix("")
        if base.suffix == ".torchscript":
            base = base.with_suffix("")
    else:
        base = out / pose.name
    explicit_file = out is not None and out.suffix.lower() in (".onnx", ".pt", ".engine", ".ts")
    check_writable(base.parent, "the export folder")
    suffix = "-decode" if decode and not explicit_file else ""
    console.print(f"[bold]kanpose export[/] · {pose.name} ({pose.weights_label}) · {', '.join(fmts)} · "
                  f"device {dev} · outputs {'keypoints+scores (decode in graph)' if decode else 'raw network outputs'}")
    crops = None
    if verify:
        crops, crops_desc = E.parity_crops(pose, coco, image, n=n_crops)
    written: list[Path] = []
    reports = []
    onnx_path = None
    for fmt in fmts:
        if fmt == "onnx" or (fmt == "engine" and onnx_path is None):
            onnx_path = E.export_onnx(pose, f"{base}{suffix}.onnx", decode=decode, opset=opset)
            if fmt == "onnx":
                written.append(onnx_path)
                size = onnx_path.stat().st_size / 1e6
                console.print(f"ONNX saved as {onnx_path} ({size:.1f} MB, opset {opset}, dynamic batch, metadata "
                              f"embedded)")
                if crops is not None:
                    reports.append(("onnx", E.check_onnx_parity(pose, onnx_path, crops, tol_px=tol)))
        if fmt == "torchscript":
            p = E.export_torchscript(pose, f"{base}{suffix}.torchscript.pt", decode=decode)
            written.append(p)
            console.print(f"TorchScript saved as {p} ({p.stat().st_size / 1e6:.1f} MB)")
            if crops is not None:
                reports.append(("torchscript", E.check_torchscript_parity(pose, p, crops, tol_px=tol)))
        if fmt == "engine":
            why = E.tensorrt_status(dev)
            if why is not None:
                console.print(f"[yellow]TensorRT engine skipped:[/] {why}")
            else:
                p = E.export_tensorrt(onnx_path, f"{base}{suffix}.engine", input_size=pose.input_size)
                written.append(p)
                console.print(f"TensorRT engine saved as {p} (parity not checked here)")
    if reports:
        from rich.table import Table

        t = Table(title=f"parity vs PyTorch (CPU fp32) on {crops_desc}")
        for col in ["format", "backend", "max |Δ raw|", "max |Δ keypoints| px", "max |Δ score|", "status"]:
            t.add_column(col, justify="left" if col in ("format", "backend", "status") else "right")
        for fmt, r in reports:
            t.add_row(fmt, r.backend, "n/a (decode in graph)" if r.raw_max_abs is None else f"{r.raw_max_abs:.2e}",
                      f"{r.kpt_max_px:.2e}", f"{r.score_max_abs:.2e}", "ok" if r.ok else f"FAIL (> {r.tol_px} px)")
        print_table(t)
        bad = [fmt for fmt, r in reports if not r.ok]
        if bad:
            raise fail(f"parity check failed for {', '.join(bad)}: decoded keypoints differ by more than {tol} px", 1)
    for p in written:
        if p.suffix != ".engine":  # predict/eval load .onnx and .torchscript.pt exports (the card is inside)
            console.print(f"run it: kanpose predict IMAGE --weights {p}", soft_wrap=True)

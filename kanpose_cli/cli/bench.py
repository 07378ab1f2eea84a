"""``kanpose bench``: model-only and end-to-end speed of the registered pose models and their peers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, print_table, stdout
from kanpose_cli.cli.errors import handle_errors
from kanpose_cli.cli.options import DeviceOpt
from kanpose_cli.core.text import plural

EPILOG = (
    "Examples:  kanpose bench --quick  ·  kanpose bench --models 'vitpose-*' --batch 1,8  ·  "
    "kanpose bench --device cuda --precision fp32,fp16,bf16 --batch 1,8,32,64 --out runs/bench  ·  "
    "kanpose bench --images ../shared/data/coco-mini/val2017 --max-images 20"
)


def _fmt(v, spec: str = ".1f", scale: float = 1.0) -> str:
    if v is None:
        return "–"
    return format(v * scale if scale != 1.0 else v, spec)


@handle_errors
def bench(
    models: Annotated[Optional[str], typer.Option(
        "--models", help="Comma-separated model names or patterns ('vitpose-*'); default: all registered.",
        rich_help_panel="Models")] = None,
    device: DeviceOpt = "auto",
    batch: Annotated[Optional[str], typer.Option(
        "--batch", help="Batch sizes of the model-only sweep; default 1,8 on CPU, 1,8,32,64 on CUDA (an "
        "out-of-memory batch is reported and larger ones skipped).", rich_help_panel="Performance")] = None,
    precision: Annotated[Optional[str], typer.Option(
        "--precision", help="fp32, fp16, bf16 (comma-separated; fp16 needs CUDA, bf16 CUDA or a CPU with "
        "AVX-512 BF16 / AMX, timed as a network cast to bf16). Default: fp32 on CPU, fp32,fp16,bf16 on CUDA.",
        rich_help_panel="Performance")] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.",
                                                rich_help_panel="Performance")] = False,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Also time every kanpose network as built (impl kanpose-plain), interleaved with the "
        "inference copy predict runs (impl kanpose: BatchNorm folded into the convs, CPU micro-batches).",
        rich_help_panel="Performance")] = False,
    onnxruntime: Annotated[bool, typer.Option(
        "--onnxruntime", help="Also time every kanpose network exported to ONNX and run by onnxruntime (impl "
        "onnxruntime; CPU fp32; what predict's --backend auto runs on CPU), interleaved with the others, and end "
        "to end a kanpose-onnxruntime row per model.", rich_help_panel="Performance")] = False,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the networks (slow first call).",
                                           rich_help_panel="Performance")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads (torch.set_num_threads); "
                                                   "default: torch's current value.",
                                                   rich_help_panel="Performance")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", min=0, help="Untimed iterations per row.",
                                                  rich_help_panel="Timing")] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", min=1, help="Timed iterations per row (max).",
                                                 rich_help_panel="Timing")] = None,
    max_time: Annotated[Optional[float], typer.Option("--max-time", min=0.0,
                                                      help="Seconds per row after which timing stops (≥ 3 iters).",
                                                      rich_help_panel="Timing")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Few iterations, batch 1 and 2, one image (tests/CI).",
                                        rich_help_panel="Timing")] = False,
    images: Annotated[Optional[Path], typer.Option(
        "--images", help="Image folder (or file) for the end-to-end rows; default: ultralytics' two sample images.",
        rich_help_panel="End to end")] = None,
    max_images: Annotated[int, typer.Option("--max-images", min=1, help="Use at most this many images.",
                                            rich_help_panel="End to end")] = 20,
    e2e: Annotated[bool, typer.Option("--e2e/--no-e2e", help="Run the end-to-end (detector + pose) rows.",
                                      rich_help_panel="End to end")] = True,
    detector: Annotated[Optional[str], typer.Option(
        "--detector", help="YOLO weights for the end-to-end rows and the one-stage peer (default yolo11n-pose.pt), "
        "or none (whole image as one person).", rich_help_panel="End to end", show_default=False)] = None,
    peers: Annotated[bool, typer.Option("--peers/--no-peers", help="Also measure transformers VitPose (same "
                                        "weights as vitpose-s/-b) and ultralytics YOLO11n-pose.",
                                        rich_help_panel="Models")] = True,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write bench.json and bench.csv into this folder.",
                                                rich_help_panel="Output")] = None,
):
    """Benchmark pose models: params, GMACs, latency p50/p90, throughput, utilisation; end to end with the detector.

    Model-only rows time the network forward on random pre-normalised crops already on the device (no decode).
    End-to-end rows time detector + crops + pose + decode per in-memory image. GMACs = multiply-accumulates
    (papers' "GFLOPs"); utilisation = 2·MACs/s ÷ device peak (measured fp32 matmul on CPU, datasheet on GPU).
    """
    from kanpose_cli.core.benchmark import benchmark as B  # lazy: keep `--help` fast
    from kanpose_cli.core.io import check_writable

    if out is not None:
        check_writable(out, "--out")  # before any timing (exit 3)
    names = B.resolve_models(models)
    settings = B.make_settings(device, batch, precision, channels_last, compile_, threads, warmup, iters, max_time,
                               quick, plain, onnxruntime)
    dev, batches, precisions = settings.device, settings.batches, settings.precisions
    warning = B.busy_warning(settings)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")
    imgs, desc = (B.load_images(images, 1 if quick else max_images) if e2e else (None, ""))
    console.print(f"[bold]kanpose bench[/] · {plural(len(names), 'model')} · device {dev} · "
                  f"threads {settings.threads} · batches {','.join(map(str, batches))} · {','.join(precisions)}"
                  f"{' · channels-last' if channels_last else ''}{' · compile' if compile_ else ''}"
                  f"{' · quick' if quick else ''}{' · plain too' if plain else ''}"
                  f"{' · onnxruntime too' if onnxruntime else ''}"
                  + (f" · end to end on {desc}" if imgs else " · no end-to-end"))

    def on_row(r):
        if r.section == "model":
            console.print(f"  {r.model:<24} {r.impl:<12} {r.precision} b{r.batch:<3} "
                          + (f"p50 {_fmt(r.p50_ms)} ms  {_fmt(r.throughput)} img/s" if r.status == "ok" else r.status),
                          highlight=False)
        else:
            console.print(f"  e2e {r.model:<20} {r.impl:<13} "
                          + (f"{_fmt(r.images_per_s, '.2f')} img/s  {_fmt(r.persons_per_s, '.2f')} persons/s"
                             if r.status == "ok" else r.status), highlight=False)

    result = B.run_benchmark(names, settings, imgs, desc, peers=peers, detector=detector, on_row=on_row,
                             on_stage=lambda s: console.print(f"[dim]{s} …[/]"))
    render(result)
    if out is not None:
        j, c = B.write_results(result, out)
        console.print(f"results written to {j} and {c}")


def render(result) -> None:
    """Print the settings, model-only and end-to-end tables (rich) to stdout."""
    from rich.table import Table

    env, s = result.env, result.settings
    head = Table(title="kanpose bench · settings", show_header=False)
    head.add_column("key", style="bold")
    head.add_column("value")
    peak = env.get("peak_tflops", {})
    for k, v in [("device", f"{env['device_name']} ({env['device']})"), ("threads", env["threads"]),
                 ("date", env["date"]), ("versions", f"kanpose {env['kanpose']} · torch {env['torch']} · "
                  f"onnxruntime {env['onnxruntime']} · transformers {env['transformers']} · "
                  f"ultralytics {env['ultralytics']}"),
                 ("precision / batches", f"{','.join(s['precisions'])} / {','.join(map(str, s['batches']))}"),
                 ("timing", f"warm-up {s['warmup']}, ≤ {s['iters']} iters or {s['max_seconds']} s per row, "
                  f"channels-last {s['channels_last']}, compile {s['compile']}, flip test off"),
                 ("peak", ", ".join(f"{k} {v:.3f} TFLOP/s" for k, v in peak.items() if v) + f" ({env['peak_source']})"),
                 ("model-only timed", "network forward on random normalised crops on the device; no decode"),
                 ("end-to-end timed", f"person boxes + crops + pose + decode per in-memory image "
                  f"({s.get('images', 'not run')}); kanpose-loop rows: the predict loop on the image files "
                  f"(background decoding, chunks of 8 images, no writing)")]:
        head.add_row(str(k), str(v))
    print_table(head)
    t = Table(title="model-only (GMACs = multiply-accumulates; IQR = interquartile range of the repeated timings; "
                    "util = achieved FLOP/s ÷ the highest rate measured, ≤ 100 %)")
    for col in ["model", "impl", "prec", "batch", "params M", "GMACs", "p50 ms", "p90 ms", "IQR ms", "img/s",
                "TFLOP/s", "util %", "status"]:
        t.add_column(col, justify="left" if col in ("model", "impl", "status", "prec") else "right")
    for r in result.rows:
        if r.section != "model":
            continue
        t.add_row(r.model, r.impl, r.precision, str(r.batch), _fmt(r.params, ".2f", 1e-6), _fmt(r.gmacs, ".2f"),
                  _fmt(r.p50_ms), _fmt(r.p90_ms), _fmt(r.iqr_ms), _fmt(r.throughput), _fmt(r.tflops, ".3f"),
                  _fmt(r.util, ".1f", 100),
                  r.status if r.status == "ok" else f"{r.status}: {r.note[:40]}")
    print_table(t)
    e2e_rows = [r for r in result.rows if r.section == "e2e"]
    if e2e_rows:
        t = Table(title="end to end (detector + pose, per image, fp32, batch ≤ 32 crops; stages in ms per image, "
                        "decode in a background thread)")
        for col in ["pipeline", "impl", "images", "persons", "ms/image", "images/s", "persons/s", "decode", "wait",
                    "detect", "pose", "status"]:
            t.add_column(col, justify="left" if col in ("pipeline", "impl", "status") else "right")
        for r in e2e_rows:
            t.add_row(r.model, r.impl, _fmt(r.images, "d"), _fmt(r.persons, "d"), _fmt(r.ms_per_image),
                      _fmt(r.images_per_s, ".2f"), _fmt(r.persons_per_s, ".2f"), _fmt(r.decode_ms),
                      _fmt(r.wait_ms), _fmt(r.detect_ms), _fmt(r.pose_ms),
                      r.status if r.status == "ok" else f"{r.status}: {r.note[:40]}")
        print_table(t)
    for n in result.notes:
        stdout.print(f"note: {n}", soft_wrap=True)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)

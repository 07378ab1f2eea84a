"""``kanpose predict SOURCE``: detect people and estimate their poses in images, folders, globs, videos, webcams."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, frame_reporter, make_progress
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import BatchOpt, ConfOpt, DetectorOpt, DeviceOpt, HalfOpt, ModelOpt, WeightsOpt

EPILOG = (
    "Examples:  kanpose predict --demo  ·  kanpose predict image.jpg --weights random  ·  "
    "kanpose predict photos/ --save-coco  ·  "
    "kanpose predict 'clips/*.mp4' --detector none  ·  kanpose predict 0 --show"
)


@handle_errors
def predict(
    source: Annotated[Optional[str], typer.Argument(
        help="Image, folder, glob (quoted), video file, or webcam index.", show_default=False)] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Use the sample photos that ship with ultralytics (bus.jpg, zidane.jpg) as SOURCE.")] = False,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    detector: DetectorOpt = "yolo11n-pose.pt",
    boxes: Annotated[Optional[Path], typer.Option(
        "--boxes", help="COCO detection-results JSON to take person boxes from (instead of the detector).",
        rich_help_panel="Detector")] = None,
    conf: ConfOpt = 0.25,
    iou: Annotated[float, typer.Option("--iou", min=0.0, max=1.0, help="Detector NMS IoU.",
                                       rich_help_panel="Detector")] = 0.7,
    det_imgsz: Annotated[int, typer.Option("--det-imgsz", min=32, help="Detector input size.",
                                           rich_help_panel="Detector")] = 640,
    device: DeviceOpt = "cpu",
    half: HalfOpt = False,
    batch: BatchOpt = 32,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test (2× pose compute).",
                                       rich_help_panel="Model")] = False,
    kpt_thr: Annotated[float, typer.Option("--kpt-thr", min=0.0, max=1.0,
                                           help="Keypoints below this score are not drawn and are null in JSON.",
                                           rich_help_panel="Output")] = 0.3,
    save_dir: Annotated[Path, typer.Option("--save-dir", help="Parent of the auto-numbered run folder (exp1, exp2…).",
                                           rich_help_panel="Output")] = Path("runs/predict"),
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write annotated images/videos.",
                                       rich_help_panel="Output")] = True,
    save_json: Annotated[bool, typer.Option("--save-json/--no-save-json",
                                            help="Write one JSON per image (JSON Lines per video).",
                                            rich_help_panel="Output")] = True,
    save_coco: Annotated[bool, typer.Option("--save-coco", help="Also write one COCO keypoint-results JSON.",
                                            rich_help_panel="Output")] = False,
    show: Annotated[bool, typer.Option("--show", help="Show results in a window (needs a display).",
                                       rich_help_panel="Output")] = False,
):
    """Detect people and estimate their 2-D keypoints (COCO-17) in images, folders, videos or a webcam."""
    from kanpose_cli.core.data.sources import demo_source, open_source  # lazy: keep `--help` fast
    from kanpose_cli.core.data.writers import PredictionWriter
    from kanpose_cli.core.detect.base import BoxFileDetector, WholeImageDetector
    from kanpose_cli.core.device import select_device
    from kanpose_cli.core.engine.pipeline import TopDownPipeline
    from kanpose_cli.core.engine.predictor import display_available, run_predict
    from kanpose_cli.core.engine.weights import RANDOM_LABEL, load_pose_model
    from kanpose_cli.core.io import next_run_dir

    dev = select_device(device, half)
    if (source is None) == (not demo):
        raise fail("give either SOURCE or --demo" if demo else "missing SOURCE (an image, folder, glob, video or "
                   "webcam index); try kanpose predict --demo", 2)
    src = demo_source() if demo else open_source(source)
    pose = load_pose_model(model, weights, dev)
    if boxes is not None:
        det = BoxFileDetector(boxes, score_thr=conf)
    elif detector.lower() == "none":
        det = WholeImageDetector()
    else:
        from kanpose_cli.core.detect.yolo import YoloPersonDetector

        det = YoloPersonDetector(detector, conf=conf, iou=iou, imgsz=det_imgsz, device=str(dev), half=half)
    if show and not display_available():
        console.print("[yellow]warning:[/] --show ignored: no display (DISPLAY is not set)")
        show = False
    run_dir = next_run_dir(save_dir)  # created with the first output file: a run that writes nothing leaves none
    random_weights = pose.weights_label == RANDOM_LABEL
    kset = pose.keypoints
    header = {"model": pose.name, "weights": pose.weights_label, "detector": det.name, "flip_test": flip,
              "keypoint_names": list(kset.names), "skeleton": [list(p) for p in kset.skeleton]}
    writer = PredictionWriter(run_dir, header, kpt_thr=kpt_thr, save_images=save, save_json=save_json,
                              save_coco=save_coco, label=RANDOM_LABEL if random_weights else None)
    pipeline = TopDownPipeline(pose, dev, half=half, flip=flip, batch_size=batch)
    console.print(f"[bold]kanpose predict[/] · {src.description} · model {pose.name} ({pose.weights_label}) · "
                  f"detector {det.name} · device {dev}{' fp16' if half else ''} · flip {'on' if flip else 'off'}")
    if random_weights:
        console.print("[yellow]warning:[/] random weights: the keypoints are meaningless (for tests and benchmarks)")
    with make_progress() as progress:
        report = frame_reporter(progress, progress.add_task("predict", total=src.total(), info=""))

        def on_frame(frame, result):
            report(frame, None if result is None else len(result))

        summary = run_predict(src, det, pipeline, writer, on_frame=on_frame, show=show)
    what = "frames" if src.is_stream else "images"
    where = f"results in {run_dir}" if run_dir.created else "no output written"
    console.print(f"{summary.frames} {what}, {summary.persons} persons, {summary.ms_per_frame:.1f} ms per "
                  f"{what[:-1]} · skipped {len(summary.skipped)} · {where}")
    if summary.interrupted:
        raise fail(f"interrupted; finished outputs kept in {run_dir}" if run_dir.created else "interrupted", 130)
    if summary.skipped:
        if summary.frames == 0 or src.kind == "image":
            raise fail(summary.skipped[0][1] if len(summary.skipped) == 1 else
                       f"none of the {len(summary.skipped)} inputs could be read", 1)
        raise fail(f"{len(summary.skipped)} of {summary.frames + len(summary.skipped)} {what} could not be read "
                   f"and were skipped", 1)

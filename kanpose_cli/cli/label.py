"""``kanpose label SOURCE``: pseudo-label unlabelled images with a teacher into a COCO keypoint JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, frame_reporter, make_progress
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import BatchOpt, ConfOpt, DetectorOpt, DeviceOpt, ModelOpt, WeightsOpt

EPILOG = (
    "Examples:  kanpose label unlabeled/ --teacher yolo:yolo11n-pose.pt --out pseudo.json  ·  "
    "kanpose label unlabeled/ --model amfacpose-r18-256x192 --kpt-thr 0.3 --out pseudo.json  ·  "
    "then: kanpose train --train-ann pseudo.json --train-images unlabeled/"
)


@handle_errors
def label(
    source: Annotated[str, typer.Argument(help="Folder, glob (quoted) or image of unlabelled images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="COCO keypoint JSON to write.",
                                      rich_help_panel="Output")] = Path("pseudo_labels.json"),
    teacher: Annotated[Optional[str], typer.Option(
        "--teacher", help="yolo:NAME for an ultralytics pose model run end to end (e.g. yolo:yolo11n-pose.pt); "
        "default: the kanpose --model/--weights with --detector.", rich_help_panel="Model")] = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    detector: DetectorOpt = "yolo11n-pose.pt",
    conf: ConfOpt = 0.25,
    box_thr: Annotated[float, typer.Option("--box-thr", min=0.0, max=1.0,
                                           help="Keep persons whose box score is at least this.",
                                           rich_help_panel="Labels")] = 0.5,
    kpt_thr: Annotated[float, typer.Option("--kpt-thr", min=0.0, max=1.0,
                                           help="Keypoints scoring at least this are labelled (v=2), others v=0.",
                                           rich_help_panel="Labels")] = 0.5,
    min_kpts: Annotated[int, typer.Option("--min-kpts", min=1,
                                          help="Drop persons with fewer labelled keypoints.",
                                          rich_help_panel="Labels")] = 1,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test for kanpose teachers.",
                                       rich_help_panel="Model")] = True,
    device: DeviceOpt = "cpu",
    batch: BatchOpt = 32,
):
    """Pseudo-label images with a teacher (kanpose model + detector, or a YOLO pose model) into COCO keypoints."""
    from kanpose_cli.core.data.sources import open_source
    from kanpose_cli.core.device import select_device
    from kanpose_cli.core.engine.labeler import PipelineTeacher, YoloTeacher, label_images
    from kanpose_cli.core.io import write_json_atomic

    dev = select_device(device)
    src = open_source(source)
    if src.is_stream or src.kind == "video":
        raise fail("label needs images (a folder, glob or image), not a video or webcam", 2)
    root = Path(source).expanduser() if Path(source).expanduser().is_dir() else None
    if teacher is not None:
        if not teacher.startswith("yolo:") or len(teacher) <= 5:
            raise fail(f"--teacher {teacher!r}: expected yolo:NAME (e.g. yolo:yolo11n-pose.pt); for kanpose "
                       f"models use --model/--weights", 2)
        if model is not None or weights is not None:
            raise fail("--teacher yolo:... cannot be combined with --model/--weights", 2)
        from kanpose_cli.core.detect.yolo import YoloPoseEstimator

        t = YoloTeacher(YoloPoseEstimator(teacher[5:], conf=min(conf, box_thr), device=str(dev)))
    else:
        from kanpose_cli.core.detect.yolo import YoloPersonDetector
        from kanpose_cli.core.engine.pipeline import TopDownPipeline
        from kanpose_cli.core.engine.weights import load_pose_model

        pose = load_pose_model(model, weights, dev)
        det = YoloPersonDetector(detector, conf=min(conf, box_thr), device=str(dev))
        t = PipelineTeacher(det, TopDownPipeline(pose, dev, flip=flip, batch_size=batch))
    console.print(f"[bold]kanpose label[/] · {src.description} · teacher {t.name} · box ≥ {box_thr} · "
                  f"keypoints ≥ {kpt_thr}")
    with make_progress() as progress:
        on_frame = frame_reporter(progress, progress.add_task("label", total=src.total(), info=""))
        coco, summary = label_images(src, t, root, box_thr=box_thr, kpt_thr=kpt_thr, min_keypoints=min_kpts,
                                     on_frame=on_frame)
    if summary.images == 0:  # nothing to write: leave no empty label file behind
        raise fail(f"none of the {summary.skipped} images could be read; {out} not written", 1)
    write_json_atomic(out, coco)
    console.print(f"{summary.images} images, {summary.persons} persons, {summary.keypoints} keypoints labelled · "
                  f"skipped {summary.skipped} · written {out}")

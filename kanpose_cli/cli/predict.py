"""``kanpose predict SOURCE``: detect people and estimate their poses in images, folders, globs, videos, webcams,
URLs (images and streams);
on video, optionally track them (stable ids), smooth their keypoints and export the tracks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, frame_reporter, make_progress
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import BackendOpt, BatchOpt, BoxesHelp, ConfOpt, DetectorOpt, DeviceOpt, HalfOpt, \
    ModelOpt, WeightsOpt
from kanpose_cli.core.text import plural

EPILOG = (
    "Examples:  kanpose predict --demo  ·  kanpose predict image.jpg --weights random  ·  "
    "kanpose predict photos/ --save-coco  ·  kanpose predict clip.mp4 --track --smooth --save-tracks  ·  "
    "kanpose predict clip.mp4 --track --det-every 3  ·  "
    "kanpose predict 'crops/*.jpg' --detector none  ·  kanpose predict 0 --show  ·  "
    "kanpose predict https://ultralytics.com/images/bus.jpg  ·  kanpose predict rtsp://camera.local/live --track"
)


@handle_errors
def predict(
    source: Annotated[Optional[str], typer.Argument(
        help="Image, folder, glob (quoted), video file, webcam index, or URL: an image (https://…/img.jpg, read "
        "into memory) or a stream (rtsp://…, http(s)://…).", show_default=False)] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Use the sample photos that ship with ultralytics (bus.jpg, zidane.jpg) as SOURCE.")] = False,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    detector: DetectorOpt = None,
    boxes: Annotated[Optional[str], typer.Option("--boxes", help=BoxesHelp + " Default: detector.",
                                                 rich_help_panel="Detector", show_default=False)] = None,
    conf: ConfOpt = 0.25,
    iou: Annotated[float, typer.Option("--iou", min=0.0, max=1.0, help="Detector NMS IoU.",
                                       rich_help_panel="Detector")] = 0.7,
    det_imgsz: Annotated[int, typer.Option("--det-imgsz", min=32, help="Detector input size.",
                                           rich_help_panel="Detector")] = 640,
    track: Annotated[bool, typer.Option(
        "--track", help="Video/webcam: give every person a track_id that persists across frames (ultralytics' "
        "ByteTrack or BoT-SORT); only tracked persons are reported.", rich_help_panel="Tracking")] = False,
    tracker: Annotated[str, typer.Option("--tracker", help="bytetrack or botsort.",
                                         rich_help_panel="Tracking")] = "bytetrack",
    smooth: Annotated[bool, typer.Option(
        "--smooth", help="One-Euro filter (Casiez et al., CHI 2012) on each track's keypoints: a still person's "
        "keypoints stop jittering. Needs --track.", rich_help_panel="Tracking")] = False,
    min_cutoff: Annotated[float, typer.Option(
        "--min-cutoff", help="One-Euro minimum cutoff frequency, Hz: lower = smoother when "
        "still, more lag.", rich_help_panel="Tracking")] = 1.0,
    beta: Annotated[float, typer.Option(
        "--beta", min=0.0, help="One-Euro speed coefficient, 1/pixel (Hz per pixel/s): higher = less lag in fast "
        "motion.", rich_help_panel="Tracking")] = 0.01,
    d_cutoff: Annotated[float, typer.Option(
        "--d-cutoff", help="One-Euro cutoff frequency of the speed estimate, Hz.",
        rich_help_panel="Tracking")] = 1.0,
    det_every: Annotated[int, typer.Option(
        "--det-every", min=1, help="With --track: run the person detector on every N-th frame only (0, N, 2N, …); "
        "the frames in between reuse each tracked person's box, moved with their pose in the frame before. "
        "New people are found at the next detector frame. 1 = every frame.", rich_help_panel="Tracking")] = 1,
    device: DeviceOpt = "auto",
    half: HalfOpt = False,
    backend: BackendOpt = "auto",
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
    save_tracks: Annotated[bool, typer.Option(
        "--save-tracks", help="With --track: also write tracks.csv (frame, time_s, track_id, keypoint, x, y, score).",
        rich_help_panel="Output")] = False,
    show: Annotated[bool, typer.Option("--show", help="Show results in a window (needs a display).",
                                       rich_help_panel="Output")] = False,
):
    """Detect people and estimate their 2-D keypoints (COCO-17) in images, folders, videos or a webcam.

    Under ``torchrun --nproc-per-node N -m kanpose_cli predict ...`` the images are split between the N processes
    (one GPU each, or CPU processes); all write into one run folder and rank 0 writes the merged COCO results.
    """
    from kanpose_cli.core.tasks import distributed
    from kanpose_cli.core.inference.estimator import PoseEstimator, make_track_options  # lazy: keep `--help` fast
    from kanpose_cli.core.tasks.predictor import display_available, make_writer, predict_source, run_predict
    from kanpose_cli.core.io import check_writable, next_run_dir

    src = predict_source(source, demo, track, det_every)  # an image with --track / --det-every: fails first
    if save or save_json or save_coco or save_tracks:
        check_writable(save_dir, "--save-dir")  # before any model runs (exit 3)
    tracking = make_track_options(track, tracker, smooth, min_cutoff, beta, d_cutoff, det_every)
    shard = distributed.start(device)
    if not shard.is_main:
        console.quiet = True  # rank 0 speaks for the job
    src = distributed.shard_source(src, shard)
    est = PoseEstimator(model, weights, detector, boxes, device=str(shard.device) if shard.distributed else device,
                        half=half, flip=flip, batch=batch, conf=conf, iou=iou, det_imgsz=det_imgsz, backend=backend)
    est.check_stream(src, tracking)  # --det-every with a yolo: model or boxes that are not the detector's
    if show and not display_available():
        console.print("[yellow]warning:[/] --show ignored: no display (DISPLAY is not set)")
        show = False
    # created with the first output file: a run that writes nothing leaves none (torchrun: rank 0 creates it)
    run_dir = distributed.shared_run_dir(next_run_dir(save_dir), shard)
    writer = make_writer(run_dir, est, kpt_thr=kpt_thr, save=save, save_json=save_json, save_coco=save_coco,
                         save_tracks=save_tracks, tracking=tracking, source=src, coco_file=not shard.distributed)
    ranks = f" · {plural(shard.world, 'process')}" if shard.distributed else ""
    console.print(f"[bold]kanpose predict[/] · {src.description}{ranks} · model {est.name} ({est.weights_label}) · "
                  f"boxes {est.boxes_label} · device {est.device}{' fp16' if half else ''} · backend {est.backend} · "
                  f"flip {'on' if est.flip else 'off'}" + (f" · tracker {tracking.describe()}" if tracking else ""))
    if est.random_weights:
        console.print("[yellow]warning:[/] random weights: the keypoints are meaningless (for tests and benchmarks)")
    with make_progress() as progress:
        report = frame_reporter(progress, progress.add_task("predict", total=src.total(), info=""))

        def on_frame(frame, result):
            report(frame, None if result is None else len(result))

        summary = run_predict(src, est, writer, on_frame=on_frame, show=show, tracking=tracking)
    stages = summary.stages  # this process's split (under torchrun: rank 0's)
    summary, written = distributed.merge_predictions(writer, summary, src, shard, run_dir)
    distributed.finish(shard)
    what = "frame" if src.is_stream else "image"
    where = f"results in {run_dir}" if written else "no output written"
    tracks = f"{plural(summary.tracks, 'track')}, " if tracking is not None else ""
    console.print(f"{plural(summary.frames, what)}, {plural(summary.persons, 'person')}, {tracks}"
                  f"{summary.ms_per_frame:.1f} ms per {what} · skipped {len(summary.skipped)} · {where}")
    split = stages.describe(what)
    if split:
        console.print(f"[dim]stages{' (rank 0)' if shard.distributed else ''}: {split}[/]")
    if summary.interrupted:
        raise fail(f"interrupted; finished outputs kept in {run_dir}" if written else "interrupted", 130)
    message = summary.failure(src)
    if message:
        raise fail(message, 1)

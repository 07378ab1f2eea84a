"""``kanpose label SOURCE``: pseudo-label unlabelled images with a teacher into a COCO keypoint JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, frame_reporter, make_progress
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import BackendOpt, BatchOpt, BoxesHelp, ConfOpt, DetectorOpt, DeviceOpt, ModelOpt, \
    WeightsOpt
from kanpose_cli.core.text import plural

EPILOG = (
    "Examples:  kanpose label unlabeled/ --teacher yolo:yolo11n-pose.pt --out pseudo.json  ·  "
    "kanpose label unlabeled/ --model amfacpose-r18-256x192 --kpt-thr 0.3 --out pseudo.json  ·  "
    "then: kanpose train --train-ann pseudo.json --train-images unlabeled/  ·  "
    "kanpose label lspet/images --fill lspet/joints.mat --teacher yolo:yolo11n-pose.pt --out lspet_filled.json  ·  "
    "kanpose label lspet/images --check-flips lspet/joints.mat --teacher yolo:yolo11n-pose.pt --out lspet_clean.json"
)


def _none_readable(n: int) -> str:
    """``the image could not be read`` / ``none of the N images could be read``."""
    return "the image could not be read" if n == 1 else f"none of the {n} images could be read"


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
    detector: DetectorOpt = None,
    boxes: Annotated[Optional[str], typer.Option("--boxes", help=BoxesHelp + " Default: detector.",
                                                 rich_help_panel="Detector", show_default=False)] = None,
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
    fill: Annotated[Optional[Path], typer.Option(
        "--fill", help="Teacher fill-in: a training set's annotations for the images in SOURCE (COCO .json or LSP "
        "joints.mat). Its people are kept with every ground-truth joint, and the joints it lacks (e.g. face points "
        "on LSP) are added from the matched teacher person where they score ≥ --kpt-thr.",
        rich_help_panel="Labels", show_default=False)] = None,
    match_oks: Annotated[float, typer.Option("--match-oks", min=0.0, max=1.0,
                                             help="--fill: minimum OKS between a person and the teacher's match.",
                                             rich_help_panel="Labels")] = 0.5,
    check_flips: Annotated[Optional[Path], typer.Option(
        "--check-flips", help="Left/right check: a training set's annotations for the images in SOURCE (COCO .json "
        "or LSP joints.mat). Each person's limb joints are compared with the matched teacher person's as labelled "
        "and left/right swapped; arms or legs that fit far better swapped are re-oriented (or the person dropped "
        "with --drop-swapped). Writes the cleaned set as COCO JSON to --out and a report. With --fill on the same "
        "file, the fill-in runs in the same teacher pass, after re-orientation.",
        rich_help_panel="Left/right check", show_default=False)] = None,
    flip_margin: Annotated[float, typer.Option("--flip-margin", min=0.0, max=1.0,
                                               help="--check-flips: swapped when OKS swapped ≥ OKS as labelled + "
                                               "this (per limb group).", rich_help_panel="Left/right check")] = 0.3,
    flip_conf: Annotated[float, typer.Option("--flip-conf", min=0.0, max=1.0,
                                             help="--check-flips: teacher score a joint needs to count.",
                                             rich_help_panel="Left/right check")] = 0.5,
    drop_swapped: Annotated[bool, typer.Option("--drop-swapped", help="--check-flips: drop swapped people instead "
                                               "of re-orienting them.", rich_help_panel="Left/right check")] = False,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="--check-flips: JSON report (counts, swapped people). Default: OUT with .flips.json.",
        rich_help_panel="Left/right check", show_default=False)] = None,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
):
    """Pseudo-label images with a teacher (kanpose model + detector, or a YOLO pose model) into COCO keypoints.

    Under ``torchrun --nproc-per-node N -m kanpose_cli label ...`` the images are split between the N processes;
    rank 0 writes the one label file, identical to a single-process run's.
    """
    from kanpose_cli.core.tasks import distributed
    from kanpose_cli.core.tasks.labeler import label_source, make_teacher, teacher_name
    from kanpose_cli.core.io import check_writable, write_json_atomic

    check_writable(Path(out).expanduser().parent, "the folder of --out")  # before the teacher runs (exit 3)
    if check_flips is not None:
        if fill is not None and Path(fill).expanduser().resolve() != Path(check_flips).expanduser().resolve():
            raise fail(f"--fill and --check-flips must name the same file to run in one pass, got {fill} and "
                       f"{check_flips}", 2)
        return _check_flips(source, check_flips, out, report, teacher, model, weights, detector, boxes, device,
                            flip, batch, conf, box_thr, kpt_thr, match_oks, backend, flip_margin, flip_conf,
                            drop_swapped, fill is not None)
    if fill is not None:
        return _fill(source, fill, out, teacher, model, weights, detector, boxes, device, flip, batch, conf, box_thr,
                     kpt_thr, match_oks, backend)
    src, root = label_source(source)
    shard = distributed.start(device)
    if not shard.is_main:
        console.quiet = True  # rank 0 speaks for the job
    src = distributed.shard_source(src, shard)
    est = make_teacher(teacher, model, weights, detector, boxes,
                       device=str(shard.device) if shard.distributed else device, flip=flip, batch=batch, conf=conf,
                       box_thr=box_thr, backend=backend)
    console.print(f"[bold]kanpose label[/] · {src.description} · teacher {teacher_name(est)} · device {est.device} · "
                  f"box ≥ {box_thr} · keypoints ≥ {kpt_thr}")
    with make_progress() as progress:
        on_frame = frame_reporter(progress, progress.add_task("label", total=src.total(), info=""))
        coco, summary = distributed.merge_labels(src, est, root, shard, on_frame=on_frame, box_thr=box_thr,
                                                 kpt_thr=kpt_thr, min_keypoints=min_kpts)
    if summary.images == 0:  # nothing to write: leave no empty label file behind
        distributed.finish(shard)
        raise fail(f"{_none_readable(summary.skipped)}; {out} not written", 1)
    if shard.is_main:
        write_json_atomic(out, coco)
    distributed.finish(shard)
    console.print(f"{plural(summary.images, 'image')}, {plural(summary.persons, 'person')}, "
                  f"{plural(summary.keypoints, 'keypoint')} labelled · "
                  f"skipped {summary.skipped} · written {out}")


def _fill(source, fill, out, teacher, model, weights, detector, boxes, device, flip, batch, conf, box_thr, kpt_thr,
          match_oks, backend) -> None:
    """``kanpose label IMAGES --fill ANN``: teacher fill-in of the joints a training set lacks (one process)."""
    from kanpose_cli.core.data.training_sets import DataSource, load_source
    from kanpose_cli.core.tasks.labeler import fill_missing_keypoints, make_teacher, teacher_name
    from kanpose_cli.core.io import write_json_atomic

    root = Path(source).expanduser()
    if not root.is_dir():
        raise fail(f"--fill needs SOURCE to be the images folder of {fill}, got {source}", 2)
    est = make_teacher(teacher, model, weights, detector, boxes, device=device, flip=flip, batch=batch, conf=conf,
                       box_thr=box_thr, backend=backend)
    instances = load_source(DataSource(str(fill), str(root)), est.keypoints)
    n_images = len({i.image_path for i in instances})
    console.print(f"[bold]kanpose label --fill[/] · {plural(len(instances), 'person')} in "
                  f"{plural(n_images, 'image')} of {fill} · "
                  f"teacher {teacher_name(est)} · device {est.device} · keypoints ≥ {kpt_thr} · "
                  f"match OKS ≥ {match_oks}")
    with make_progress() as progress:
        on_image = frame_reporter(progress, progress.add_task("fill", total=n_images, info=""))
        coco, summary = fill_missing_keypoints(instances, est, root, kpt_thr=kpt_thr, match_oks=match_oks,
                                               on_image=on_image)
    if summary.images == 0:
        raise fail(f"{_none_readable(summary.skipped)}; {out} not written", 1)
    write_json_atomic(out, coco)
    console.print(f"{plural(summary.images, 'image')}, {plural(summary.persons, 'person')}, "
                  f"{plural(summary.keypoints, 'joint')} filled by the "
                  f"teacher · skipped {summary.skipped} · written {out}")


def _check_flips(source, ann, out, report, teacher, model, weights, detector, boxes, device, flip, batch, conf,
                 box_thr, kpt_thr, match_oks, backend, margin, flip_conf, drop, fill) -> None:
    """``kanpose label IMAGES --check-flips ANN``: left/right label check, cleaned COCO JSON and report."""
    from kanpose_cli.core.data.training_sets import DataSource, load_source
    from kanpose_cli.core.io import check_writable, write_json_atomic
    from kanpose_cli.core.tasks.flip_check import check_flips, cleaned_coco, flip_report
    from kanpose_cli.core.tasks.labeler import make_teacher, teacher_name

    root = Path(source).expanduser()
    if not root.is_dir():
        raise fail(f"--check-flips needs SOURCE to be the images folder of {ann}, got {source}", 2)
    out = Path(out).expanduser()
    report = Path(report).expanduser() if report is not None else out.with_suffix(".flips.json")
    if out.resolve() == Path(ann).expanduser().resolve():
        raise fail(f"--out {out} is the input annotation file: write the cleaned set to another file", 2)
    check_writable(report.parent, "the folder of --report")
    src = DataSource(str(ann), str(root))
    est = make_teacher(teacher, model, weights, detector, boxes, device=device, flip=flip, batch=batch, conf=conf,
                       box_thr=box_thr, backend=backend)
    instances = load_source(src, est.keypoints)
    n_images = len({i.image_path for i in instances})
    console.print(f"[bold]kanpose label --check-flips[/] · {plural(len(instances), 'person')} in "
                  f"{plural(n_images, 'image')} of {ann} · teacher {teacher_name(est)} · device {est.device} · "
                  f"joints ≥ {flip_conf} · swapped at OKS + {margin} · match OKS ≥ {match_oks}"
                  + (f" · fill ≥ {kpt_thr}" if fill else ""))
    with make_progress() as progress:
        on_image = frame_reporter(progress, progress.add_task("check", total=n_images, info=""),
                                  "swapped person")
        checks, summary = check_flips(instances, est, conf_thr=flip_conf, margin=margin, match_oks=match_oks,
                                      fill=fill, kpt_thr=kpt_thr, on_image=on_image)
    if summary.images == 0:
        raise fail(f"{_none_readable(summary.skipped)}; {out} not written", 1)
    settings = {"annotations": str(ann), "images": str(root), "flip_margin": margin, "flip_conf": flip_conf,
                "match_oks": match_oks, "drop_swapped": drop, "fill": fill, "kpt_thr": kpt_thr}
    coco, summary.dropped = cleaned_coco(checks, src.format, ann, root, drop=drop, kset=est.keypoints,
                                         info={"flip_check": settings, "teacher": teacher_name(est)})
    write_json_atomic(out, coco)
    write_json_atomic(report, flip_report(checks, summary, est, settings))
    s = summary
    console.print(f"{plural(s.checked, 'person')} checked, {s.matched} matched, {s.clear} clear, "
                  f"{s.swapped} swapped (arms {s.arms_swapped} of {s.arms_clear}, legs {s.legs_swapped} of "
                  f"{s.legs_clear}) · " + (f"dropped {s.dropped}" if drop else f"re-oriented {s.swapped}")
                  + (f" · {plural(s.filled, 'joint')} filled" if fill else "")
                  + f" · skipped {s.skipped} · written {out}, {report}")

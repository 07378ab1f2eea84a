"""``kanpose eval coco``: COCO keypoint AP of a kanpose model (or the YOLO-pose peer) under the top-down protocol,
or of an existing results file; ``kanpose eval lsp|mpii|crowdpose|ochuman``: the benchmarks by name. Core logic:
:mod:`kanpose_cli.core.evaluation.evaluator` and :mod:`kanpose_cli.core.evaluation.benchmarks`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kanpose_cli.cli.console import console, make_progress, print_table, stdout
from kanpose_cli.cli.errors import fail, handle_errors
from kanpose_cli.cli.options import BackendOpt, BatchOpt, BoxesHelp, DeviceOpt, ModelOpt, WeightsOpt
from kanpose_cli.core.text import ap_text, plural

EPILOG = (
    "Examples:  kanpose eval coco --data ../shared/data/coco-mini --weights best.safetensors  ·  "
    "kanpose eval coco --data coco --boxes detector  ·  "
    "kanpose eval coco --ann ann.json --images imgs/ --boxes dets.json --box-thr 0.0  ·  "
    "kanpose eval coco --data coco --model yolo:yolo11n-pose.pt  ·  "
    "kanpose eval coco --data coco --results runs/eval/exp1/results.json"
)

eval_app = typer.Typer(name="eval", help="Evaluate pose models: COCO keypoint AP, and the LSP, MPII, CrowdPose and "
                       "OCHuman benchmarks with their own metrics.", no_args_is_help=True,
                       context_settings={"help_option_names": ["-h", "--help"]})

METRIC_ROWS = (("AP", ("AP", "AP50", "AP75", "APM", "APL")), ("AR", ("AR", "AR50", "AR75", "ARM", "ARL")))


def _print_settings(rows: dict) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows.items():
        grid.add_row(key, str(value))
    print_table(grid, console)


def _print_metrics(report: dict, title: str) -> None:
    from rich.table import Table

    stdout.print(f"[bold]{title}[/]", soft_wrap=True)
    table = Table()
    table.add_column("", style="bold")
    for head in ("all", "OKS .50", "OKS .75", "medium", "large"):
        table.add_column(head, justify="right")
    for label, keys in METRIC_ROWS:
        table.add_row(label, *(ap_text(report[k]) for k in keys))
    print_table(table)
    boot = report.get("bootstrap")
    if boot:
        low, high = boot["ci95"]
        stdout.print(f"AP {ap_text(boot['AP'])} · std {boot['std']:.4f} · 95 % interval {ap_text(low)}–"
                     f"{ap_text(high)} over images ({boot['resamples']} bootstrap resamples of "
                     f"{plural(boot['images'], 'image')})", soft_wrap=True)


def _setting(value) -> str:
    """A run setting for a warning line: flip on/off, a list of image ids by its length, else the value."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return plural(len(value), "image")
    return str(value)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "–"


def _analyze(coco_gt, results, run_dir, ids, skipped, images_dir) -> None:
    """Run the error analysis of one evaluation (core: :func:`analysis.analyze_run`) and print it."""
    from kanpose_cli.core.evaluation import analysis

    result, paths = analysis.analyze_run(coco_gt, results, run_dir, image_ids=ids, skipped_paths=skipped,
                                         images_dir=images_dir)
    _print_analysis(result.report)
    plots = ", ".join(p.name for k, p in paths.items() if k != "analysis")
    console.print(f"analysis in {paths['analysis']} · plots: {plots}"
                  + ("" if "worst_examples" in paths else " (no worst-examples grid: give the images folder)"))


def _print_analysis(report: dict) -> None:
    """Rich tables of ``analysis.json``: keypoint classes per size, detections, AP per correction, per keypoint."""
    from rich.table import Table

    from kanpose_cli.core.evaluation.analysis_types import CLASSES, SIZES, STEP_LABELS

    th, kp = report["thresholds"], report["keypoints"]
    table = Table(title=f"Keypoints of matched persons (OKS ≥ {th['match_oks']:g}): count (%)",
                  title_justify="left")
    table.add_column("class", style="bold")
    for size in SIZES:
        table.add_column(size, justify="right")
    for name in CLASSES:
        table.add_row(name, *(f"{kp[s][name]} ({_pct(kp[s][name], kp[s]['labelled'])})" for s in SIZES))
    table.add_row("labelled", *(str(kp[s]["labelled"]) for s in SIZES), style="dim")
    print_table(table)
    stdout.print(f"good: ks ≥ {th['good_ks']:g} · jitter: {th['proximity_ks']:g} ≤ ks < {th['good_ks']:g} · "
                 f"inversion / swap: ks < {th['proximity_ks']:g} but ≥ {th['proximity_ks']:g} to the mirrored keypoint"
                 f" / to another person · miss: none of these", style="dim", soft_wrap=True)

    det, per = report["detections"], report["persons"]
    grid = Table(title="Detections and persons", title_justify="left")
    grid.add_column("", style="bold")
    grid.add_column("count", justify="right")
    for label, value in (("detections evaluated (top 20 per image)", det["evaluated"]),
                         ("matched to a person (OKS ≥ 0.1)", det["matched"]),
                         ("background false positives", det["background_fp"]), ("duplicates", det["duplicate"]),
                         ("persons (non-crowd, labelled)", per["total"]), ("false negatives", per["false_negative"]),
                         ("scoring errors", report["scoring_errors"])):
        grid.add_row(label, str(value))
    print_table(grid)

    steps = Table(title="AP after correcting each error type: cumulative, and that type alone",
                  title_justify="left")
    steps.add_column("step", style="bold")
    for head in ("AP", "Δ AP", "alone", "Δ alone", "AP50", "AP75", "AP10", "AP(M)", "AP(L)"):
        steps.add_column(head, justify="right")
    base = report["ap_steps"][0]["AP"]
    prev, alone = None, {row["step"]: row["AP"] for row in report.get("ap_alone", [])}
    for row in report["ap_steps"]:
        cells = [ap_text(row[k]) for k in ("AP", "AP50", "AP75", "AP10", "APM", "APL")]
        delta = "" if prev is None else ap_text(row["AP"] - prev, signed=True)
        own = alone.get(row["step"])
        steps.add_row(STEP_LABELS[row["step"]], cells[0], delta, "" if own is None else ap_text(own),
                      "" if own is None else ap_text(own - base, signed=True), *cells[1:])
        prev = row["AP"]
    print_table(steps)

    per_kpt = Table(title="Per keypoint: count of each error (good in % of labelled)", title_justify="left")
    per_kpt.add_column("keypoint", style="bold")
    for head in ("labelled", "good %", "jitter", "inversion", "swap", "miss"):
        per_kpt.add_column(head, justify="right")
    for row in report["per_keypoint"]:
        per_kpt.add_row(row["keypoint"], str(row["labelled"]), _pct(row["good"], row["labelled"]),
                        *(str(row[c]) for c in ("jitter", "inversion", "swap", "miss")))
    print_table(per_kpt)


# ------------------------------------------------------------------- option checks and the settings rows (CLI glue)
def _resolve_data(data: Path | None, split: str, ann: Path | None, images: Path | None,
                  need_images: bool) -> tuple[Path, Path | None]:
    """``--data DIR`` (standard COCO layout) or ``--ann FILE --images DIR`` -> ``(annotation file, images folder)``.

    Raises:
        UsageError: both or neither given, a missing folder or file, no images folder when one is needed.
    """
    from kanpose_cli.core.data.coco import standard_layout
    from kanpose_cli.core.errors import UsageError

    if data is not None and (ann is not None or images is not None):
        raise UsageError("give either --data DIR or --ann FILE --images DIR, not both")
    if data is not None:
        if not Path(data).expanduser().is_dir():
            raise UsageError(f"--data: folder not found: {data}")
        ann, images = standard_layout(data, split)
        if not ann.is_file():
            raise UsageError(f"--data: {ann} not found (expected DIR/annotations/person_keypoints_{split}.json)")
    elif ann is None:
        raise UsageError("say which dataset: --data DIR (COCO layout) or --ann FILE --images DIR")
    elif not Path(ann).expanduser().is_file():
        raise UsageError(f"--ann: annotation file not found: {ann}")
    if need_images:
        if images is None:
            raise UsageError("--images DIR is needed with --ann (unless only scoring --results)")
        if not Path(images).expanduser().is_dir():
            raise UsageError(f"images folder not found: {images}")
    return Path(ann).expanduser(), Path(images).expanduser() if images is not None else None


def _select_images(ann_file: Path, image_ids: str | None, max_images: int | None):
    """Load the annotations and pick the images of ``--image-ids`` (comma list) and ``--max-images``.

    Returns:
        ``(CocoKeypointData, ids)``; ``ids`` None means every image of the file.

    Raises:
        UsageError: ids that are not integers. InputError: unreadable annotation file, ids not in it.
    """
    from kanpose_cli.core.data.coco import CocoKeypointData
    from kanpose_cli.core.errors import UsageError

    ids = None
    if image_ids is not None:
        try:
            ids = [int(t) for t in image_ids.replace(" ", "").split(",") if t]
        except ValueError:
            raise UsageError(f"--image-ids: expected comma-separated integers, got {image_ids!r}") from None
    dataset = CocoKeypointData(ann_file)
    if ids is not None or max_images is not None:
        return dataset, dataset.select(ids, max_images)
    return dataset, None


def _load_results_option(results: Path, model, weights, boxes) -> list[dict]:
    """``--results FILE`` (score an existing file): checked before anything runs.

    Raises:
        UsageError: combined with a model, weights or boxes; file missing. InputError: not COCO keypoint results.
    """
    from kanpose_cli.core.errors import UsageError
    from kanpose_cli.core.evaluation.coco_metric import load_results

    if model is not None or weights is not None or boxes is not None:
        raise UsageError("--results scores an existing file: leave out --model, --weights and --boxes")
    path = Path(results).expanduser()
    if not path.is_file():
        raise UsageError(f"--results: file not found: {results}")
    return load_results(path)


def _settings_rows(estimator, ann_file, n_images: int) -> dict:
    """The settings rows printed before the run (model, weights, boxes, flip, input, device, backend, data)."""
    from kanpose_cli.core.evaluation.evaluator import estimator_settings

    s = estimator_settings(estimator)
    size = "640 (letterbox)" if estimator.yolo is not None else "×".join(map(str, s["input_size"]))
    flip = "n/a (one-stage model)" if estimator.yolo is not None else ("on" if s["flip"] else "off")
    return {"model": s["model"], "weights": s["weights"], "boxes": s["boxes"], "flip": flip, "input size": size,
            "device": s["device"], "backend": estimator.backend, "data": f"{ann_file} ({plural(n_images, 'image')})"}


@handle_errors
def coco(
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="COCO folder: DIR/annotations/person_keypoints_<split>.json and DIR/<split>/.",
        rich_help_panel="Input")] = None,
    split: Annotated[str, typer.Option("--split", help="Split name for --data.", rich_help_panel="Input")] = "val2017",
    ann: Annotated[Optional[Path], typer.Option("--ann", help="Any COCO-format keypoint annotation JSON.",
                                                rich_help_panel="Input")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Images folder for --ann.",
                                                   rich_help_panel="Input")] = None,
    results: Annotated[Optional[Path], typer.Option(
        "--results", help="Only score this COCO keypoint-results JSON (no model is run).",
        rich_help_panel="Input")] = None,
    max_images: Annotated[Optional[int], typer.Option("--max-images", min=1,
                                                      help="Evaluate only the first N images (by id).",
                                                      rich_help_panel="Input")] = None,
    image_ids: Annotated[Optional[str], typer.Option("--image-ids", help="Evaluate only these ids (comma list).",
                                                     rich_help_panel="Input")] = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    boxes: Annotated[Optional[str], typer.Option(
        "--boxes", help=BoxesHelp + " Default: gt.", rich_help_panel="Boxes", show_default=False)] = None,
    box_thr: BoxFileThrOpt = 0.0,
    detector: Annotated[Optional[str], typer.Option(
        "--detector", help="YOLO weights for --boxes detector (default yolo11n-pose.pt), or none (whole image).",
        rich_help_panel="Boxes", show_default=False)] = None,
    det_conf: Annotated[float, typer.Option("--det-conf", min=0.0, max=1.0,
                                            help="Detector confidence for --boxes detector and yolo: models.",
                                            rich_help_panel="Boxes")] = 0.001,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test (standard protocol: on).",
                                       rich_help_panel="Model")] = True,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
    save_dir: Annotated[Path, typer.Option("--save-dir", help="Parent of the auto-numbered run folder.",
                                           rich_help_panel="Output")] = Path("runs/eval"),
    analyze: Annotated[bool, typer.Option(
        "--analyze", help="Also diagnose the errors (Ronchi & Perona 2017): jitter / inversion / swap / miss per "
        "keypoint and size, AP after correcting each error type, plots; writes analysis.json and PNGs.",
        rich_help_panel="Output")] = False,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", min=0, help="Also resample the evaluated images N times (with replacement, seed 0) and report "
        "AP's standard deviation and 95 % interval over images: how much of the figure is the choice of images. "
        "0: off.", rich_help_panel="Output")] = 0,
):
    """COCO keypoint AP (pycocotools) of a pose model, the YOLO-pose peer (--model yolo:NAME), or a results file.

    Protocol: boxes from --boxes, flip test, rescoring (box score × mean keypoint score > 0.2), OKS-NMS 0.9.
    Writes results.json and metrics.json (with the exact settings) to an auto-numbered folder.
    """
    from kanpose_cli.core.evaluation import evaluator  # lazy: keep `--help` fast
    from kanpose_cli.core.io import check_writable, next_run_dir

    ann_file, images_dir = _resolve_data(data, split, ann, images, need_images=results is None)
    check_writable(save_dir, "--save-dir")  # before any model runs (exit 3)
    dataset, ids = _select_images(ann_file, image_ids, max_images)  # fails before anything is printed
    n_images = len(ids) if ids is not None else len(dataset.image_ids)

    if results is not None:
        dets = _load_results_option(results, model, weights, boxes)
        _print_settings({"mode": "score existing results", "results": results, "annotations": ann_file,
                         "images": "all" if ids is None else len(ids)})
        run_dir = next_run_dir(save_dir)
        report = evaluator.score_existing(dataset, dets, results, run_dir, images_dir, ids, bootstrap=bootstrap)
        _print_metrics(report, f"COCO keypoints · {results.name} · {plural(report['num_results'], 'result')}")
        console.print(f"metrics in {run_dir / 'metrics.json'}")
        if analyze:
            _analyze(dataset.coco, dets, run_dir, ids, (), images_dir)
        return

    est = evaluator.make_estimator(model, weights, boxes, detector, dataset, device=device, flip=flip, batch=batch,
                                   det_conf=det_conf, box_thr=box_thr, backend=backend)
    if est.random_weights:
        console.print("[yellow]warning:[/] random weights: the AP is meaningless (for tests only)")
    run_dir = next_run_dir(save_dir)
    results_file = run_dir / "results.json"
    _print_settings(_settings_rows(est, ann_file, n_images))
    with make_progress() as progress:
        task = progress.add_task("eval", total=n_images, info="")

        def on_progress(done, total, message):
            if message:
                progress.console.print(f"[yellow]skipped[/] {message}")
            progress.update(task, completed=done, total=total)

        report = evaluator.evaluate(est, ann_file, images_dir, image_ids=ids, results_file=results_file,
                                    progress=on_progress, bootstrap=bootstrap)
    s = report["settings"]
    _print_metrics(report, f"COCO keypoints · {s['model']} · boxes {s['boxes']} · flip "
                           f"{'on' if s['flip'] else 'off'}")
    n_img = report["num_images"]
    console.print(f"{plural(n_img, 'image')}, {plural(report['num_results'], 'instance')} after OKS-NMS "
                  f"({report['instances_before_nms']} before), {1000 * report['seconds'] / max(n_img, 1):.0f} ms "
                  f"per image · skipped {report['num_skipped']} · results in {run_dir}")
    if analyze:
        _analyze(dataset.coco, report["results_file"], run_dir, ids, [x["path"] for x in report["skipped"]],
                 images_dir)
    if report["num_skipped"]:
        n = report["num_skipped"]
        raise fail(f"{plural(n, 'image')} could not be read and {'was' if n == 1 else 'were'} left out of the "
                   f"evaluation", 1)


eval_app.command("coco", epilog=EPILOG)(coco)


# ------------------------------------------------------------------------------ the benchmarks by name (lsp, mpii, ...)
SinglePersonBoxes = Annotated[str, typer.Option(
    "--boxes", help="gt: the annotated person's box (default); detector: the YOLO detector, the person nearest the "
    "annotated joints is scored (none found: every joint missed).", rich_help_panel="Boxes")]
DetConfOpt = Annotated[float, typer.Option("--det-conf", min=0.0, max=1.0, help="Detector confidence for --boxes "
                                           "detector.", rich_help_panel="Boxes")]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test (standard protocol: on).",
                                       rich_help_panel="Model")]
SaveDirOpt = Annotated[Path, typer.Option("--save-dir", help="Parent of the auto-numbered run folder.",
                                          rich_help_panel="Output")]
MaxImagesOpt = Annotated[Optional[int], typer.Option("--max-images", min=1, help="Evaluate only the first N.",
                                                     rich_help_panel="Input")]


def _run_with_progress(total: int, run):
    """``run(on_progress)`` under a progress bar that prints skip notices."""
    with make_progress() as progress:
        task = progress.add_task("eval", total=total, info="")

        def on_progress(done, n, message):
            if message:
                progress.console.print(f"[yellow]skipped[/] {message}")
            progress.update(task, completed=done, total=n)

        return run(on_progress)


def _value(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _print_joints(report: dict, metric: str, title: str) -> None:
    """The benchmark's figure, then one row per joint (PCK, labelled count), unscored joints marked."""
    from rich.table import Table

    stdout.print(f"[bold]{title}[/]", soft_wrap=True)
    table = Table()
    table.add_column("joint", style="bold")
    table.add_column(metric, justify="right")
    table.add_column("scored", justify="right")
    for name, value in report["per_joint"].items():
        scored = name in report["scored_joints"]
        table.add_row(name, _value(value) if scored else "not scored", str(report["joint_counts"][name]),
                      style=None if scored else "dim")
    label = "mean over joints" if metric.startswith("PCK@") else "all but pelvis, thorax"
    left_out = () if metric.startswith("PCK@") else ("pelvis", "thorax")
    count = sum(n for name, n in report["joint_counts"].items() if name not in left_out)
    table.add_row(label, _value(report[metric]), str(count), style="bold")
    print_table(table)
    if report["not_scored_joints"]:
        console.print(f"not scored (the model has no such keypoint): {', '.join(report['not_scored_joints'])}",
                      soft_wrap=True)


def _single_person(benchmark: str, persons, model, weights, boxes, detector, det_conf, flip, device, backend, batch,
                   save_dir, data_rows: dict, data_settings: dict) -> None:
    """Shared body of ``eval lsp`` and ``eval mpii`` (core: :func:`benchmarks.evaluate_single_person`)."""
    from kanpose_cli.core.evaluation import benchmarks

    est = benchmarks.make_single_person_estimator(model, weights, boxes, detector, device=device, flip=flip,
                                                  batch=batch, det_conf=det_conf, backend=backend)
    if est.random_weights:
        console.print("[yellow]warning:[/] random weights: the figure is meaningless (for tests only)")
    from kanpose_cli.core.io import next_run_dir

    run_dir = next_run_dir(save_dir)
    _print_settings({"model": est.name, "weights": est.weights_label, "boxes": boxes, "flip": "on" if flip else "off",
                     "device": str(est.device), "backend": est.backend, **data_rows})
    report = _run_with_progress(len(persons), lambda on_progress: benchmarks.evaluate_single_person(
        est, benchmark, persons, boxes, run_dir, on_progress, data_settings))
    metric = "PCK@0.2" if benchmark == "lsp" else "PCKh@0.5"
    _print_joints(report, metric, f"{benchmark.upper()} {metric} · {report['settings']['model']} · boxes {boxes} · "
                                  f"flip {'on' if flip else 'off'}")
    if benchmark == "mpii":
        stdout.print("  ".join(f"{g} {_value(v)}" for g, v in report["groups"].items())
                     + f"  ·  PCKh@0.1 {_value(report['PCKh@0.1'])}", soft_wrap=True)
    size = "torso" if benchmark == "lsp" else "head size"
    console.print(f"{plural(report['num_persons_scored'], 'person')} scored, {report['num_persons_not_scored']} not "
                  f"(no {size} or no box in the annotation), {report['num_missed']} missed by the detector · skipped "
                  f"{report['num_skipped']} · results in {run_dir}")
    if report["num_skipped"]:
        n = report["num_skipped"]
        raise fail(f"{plural(n, 'image')} could not be read and {'was' if n == 1 else 'were'} left out of the "
                   f"evaluation", 1)


BenchmarkDetectorOpt = Annotated[Optional[str], typer.Option(
    "--detector", help="YOLO weights for --boxes detector (default yolo11n-pose.pt).", rich_help_panel="Boxes",
    show_default=False)]
BoxFileThrOpt = Annotated[float, typer.Option("--box-thr", min=0.0, max=1.0, help="Minimum score of boxes from a "
                                              "--boxes FILE.", rich_help_panel="Boxes")]


@handle_errors
def lsp(
    data: Annotated[Path, typer.Option("--data", help="LSP or LSP-Extended folder: DIR/joints.mat and DIR/images/.",
                                       rich_help_panel="Input")],
    split: Annotated[Optional[str], typer.Option(
        "--split", help="test (default): images 1001-2000 of the original LSP (2000 images); train: 1-1000; all: "
        "every image.", rich_help_panel="Input", show_default=False)] = None,
    image_range: Annotated[Optional[str], typer.Option(
        "--range", help="Score images A-B instead (1-based, inclusive), e.g. a held-out block of LSP-Extended.",
        rich_help_panel="Input")] = None,
    max_images: MaxImagesOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    boxes: SinglePersonBoxes = "gt",
    detector: BenchmarkDetectorOpt = None,
    det_conf: DetConfOpt = 0.25,
    flip: FlipOpt = True,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
    save_dir: SaveDirOpt = Path("runs/eval"),
):
    """LSP PCK@0.2 with the torso as reference (DeepPose): overall (mean over joints) and per joint.

    A joint is correct within 0.2 × the distance from the annotation's left shoulder to its right hip; every labelled
    joint counts (LSP: all, occluded too; LSP-Extended: the visible ones). A COCO-17 model is scored on the 12 limb
    joints (LSP's neck and head top are not COCO keypoints). Writes metrics.json ("PCK@0.2", "per_joint") and
    predictions.json to an auto-numbered folder.
    """
    from kanpose_cli.core.evaluation import benchmarks
    from kanpose_cli.core.io import check_writable

    check_writable(save_dir, "--save-dir")
    persons, info = benchmarks.lsp_people(data, split, image_range, max_images)
    rows = {"data": f"{info['joints_file']} (images {info['first']}-{info['last']} of {info['num_in_file']})"}
    _single_person("lsp", persons, model, weights, boxes, detector, det_conf, flip, device, backend, batch,
                   save_dir, rows, {"data": info, "split": split, "range": image_range})


@handle_errors
def mpii(
    ann: Annotated[Path, typer.Option("--ann", help="mmpose MPII JSON (image, center, scale, joints, joints_vis).",
                                      rich_help_panel="Input")],
    images: Annotated[Path, typer.Option("--images", help="Images folder.", rich_help_panel="Input")],
    max_images: MaxImagesOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    boxes: SinglePersonBoxes = "gt",
    detector: BenchmarkDetectorOpt = None,
    det_conf: DetConfOpt = 0.25,
    flip: FlipOpt = True,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
    save_dir: SaveDirOpt = Path("runs/eval"),
):
    """MPII PCKh@0.5, the official figure: correct within half the head size, over all joints but pelvis, thorax.

    Head size: 0.6 × the head-box diagonal where an entry has "headbox" (official), else the annotated head segment
    (head top to upper neck; mmpose's JSON has no head boxes). Person box: mmpose's, from center and scale. A COCO-17
    model is scored on the 12 limb joints. Writes metrics.json ("PCKh@0.5", "per_joint", "groups") and
    predictions.json.
    """
    from kanpose_cli.core.evaluation import benchmarks
    from kanpose_cli.core.io import check_writable

    check_writable(save_dir, "--save-dir")
    persons = benchmarks.mpii_people(ann, images, max_images)
    rows = {"data": f"{ann} ({plural(len(persons), 'person')})"}
    _single_person("mpii", persons, model, weights, boxes, detector, det_conf, flip, device, backend, batch,
                   save_dir, rows, {"ann_file": str(ann), "images_dir": str(images)})


def _print_crowdpose(report: dict, title: str) -> None:
    from rich.table import Table

    stdout.print(f"[bold]{title}[/]", soft_wrap=True)
    table = Table()
    for head in ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP easy", "AP medium", "AP hard"):
        table.add_column(head, justify="right")
    table.add_row(*(ap_text(report[k]) for k in ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy",
                                                 "AP_medium", "AP_hard")))
    print_table(table)
    levels = report["images_per_level"]
    console.print(f"images per crowd level: easy {levels['easy']}, medium {levels['medium']}, hard {levels['hard']} "
                  f"(crowd index < 0.2, < 0.8, ≥ 0.8) · scored keypoints: {len(report['scored_keypoints'])}"
                  + (f" (not scored: {', '.join(report['not_scored_keypoints'])})"
                     if report["not_scored_keypoints"] else ""), soft_wrap=True)


@handle_errors
def crowdpose(
    ann: Annotated[Path, typer.Option("--ann", help="CrowdPose annotation JSON (COCO style, crowdIndex per image).",
                                      rich_help_panel="Input")],
    images: Annotated[Optional[Path], typer.Option("--images", help="Images folder (not needed with --results).",
                                                   rich_help_panel="Input")] = None,
    results: Annotated[Optional[Path], typer.Option(
        "--results", help="Only score this keypoint-results JSON: 14 keypoints (all) or 12 (the limb joints), "
        "CrowdPose order.", rich_help_panel="Input")] = None,
    max_images: MaxImagesOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    boxes: Annotated[Optional[str], typer.Option(
        "--boxes", help="gt (default), detector, or a COCO detection-results JSON (CrowdPose's published top-down "
        "numbers use its detections file).", rich_help_panel="Boxes", show_default=False)] = None,
    box_thr: BoxFileThrOpt = 0.0,
    detector: BenchmarkDetectorOpt = None,
    det_conf: Annotated[float, typer.Option("--det-conf", min=0.0, max=1.0, help="Detector confidence for --boxes "
                                            "detector.", rich_help_panel="Boxes")] = 0.001,
    flip: FlipOpt = True,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
    save_dir: SaveDirOpt = Path("runs/eval"),
):
    """CrowdPose AP, and AP easy / medium / hard by crowd index, as the official CrowdPose code (xtcocotools).

    OKS with CrowdPose's 14 sigmas and area 0.53 × box w × h; no area ranges; levels split at crowd index 0.2 and 0.8
    (the official code; the paper's text says 0.1). A COCO-17 model is scored on the 12 limb joints only: CrowdPose's
    head top and neck are not COCO keypoints, so the AP is over 12 keypoints (metrics.json lists them). Boxes,
    rescoring and OKS-NMS as eval coco. Writes results.json (the scored joints) and metrics.json.
    """
    from kanpose_cli.core.errors import UsageError
    from kanpose_cli.core.evaluation import benchmarks, evaluator
    from kanpose_cli.core.io import check_writable, next_run_dir

    check_writable(save_dir, "--save-dir")
    if results is None and images is None:
        raise UsageError("--images DIR is needed (unless only scoring --results)")
    dataset = benchmarks.open_crowdpose(ann, images if results is None else None)
    ids = dataset.select(None, max_images) if max_images else None
    if results is not None:
        _load_results_option(results, model, weights, boxes)
        run_dir = next_run_dir(save_dir)
        report = benchmarks.score_crowdpose_file(dataset, results, run_dir, ids)
        _print_crowdpose(report, f"CrowdPose · {results.name}")
        console.print(f"metrics in {run_dir / 'metrics.json'}")
        return
    est = evaluator.make_estimator(model, weights, boxes, detector, dataset, device=device, flip=flip, batch=batch,
                                   det_conf=det_conf, box_thr=box_thr, backend=backend)
    benchmarks.crowdpose_joints(est.keypoints)  # a model CrowdPose cannot score fails before it runs
    run_dir = next_run_dir(save_dir)
    n_images = len(ids) if ids is not None else len(dataset.image_ids)
    _print_settings(_settings_rows(est, ann, n_images))
    report = _run_with_progress(n_images, lambda on_progress: benchmarks.evaluate_crowdpose(
        est, dataset, ids, run_dir, on_progress))
    s = report["settings"]
    _print_crowdpose(report, f"CrowdPose · {s['model']} · boxes {s['boxes']} · flip {'on' if s['flip'] else 'off'}")
    console.print(f"{plural(report['num_images'], 'image')}, {plural(report['num_results'], 'instance')} · skipped "
                  f"{report['num_skipped']} · results in {run_dir}")
    if report["num_skipped"]:
        raise fail(f"{plural(report['num_skipped'], 'image')} could not be read and left out of the evaluation", 1)


@handle_errors
def ochuman(
    ann: Annotated[Path, typer.Option("--ann", help="OCHuman annotation JSON (COCO style, COCO-17 order).",
                                      rich_help_panel="Input")],
    images: Annotated[Path, typer.Option("--images", help="Images folder.", rich_help_panel="Input")],
    max_images: MaxImagesOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    boxes: Annotated[Optional[str], typer.Option(
        "--boxes", help=BoxesHelp + " Default: gt.", rich_help_panel="Boxes", show_default=False)] = None,
    box_thr: BoxFileThrOpt = 0.0,
    detector: BenchmarkDetectorOpt = None,
    det_conf: Annotated[float, typer.Option("--det-conf", min=0.0, max=1.0, help="Detector confidence for --boxes "
                                            "detector and yolo: models.", rich_help_panel="Boxes")] = 0.001,
    flip: FlipOpt = True,
    device: DeviceOpt = "auto",
    backend: BackendOpt = "auto",
    batch: BatchOpt = 32,
    save_dir: SaveDirOpt = Path("runs/eval"),
):
    """OCHuman (heavily occluded people) keypoint AP: COCO's OKS-AP with COCO's sigmas, eval coco's protocol.

    Writes results.json and metrics.json ("AP" and the other COCO stats).
    """
    from kanpose_cli.core.evaluation import benchmarks, evaluator
    from kanpose_cli.core.io import check_writable, next_run_dir

    check_writable(save_dir, "--save-dir")
    from kanpose_cli.core.data.coco import CocoKeypointData

    ann_file, images_dir = _resolve_data(None, "", ann, images, need_images=True)
    dataset = CocoKeypointData(ann_file, images_dir)
    ids = dataset.select(None, max_images) if max_images else None
    est = evaluator.make_estimator(model, weights, boxes, detector, dataset, device=device, flip=flip, batch=batch,
                                   det_conf=det_conf, box_thr=box_thr, backend=backend)
    run_dir = next_run_dir(save_dir)
    n_images = len(ids) if ids is not None else len(dataset.image_ids)
    _print_settings(_settings_rows(est, ann, n_images))
    report = _run_with_progress(n_images, lambda on_progress: benchmarks.evaluate_ochuman(
        est, dataset, ids, run_dir, on_progress))
    s = report["settings"]
    _print_metrics(report, f"OCHuman · {s['model']} · boxes {s['boxes']} · flip {'on' if s['flip'] else 'off'}")
    console.print(f"{plural(report['num_images'], 'image')}, {plural(report['num_results'], 'instance')} · skipped "
                  f"{report['num_skipped']} · results in {run_dir}")
    if report["num_skipped"]:
        raise fail(f"{plural(report['num_skipped'], 'image')} could not be read and left out of the evaluation", 1)


eval_app.command("lsp", epilog="Examples:  kanpose eval lsp --data lsp --split test  ·  "
                 "kanpose eval lsp --data ../shared/data/lspet --range 3001-4000")(lsp)
eval_app.command("mpii", epilog="Example:  kanpose eval mpii --ann mpii_val.json --images mpii/images")(mpii)
eval_app.command("crowdpose", epilog="Examples:  kanpose eval crowdpose --ann crowdpose_test.json --images images/  ·  "
                 "kanpose eval crowdpose --ann crowdpose_test.json --images images/ --boxes "
                 "crowdpose_det.json")(crowdpose)
eval_app.command("ochuman", epilog="Example:  kanpose eval ochuman --ann ochuman_val.json --images images/")(ochuman)


@handle_errors
def compare(
    run_a: Annotated[Path, typer.Argument(help="First evaluated run folder (metrics.json, analysis.json).")],
    run_b: Annotated[Path, typer.Argument(help="Second evaluated run folder.")],
    save_dir: Annotated[Path, typer.Option("--save-dir", help="Parent of the auto-numbered compareN folder.")] = Path(
        "runs/eval"),
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", min=0, help="Paired bootstrap over images of AP(B) − AP(A) with this many resamples "
        "(200: about 10 s for 874 images): the 95 % interval of the difference and how often B wins. 0: off."
    )] = 0,
):
    """Two evaluated runs side by side: COCO AP/AR, keypoint error breakdown and its change, AP after each
    correction, and both runs' precision–recall curves on one plot (compare.json, pr_compare.png).

    A run folder without analysis.json is analysed on the fly from its results file (nothing is written into it).
    With --bootstrap, both results files are rescored on the same resampled images (seed 0): whether B's AP is
    above A's beyond the choice of images (the runs must cover the same annotation file and images).
    """
    from rich.table import Table

    from kanpose_cli.core.evaluation import analysis
    from kanpose_cli.core.evaluation.analysis_types import STEP_LABELS

    runs = [analysis.load_run(run_a), analysis.load_run(run_b)]
    for run in runs:
        if run["computed"]:
            console.print(f"{run['dir']}: no analysis.json; analysed now from its results file")
    result = analysis.compare_runs(*runs)
    if bootstrap:
        if bootstrap < 2:
            raise fail("--bootstrap needs at least 2 resamples (200 is usual), or 0 for none", 2)
        result["paired_bootstrap"] = analysis.paired_bootstrap_runs(*runs, resamples=bootstrap)
    out = analysis.save_comparison(result, *runs, save_dir)
    label_a, label_b = result["runs"]
    for diff in result["setting_differences"]:  # AP of different box sources or flip settings is not like for like
        console.print(f"[yellow]warning:[/] the runs used different {diff['what']}: {label_a} {_setting(diff['a'])}, "
                      f"{label_b} {_setting(diff['b'])}; the differences below are not the models' alone",
                      soft_wrap=True)
    sections = (("COCO keypoints", result["metrics"], 1.0, "{:.3f}", "{:+.3f}"),
                ("Keypoints of matched persons (% of labelled)", result["keypoints"], 1.0, "{:.1f}", "{:+.1f}"),
                ("Detection errors (count)", {analysis.DETECTION_LABELS[k]: v for k, v in
                                              result["detections"].items()}, 1.0, "{:.0f}", "{:+.0f}"),
                ("AP after each cumulative correction", {STEP_LABELS[k]: v for k, v in
                                                         result["ap_steps"].items()}, 1.0, "{:.3f}", "{:+.3f}"))
    for title, rows, scale, fmt, dfmt in sections:
        table = Table(title=title, title_justify="left")
        table.add_column("", style="bold")
        for head in (label_a, label_b, "B − A"):
            table.add_column(head, justify="right")
        for name, (a, b, d) in rows.items():
            table.add_row(name, fmt.format(scale * a), fmt.format(scale * b), dfmt.format(scale * d))
        print_table(table)
    if bootstrap:
        pb = result["paired_bootstrap"]
        lo, hi = pb["ci95"]
        verdict = ("B above A beyond the image noise" if lo > 0 else "A above B beyond the image noise" if hi < 0
                   else "no difference beyond the image noise")
        console.print(f"AP B − A: {pb['delta']:+.4f}, 95 % interval {lo:+.4f} to {hi:+.4f} (paired bootstrap over "
                      f"{pb['images']} images, {pb['resamples']} resamples, seed {pb['seed']}); B higher in "
                      f"{100 * pb['b_better']:.1f} % of resamples: {verdict}", soft_wrap=True)
    console.print(f"comparison in {out['json']} · plot {out['plot']}")


eval_app.command("compare", epilog="Example:  kanpose eval compare runs/eval/exp1 runs/eval/exp2")(compare)

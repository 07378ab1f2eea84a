"""PNG plots of the keypoint error analysis (:mod:`kanpose_cli.core.evaluation.analysis`).

matplotlib's object API with the Agg canvas (``Figure`` + ``FigureCanvasAgg``): no pyplot state, no display, no
backend switch for the rest of the process. Every file is written atomically. Colours follow the paper's figures
(Ronchi & Perona, ICCV 2017).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation.analysis_types import (CLASSES, KEYPOINT_ERRORS, PR_OKS, SIZES, STEP_LABELS, STEPS,
                                                       UNLABELLED, Analysis, MatchDiagnosis)
from kanpose_cli.core.io import atomic_path
from kanpose_cli.core.paths import keep_third_party_files_in_cache

COLORS = {"good": "#1ED88B", "jitter": "#8C4646", "inversion": "#D96459", "swap": "#F2AE72", "miss": "#F2E394",
          "original": "#D9D9D9", "score": "#4F82BD", "background_fp": "#8063A3", "false_negative": "#2E8B57"}
MARKERS = {"good": "o", "jitter": "o", "inversion": "s", "swap": "D", "miss": "X"}
GT_COLOR = "#FFFFFF"
PRED_LINE = "#29B6F6"


def _figure(width: float, height: float):
    keep_third_party_files_in_cache()  # matplotlib's font cache goes to the kanpose cache, not ~/.cache
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def _curve(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return np.where(arr < 0, np.nan, arr)


def _ap(values) -> float:
    arr = np.asarray(values, dtype=float)
    arr = arr[arr > -1]
    return float(arr.mean()) if arr.size else float("nan")


def plot_pr_corrections(report: dict, path: str | Path) -> Path:
    """The paper's figure: precision–recall at OKS .75, .50 and .10 (one panel each, all person sizes), for the
    original detections and after each cumulative correction (miss, swap, inversion, jitter, scoring, background
    FP, false negatives). The area between consecutive curves (coloured) is the AP that correction gains; the
    legend gives the AP at that OKS after each step. A fourth panel shows the AP (OKS .50:.95) each correction gains,
    cumulatively and on its own.

    Args:
        report: ``Analysis.report`` (needs ``pr_curves``). path: output PNG.

    Returns:
        ``path``.
    """
    recall = np.asarray(report["pr_curves"]["recall"], dtype=float)
    fig = _figure(6.0 * len(PR_OKS) + 5.0, 5.6)
    grid = fig.add_gridspec(1, len(PR_OKS) + 1, width_ratios=(1.0,) * len(PR_OKS) + (0.85,), wspace=0.38)
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[i], sharey=axes[0]) for i in range(1, len(PR_OKS))]
    for ax, oks in zip(axes, PR_OKS, strict=True):
        curves = report["pr_curves"]["oks"][f"{oks:.2f}"]
        prev = np.zeros_like(recall)
        handles = []
        for step in STEPS:
            if step not in curves:
                continue
            cur = _curve(curves[step])
            fill = ax.fill_between(recall, np.nan_to_num(prev), np.nan_to_num(cur),
                                   where=np.nan_to_num(cur) >= np.nan_to_num(prev), color=COLORS[step],
                                   alpha=0.9, linewidth=0, interpolate=True, step=None,
                                   label=f"[{_ap(curves[step]):.3f}] {STEP_LABELS[step]}")
            ax.plot(recall, cur, color="black", linewidth=1.6 if step == "original" else 0.8)
            handles.append(fill)
            prev = np.fmax(np.nan_to_num(prev), np.nan_to_num(cur))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("recall")
        ax.set_title(f"OKS {oks:.2f}")
        ax.legend(handles=handles[::-1], loc="lower left", fontsize=8, title="AP at this OKS", title_fontsize=8,
                  framealpha=0.85)
    axes[0].set_ylabel("precision")
    _plot_ap_gains(fig.add_subplot(grid[len(PR_OKS)]), report)
    fig.suptitle("Precision–recall after correcting each error type (cumulative; Ronchi & Perona 2017)")
    return _save(fig, path)


def _plot_ap_gains(ax, report: dict) -> None:
    """AP (OKS .50:.95) gained by each correction: in the cumulative order, and with only that error corrected."""
    steps = [s["step"] for s in report["ap_steps"]]
    ap = {s["step"]: s["AP"] for s in report["ap_steps"]}
    alone = {s["step"]: s["AP"] for s in report.get("ap_alone", [])}
    names = steps[1:]
    y = np.arange(len(names))
    cum = [100 * (ap[s] - ap[steps[i]]) for i, s in enumerate(names)]
    own = [100 * (alone.get(s, ap[steps[0]]) - ap[steps[0]]) for s in names]
    ax.barh(y - 0.2, cum, height=0.4, color=[COLORS[s] for s in names], edgecolor="black", linewidth=0.5,
            label="cumulative")
    ax.barh(y + 0.2, own, height=0.4, color=[COLORS[s] for s in names], edgecolor="black", linewidth=0.5,
            hatch="//", alpha=0.6, label="this error alone")
    for yi, a, b in zip(y, cum, own, strict=True):
        ax.text(max(a, 0) + 0.3, yi - 0.2, f"{a:+.1f}", va="center", fontsize=7)
        ax.text(max(b, 0) + 0.3, yi + 0.2, f"{b:+.1f}", va="center", fontsize=7)
    short = {"background_fp": "bkg. FP", "false_negative": "false neg."}
    ax.set_yticks(y, [short.get(s, STEP_LABELS[s].lstrip("+ ")) for s in names])
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, min(cum + own)) - 1, max(1.0, max(cum + own)) * 1.2 + 2)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("AP gain, OKS .50:.95 (points)")
    ax.set_title("AP gained by each correction")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def plot_keypoint_errors(report: dict, path: str | Path) -> Path:
    """Error types per keypoint (left: share of each keypoint's labelled instances in matched persons that is
    jitter / inversion / swap / miss, percent, stacked) and per person size (right: every class, 100 % stacked).

    Args:
        report: ``Analysis.report`` (needs ``per_keypoint`` and ``keypoints``). path: output PNG.

    Returns:
        ``path``.
    """
    rows = report["per_keypoint"]
    fig = _figure(13.0, 6.0)
    grid = fig.add_gridspec(1, 2, width_ratios=(2.2, 1.0), wspace=0.35)
    ax = fig.add_subplot(grid[0])
    names = [r["keypoint"] for r in rows]
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for err in ("jitter", "inversion", "swap", "miss"):
        share = np.array([100.0 * r[err] / r["labelled"] if r["labelled"] else 0.0 for r in rows])
        ax.barh(y, share, left=left, color=COLORS[err], edgecolor="black", linewidth=0.4, label=err)
        left += share
    for yi, r, total in zip(y, rows, left, strict=True):
        ax.text(total + 0.5, yi, f"n={r['labelled']}", va="center", fontsize=7, color="#444444")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(10.0, float(left.max()) * 1.15 + 5))
    ax.set_xlabel("% of labelled keypoints of matched persons")
    ax.set_title("Keypoint errors per keypoint")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=4, fontsize=8, frameon=False)

    ax2 = fig.add_subplot(grid[1])
    sizes = [s for s in SIZES if report["keypoints"][s]["labelled"]] or list(SIZES)
    bottom = np.zeros(len(sizes))
    for c in CLASSES:
        share = np.array([100.0 * report["keypoints"][s][c] / report["keypoints"][s]["labelled"]
                          if report["keypoints"][s]["labelled"] else 0.0 for s in sizes])
        ax2.bar(sizes, share, bottom=bottom, color=COLORS[c], edgecolor="black", linewidth=0.4, label=c)
        bottom += share
    for xi, s in enumerate(sizes):
        ax2.text(xi, 101, f"n={report['keypoints'][s]['labelled']}", ha="center", fontsize=7, color="#444444")
    ax2.set_ylim(0, 108)
    ax2.set_ylabel("% of labelled keypoints")
    ax2.set_title("By person size")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), fontsize=7, ncol=3, frameon=False)
    return _save(fig, path)


def _crop_bounds(m: MatchDiagnosis, bbox, width: int, height: int) -> tuple[float, float, float, float]:
    lab = m.classes != UNLABELLED
    pts = [m.gt_xy[lab]]
    if bbox is not None:
        x, y, w, h = bbox
        pts.append(np.array([[x, y], [x + w, y + h]]))
    pred = m.pred_xy[lab]
    inside = (pred[:, 0] >= 0) & (pred[:, 0] < width) & (pred[:, 1] >= 0) & (pred[:, 1] < height)
    pts.append(pred[inside])
    allp = np.concatenate([p for p in pts if len(p)]) if any(len(p) for p in pts) else np.array([[0, 0]])
    x0, y0 = allp.min(0)
    x1, y1 = allp.max(0)
    pad = 0.15 * max(x1 - x0, y1 - y0, 20.0)
    return (max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(width), x1 + pad), min(float(height), y1 + pad))


def plot_worst_examples(analysis: Analysis, matches: list[MatchDiagnosis], coco_gt, images_dir: str | Path,
                        path: str | Path, ncols: int = 4) -> Path | None:
    """Grid of the worst matched detections (:func:`~kanpose_cli.core.evaluation.analysis.worst_matches`): the image
    crop around the person, the ground-truth skeleton (white), the predicted skeleton (light blue) with each
    predicted keypoint coloured by its class and a dashed line to where it should be, and the error counts,
    OKS and score written above.

    Args:
        analysis: the analysis (keypoint set). matches: the detections to show. coco_gt: the pycocotools ``COCO``
            (file names, boxes). images_dir: folder of the images. path: output PNG.

    Returns:
        ``path``, or None when there is nothing to show. An unreadable image leaves its cell with a note.
    """
    from kanpose_cli.core.data.sources import read_image

    if not matches:
        return None
    kset = analysis.keypoint_set
    n = len(matches)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.2 * ncols, 4.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).reshape(-1)
    for ax in axes[n:]:
        ax.axis("off")
    for ax, m in zip(axes[:n], matches, strict=True):
        ax.set_xticks([])
        ax.set_yticks([])
        info = coco_gt.imgs.get(m.image_id, {})
        errors = " · ".join(f"{e} {m.count(e)}" for e in KEYPOINT_ERRORS if m.count(e)) or "no keypoint error"
        ax.set_title(f"image {m.image_id} · OKS {m.oks:.2f} · score {m.score:.2f}\n{errors}", fontsize=8)
        try:
            image = read_image(Path(images_dir) / info.get("file_name", ""))
        except InputError as exc:
            ax.text(0.5, 0.5, f"image unreadable:\n{exc}", ha="center", va="center", fontsize=7, wrap=True,
                    transform=ax.transAxes)
            continue
        h, w = image.shape[:2]
        bbox = coco_gt.anns.get(m.gt_id, {}).get("bbox")
        x0, y0, x1, y1 = _crop_bounds(m, bbox, w, h)
        ix0, iy0, ix1, iy1 = int(x0), int(y0), max(int(math.ceil(x1)), int(x0) + 1), max(int(math.ceil(y1)),
                                                                                          int(y0) + 1)
        ax.imshow(image[iy0:iy1, ix0:ix1, ::-1], extent=(ix0, ix1, iy1, iy0))
        lab = m.classes != UNLABELLED
        for a, b in kset.skeleton:
            if lab[a] and lab[b]:
                ax.plot(m.gt_xy[[a, b], 0], m.gt_xy[[a, b], 1], color=GT_COLOR, linewidth=1.6, alpha=0.9)
                ax.plot(m.pred_xy[[a, b], 0], m.pred_xy[[a, b], 1], color=PRED_LINE, linewidth=1.0, alpha=0.9)
        ax.scatter(m.gt_xy[lab, 0], m.gt_xy[lab, 1], s=12, c=GT_COLOR, edgecolors="black", linewidths=0.5,
                   zorder=3)
        for k in np.flatnonzero(lab):
            cls = CLASSES[m.classes[k]]
            if cls != "good":
                ax.plot([m.pred_xy[k, 0], m.gt_xy[k, 0]], [m.pred_xy[k, 1], m.gt_xy[k, 1]], linestyle="--",
                        color=COLORS[cls], linewidth=1.0)
            ax.scatter([m.pred_xy[k, 0]], [m.pred_xy[k, 1]], s=16 if cls == "good" else 48, c=COLORS[cls],
                       marker=MARKERS[cls], edgecolors="black", linewidths=0.7 if cls == "good" else 1.0,
                       zorder=5 if cls != "good" else 4)
        ax.set_xlim(ix0, ix1)
        ax.set_ylim(iy1, iy0)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="#BDBDBD", linewidth=2, label="ground truth (white)"),
               Line2D([], [], color=PRED_LINE, linewidth=2, label="prediction")]
    handles += [Line2D([], [], marker=MARKERS[c], linestyle="", markerfacecolor=COLORS[c], markeredgecolor="black",
                       markersize=8, label=c) for c in CLASSES]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle("Worst matched detections (predicted keypoints coloured by error type; dashed: to the ground "
                 "truth)", fontsize=10)
    return _save(fig, path)


def plot_pr_compare(report_a: dict, report_b: dict, labels: list[str], path: str | Path) -> Path:
    """Precision–recall curves of two runs on one plot: the original detections at OKS .75, .50 and .10 (one
    colour per OKS; run A solid, run B dashed), AP at each OKS in the legend.

    Args:
        report_a, report_b: ``analysis.json`` contents. labels: the two run names. path: output PNG.

    Returns:
        ``path``.
    """
    fig = _figure(7.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    colors = {0.75: "#1F77B4", 0.5: "#D62728", 0.1: "#2CA02C"}
    for report, style, label in ((report_a, "-", labels[0]), (report_b, "--", labels[1])):
        recall = np.asarray(report["pr_curves"]["recall"], dtype=float)
        for oks in PR_OKS:
            prec = report["pr_curves"]["oks"][f"{oks:.2f}"]["original"]
            ax.plot(recall, _curve(prec), linestyle=style, color=colors[oks], linewidth=1.8,
                    label=f"{label} · OKS {oks:.2f} · AP {_ap(prec):.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{labels[0]} (solid) vs {labels[1]} (dashed)")
    return _save(fig, path)

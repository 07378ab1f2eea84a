"""Where detector-box AP goes: the gap between ground-truth and detector person boxes, split into its causes.

COCO keypoint AP (pycocotools, the ``kanpose eval coco`` protocol: flip test, box score × mean keypoint score > 0.2,
OKS-NMS 0.9) of one pose model on five box sets, each one step from ground truth towards the detector:

1. ``gt``: the ground-truth person boxes, score 1 (``kanpose eval coco``'s default);
2. ``matched, score 1``: for every ground-truth box, the detector box with the highest IoU with it (no threshold),
   score 1: only the box *geometry* differs from row 1;
3. ``matched, detector scores``: the same boxes with their detector scores: adds the *ranking* by box score;
4. ``all detections``: every detector box (``--det-conf``, default 0.001 as in eval): adds the *extra detections*
   (background, duplicates, persons without keypoint labels) — ``kanpose eval coco --boxes detector``.

Each row's difference to the one above is what that step costs. ``--scale F`` (repeatable) adds rows where the
boxes of rows 1 and 2 are scaled by F about their centres before the usual padding 1.25: how sensitive the model is
to the crop's framing. Those rows tune on the evaluation set; read them as a diagnosis, not as a setting.

    python benchmarks/box_gap.py ../shared/data/coco-mini --scale 0.9 --scale 1.1

The pose network runs once per box (detector boxes once for rows 2–4), on CPU unless ``--device`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """(N, 4) float32 ``x1, y1, x2, y2`` boxes (original-image pixels) scaled by ``factor`` about their centres."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * factor / 2
    return np.concatenate([c - half, c + half], axis=1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="COCO folder: annotations/person_keypoints_<split>.json and <split>/")
    ap.add_argument("--split", default="val2017")
    ap.add_argument("--model", default=None, help="pose model name (default: the weights' model)")
    ap.add_argument("--weights", default=None, help="pose weights (default: the model's shipped weights)")
    ap.add_argument("--detector", default=None, help="YOLO weights (default: yolo11n-pose.pt, offline copy)")
    ap.add_argument("--det-conf", type=float, default=0.001)
    ap.add_argument("--scale", type=float, action="append", default=[], help="box scale factor rows (repeatable)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.data.coco import CocoKeypointData
    from kanpose_cli.core.data.sources import read_image
    from kanpose_cli.core.detect.boxes import make_box_source
    from kanpose_cli.core.evaluation.evaluator import padded_areas, rescore_and_nms, score_results
    from kanpose_cli.core.errors import KanposeError

    try:
        data = CocoKeypointData(args.data / "annotations" / f"person_keypoints_{args.split}.json",
                                args.data / args.split)
        est = PoseEstimator(args.model, args.weights, boxes="gt", annotations=data, device=args.device, flip=True)
        detector = make_box_source("detector", args.detector, conf=args.det_conf, device=args.device)
    except KanposeError as exc:
        sys.exit(f"error: {exc}")
    images = {}
    for i in data.coco.getImgIds():
        try:
            images[i] = read_image(data.image(i).path)
        except KanposeError as exc:  # reported and left out of every row
            print(f"skipped {data.image(i).path}: {exc}", file=sys.stderr)
    ids = sorted(images)

    def pose(i, boxes, scores):
        if not len(boxes):
            return None
        return est.predict([images[i]], [str(data.image(i).path)], [i], boxes=[(boxes, scores)])[0]

    def ap_of(results: dict) -> tuple[float, float]:
        dets = []
        for i, r in results.items():
            if r is not None and len(r):
                dets += rescore_and_nms(r, i, padded_areas(r.boxes, est.aspect_ratio))
        m = score_results(data.coco, dets, image_ids=ids)
        return m["AP"], m["AR"]

    gt = {i: data.gt_boxes(i) for i in ids}
    found = {i: detector([images[i]], [str(data.image(i).path)], [i])[0] for i in ids}
    det_all = {i: pose(i, *found[i]) for i in ids}
    matched, ious = {}, []
    for i in ids:
        r = det_all[i]
        if r is None or not len(gt[i][0]):
            continue
        iou = box_iou(torch.from_numpy(gt[i][0]), torch.from_numpy(r.boxes)).numpy()  # (N_gt, N_det)
        best = [int(j) for j in iou.argmax(axis=1)]
        ious += [float(iou[g, j]) for g, j in enumerate(best)]
        matched[i] = r.select(sorted(set(best)))

    def with_unit_scores(results):
        out = {}
        for i, r in results.items():
            r = r.select(slice(None))
            r.box_scores = np.ones(len(r), dtype=np.float32)
            out[i] = r
        return out

    rows = [("gt", ap_of({i: pose(i, *gt[i]) for i in ids})),
            ("matched, score 1", ap_of(with_unit_scores(matched))),
            ("matched, detector scores", ap_of(matched)),
            ("all detections", ap_of(det_all))]
    for f in args.scale:
        rows.append((f"gt × {f:g}", ap_of({i: pose(i, scale_boxes(gt[i][0], f), gt[i][1]) for i in ids})))
        rows.append((f"matched × {f:g}, score 1", ap_of({
            i: pose(i, scale_boxes(r.boxes, f), np.ones(len(r), np.float32)) for i, r in matched.items()})))

    q = np.quantile(ious, [0.1, 0.5, 0.9]) if ious else [float("nan")] * 3
    print(f"{est.name} · {len(ids)} images · {sum(len(g[0]) for g in gt.values())} ground-truth boxes · "
          f"{sum(len(b[0]) for b in found.values())} detector boxes (conf ≥ {args.det_conf:g}); IoU of the best "
          f"detector box with each ground-truth box: 10/50/90 % quantiles {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}")
    print(f"{'boxes':<28} {'AP':>6} {'ΔAP':>7} {'AR':>6}")
    prev = None
    for name, (ap_, ar) in rows:
        delta = "" if prev is None or "×" in name else f"{ap_ - prev:+.3f}"
        print(f"{name:<28} {ap_:6.3f} {delta:>7} {ar:6.3f}")
        if "×" not in name:
            prev = ap_


if __name__ == "__main__":
    main()

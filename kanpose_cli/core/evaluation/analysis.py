"""Keypoint error diagnosis of COCO keypoint results: *why* the AP is what it is.

Method: Ronchi & Perona, *Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation*, ICCV 2017, and its
code release "coco-analyze" (``pycocotools/cocoanalyze.py``). pycocotools does the matching and the AP; this module
only adds the diagnosis.

**Keypoint similarity.** For one predicted keypoint and one ground-truth keypoint at distance ``d`` (pixels of the
original image), ``ks = exp(-d² / (2 · s² · k²))`` with ``s² = area`` of the ground-truth person (its COCO ``area``,
pixels²) and ``k = 2σ`` (σ: the keypoint's COCO OKS sigma). OKS is the mean of ``ks`` over the labelled keypoints
(``v > 0``); this is pycocotools' ``computeOks``, defined once in :mod:`~kanpose_cli.core.evaluation.oks`.

**Matching.** Each image is evaluated by pycocotools ``COCOeval(iouType="keypoints")`` at OKS 0.1 (the paper's
localisation threshold, :data:`MATCH_OKS`): detections sorted by score, each takes the free ground-truth person with
the highest OKS ≥ 0.1; at most 20 detections per image (COCO ``maxDets``). Ground truth that COCOeval ignores
(crowd regions, persons without labelled keypoints) is never diagnosed.

**Keypoint classes** (every labelled keypoint of every matched ground-truth person; ``ks`` against the matched
person unless said otherwise):

- ``good``: ``ks ≥ 0.85`` (:data:`GOOD_KS`);
- ``jitter``: ``0.5 ≤ ks < 0.85`` (:data:`PROXIMITY_KS`): a small error around the right spot;
- ``inversion``: ``ks < 0.5``, but ``ks ≥ 0.5`` to the left/right-mirrored keypoint of the same person (left
  knee on the right knee). The nose has no mirror and is never inverted;
- ``swap``: ``ks < 0.5``, but ``ks ≥ 0.5`` to the same keypoint (or, as in coco-analyze, its mirror) of another
  ground-truth person of the image (``ks`` computed with that person's area). When both an inversion and a swap
  qualify, the larger ``ks`` wins (coco-analyze's argmax);
- ``miss``: ``ks < 0.5`` to all of those: the keypoint is not near any body part it could be confused with.

One deliberate difference from the coco-analyze code: good and jitter are decided on the matched person's ``ks``
first (the paper's definitions), so a keypoint within ``ks ≥ 0.5`` of its own ground truth is never a swap, even
when a neighbour's keypoint happens to be closer. The two rules differ only for overlapping people.

**Detections** that are not matched at OKS 0.1: a *background false positive* when its OKS with every ground-truth
person is < 0.1 (it is on nobody); a *duplicate* otherwise (the person was already taken by a higher-scored
detection). A ground-truth person with no detection matched at OKS 0.1 is a *false negative*. A *scoring error*
(coco-analyze ``scoringErrors``): a ground-truth person for which, among its free detections with OKS ≥ 0.5, a
detection other than the best-OKS one has the highest score.

**Corrections** (cumulative, in the paper's order; the AP after each step shows how much each error type costs):

1. ``miss``, 2. ``swap``, 3. ``inversion``, 4. ``jitter``: the keypoints of that class are replaced by their
   ground-truth location ("optimal" correction, ``ks = 1``). The coco-analyze code moves them only to the edge of
   the next better class instead; the GT location makes "every error corrected" mean AP 1.0.
5. ``score``: every detection is re-scored by the OKS of an optimal one-to-one assignment of the image's detections
   to its ground-truth persons (maximum total OKS, Hungarian algorithm); unassigned detections get score 0
   (coco-analyze ``evaluateImgScores``).
6. ``background_fp``: background false positives are removed.
7. ``false_negative``: false-negative persons are removed from the ground truth.

Besides the cumulative steps, the AP with *only* one error type corrected is reported too (coco-analyze
``errorsAPImpact``): in the cumulative order the scoring step already sends background false positives to the
bottom of the ranking, so their own cost shows only there.

All AP values are pycocotools' (mean interpolated precision over 101 recall points, OKS .50:.95; AP(M) and AP(L) for
areas 32²–96² and > 96² pixels²), in [0, 1], or -1 where the ground truth has no person in that range.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from kanpose_cli.core.data.coco import quiet_coco
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation.analysis_types import (AP_OKS, CLASSES, GOOD, GOOD_KS, INVERSION, JITTER,
                                                       KEYPOINT_ERRORS, LARGE_AREA, MATCH_OKS, MAX_DETS, MEDIUM_AREA,
                                                       METHOD, MISS, PR_OKS, PROXIMITY_KS, SCORING_OKS, SIZES, STEPS,
                                                       SWAP, UNLABELLED, Analysis, MatchDiagnosis)
from kanpose_cli.core.evaluation.analysis_types import STEP_LABELS as STEP_LABELS  # re-exported: analysis.STEP_LABELS
from kanpose_cli.core.evaluation.coco_metric import check_results, coco_eval, load_results, paired_bootstrap_ap
from kanpose_cli.core.evaluation.oks import keypoint_similarity, oks_matrix
from kanpose_cli.core.io import RunDir, next_run_dir, write_json_atomic
from kanpose_cli.core.keypoints import COCO17, KeypointSet, keypoint_set_from_coco


# ------------------------------------------------------------------------------------------------ similarities
def classify_keypoints(pred_xy: np.ndarray, gt_xy: np.ndarray, gt_vis: np.ndarray, gt_areas: np.ndarray,
                       own: int, sigmas: np.ndarray, flip_index) -> tuple[np.ndarray, np.ndarray]:
    """Class of each keypoint of one prediction matched to ground-truth person ``own`` (module docstring).

    Args:
        pred_xy: (K, 2) predicted keypoints, pixels of the original image, x before y.
        gt_xy: (G, K, 2) every diagnosable ground-truth person of the image (non-crowd, with labelled keypoints).
        gt_vis: (G, K) COCO visibility flags (> 0: labelled). gt_areas: (G,) person areas, pixels².
        own: index in ``gt_xy`` of the matched person. sigmas: (K,) OKS sigmas.
        flip_index: (K,) left/right mirror permutation of the keypoint set (``flip_index[k] == k``: no mirror).

    Returns:
        ``(classes, ks_own)``: (K,) int8 codes (:data:`GOOD` … :data:`MISS`, :data:`UNLABELLED` where the matched
        person's keypoint is not labelled) and (K,) ks against the matched person (nan where unlabelled).
    """
    K = pred_xy.shape[0]
    flip = np.asarray(flip_index, dtype=int)
    area = np.asarray(gt_areas, float)[:, None]
    ks_same = np.where(gt_vis > 0, keypoint_similarity(pred_xy[None], gt_xy, area, sigmas), -1.0)  # (G, K)
    has_mirror = (gt_vis[:, flip] > 0) & (flip != np.arange(K))[None]
    ks_mirror = np.where(has_mirror, keypoint_similarity(pred_xy[None], gt_xy[:, flip], area, sigmas), -1.0)
    ks_own, ks_inv = ks_same[own], ks_mirror[own]
    others = np.delete(np.maximum(ks_same, ks_mirror), own, axis=0)
    ks_swap = others.max(axis=0) if len(others) else np.full(K, -1.0)

    classes = np.full(K, MISS, dtype=np.int8)
    classes[ks_own >= GOOD_KS] = GOOD
    classes[(ks_own >= PROXIMITY_KS) & (ks_own < GOOD_KS)] = JITTER
    far = ks_own < PROXIMITY_KS
    near_other = np.maximum(ks_inv, ks_swap) >= PROXIMITY_KS
    classes[far & near_other & (ks_inv >= ks_swap)] = INVERSION
    classes[far & near_other & (ks_inv < ks_swap)] = SWAP
    labelled = gt_vis[own] > 0
    classes[~labelled] = UNLABELLED
    return classes, np.where(labelled, ks_own, np.nan)


def max_weight_assignment(weight: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one assignment of rows to columns with the largest total weight (Hungarian / Kuhn–Munkres,
    :func:`scipy.optimize.linear_sum_assignment` with ``maximize=True``).

    Args:
        weight: (R, C) finite weights (here OKS of detections × ground-truth persons).

    Returns:
        ``min(R, C)`` pairs ``(row, col)``, sorted by row (zero-weight pairs included, as coco-analyze).
    """
    w = np.asarray(weight, dtype=float)
    if w.size == 0:
        return []
    rows, cols = linear_sum_assignment(w, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols)]


@dataclass
class _ImageGt:
    ids: list[int]
    xy: np.ndarray  # (G, K, 2)
    vis: np.ndarray  # (G, K)
    areas: np.ndarray  # (G,)


# ------------------------------------------------------------------------------------------------ evaluation
def _is_ignored(ann: dict) -> bool:
    """pycocotools' keypoint ignore rule: crowd regions and persons without labelled keypoints."""
    return bool(ann.get("iscrowd", 0)) or ann.get("num_keypoints", 0) == 0


def _image_gt(coco_gt, image_id: int, K: int) -> _ImageGt:
    anns = [a for a in coco_gt.imgToAnns.get(image_id, []) if not _is_ignored(a)]
    kp = np.array([a["keypoints"] for a in anns], dtype=float).reshape(len(anns), K, 3)
    return _ImageGt([int(a["id"]) for a in anns], kp[..., :2], kp[..., 2],
                    np.array([float(a["area"]) for a in anns]))


def _cocoeval(coco_gt, dets: list[dict], image_ids: list[int], keypoint_set: KeypointSet):
    """COCOeval (keypoints) at OKS 0.1 and .50:.95 (:func:`~kanpose_cli.core.evaluation.coco_metric.coco_eval`)."""
    return coco_eval(coco_gt, dets, image_ids, keypoint_set, oks_thresholds=(MATCH_OKS, *AP_OKS))[0]


def _mean_precision(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else -1.0


def _ap_row(ev, dets: list[dict]) -> dict:
    """``AP, AP50, AP75, AP10, APM, APL`` (pycocotools ``summarize`` means) of an evaluated COCOeval."""
    if not dets:
        return {k: 0.0 for k in ("AP", "AP50", "AP75", "AP10", "APM", "APL")}
    prec = ev.eval["precision"]  # (T, R, K, A, M)
    thr = [round(float(t), 2) for t in ev.params.iouThrs]
    ap_idx = [thr.index(t) for t in AP_OKS]
    row = {"AP": _mean_precision(prec[ap_idx, :, :, 0, 0])}
    for name, t in (("AP50", 0.5), ("AP75", 0.75), ("AP10", MATCH_OKS)):
        row[name] = _mean_precision(prec[thr.index(t), :, :, 0, 0])
    row["APM"] = _mean_precision(prec[ap_idx, :, :, 1, 0])
    row["APL"] = _mean_precision(prec[ap_idx, :, :, 2, 0])
    return row


def _pr_curves(ev, dets: list[dict]) -> dict:
    """Precision at the 101 recall points for each OKS in :data:`PR_OKS` (all sizes)."""
    if not dets:
        return {f"{t:.2f}": [0.0] * 101 for t in PR_OKS}
    thr = [round(float(t), 2) for t in ev.params.iouThrs]
    prec = ev.eval["precision"]
    return {f"{t:.2f}": [round(float(v), 4) for v in prec[thr.index(t), :, 0, 0, 0]] for t in PR_OKS}


def _size_of(area: float) -> str:
    return "small" if area < MEDIUM_AREA else "medium" if area <= LARGE_AREA else "large"


# ------------------------------------------------------------------------------------------------ analysis
def analyze(ann, results, image_ids: list[int] | None = None, keypoint_set: KeypointSet = COCO17) -> Analysis:
    """Diagnose COCO keypoint results (Ronchi & Perona, ICCV 2017; definitions in the module docstring).

    Args:
        ann: COCO keypoint annotation JSON path, or a loaded ``pycocotools.coco.COCO``.
        results: COCO keypoint results (list of dicts or a JSON path): ``image_id``, ``category_id``, ``keypoints``
            flat ``x, y, score`` × 17 in pixels of the original image, ``score`` in [0, 1].
        image_ids: evaluate only these images (default: every image of the annotation file), as
            :func:`~kanpose_cli.core.evaluation.coco_metric.score_results`, so the ``original`` AP equals the reported
            AP.
        keypoint_set: names and left/right mirror of the 17 keypoints (COCO-17).

    Returns:
        :class:`Analysis`. ``report`` holds ``thresholds``; ``keypoints`` (per size ``all``/``medium``/``large``:
        ``labelled`` and the count of each class); ``per_keypoint`` (list of ``{keypoint, labelled, good, jitter,
        inversion, swap, miss}``); ``detections`` (``total``, ``evaluated``, ``matched``, ``background_fp``,
        ``duplicate``, ``ignored``, ``beyond_max_dets``); ``persons`` (``total``, ``matched``, ``false_negative``);
        ``scoring_errors``; ``ap_steps`` (one ``{step, AP, AP50, AP75, AP10, APM, APL}`` per :data:`STEPS`,
        cumulative, values in [0, 1]); ``ap_alone`` (the same rows with only that one error type corrected, as
        coco-analyze's ``errorsAPImpact``); ``pr_curves`` (``recall`` 101 points and, per OKS .75/.50/.10 and step,
        101 precisions); ``worst`` (the detections shown in the worst-examples grid).

    Raises:
        InputError: unreadable annotation or results, results for images not in the annotation file, keypoint
            count other than 17, or no results at all.
    """
    coco_gt = ann if hasattr(ann, "loadRes") else quiet_coco(ann)
    dets = load_results(results)
    K = keypoint_set.num_keypoints
    if not dets:
        raise InputError("nothing to analyse: the results hold no detections")
    check_results(coco_gt, dets, keypoint_set)  # image ids, keypoint count (again in each COCOeval: cheap)
    ids = sorted(int(i) for i in coco_gt.getImgIds()) if image_ids is None else sorted(int(i) for i in image_ids)
    id_set = set(ids)
    kp = np.array([d["keypoints"] for d in dets], dtype=float).reshape(len(dets), K, 3)
    scores = np.array([float(d["score"]) for d in dets])
    by_image: dict[int, list[int]] = {}
    for n, d in enumerate(dets):
        if int(d["image_id"]) in id_set:
            by_image.setdefault(int(d["image_id"]), []).append(n)

    ev = _cocoeval(coco_gt, dets, ids, keypoint_set)
    sigmas = keypoint_set.sigmas_array()
    cat0, area0 = ev.params.catIds[0], ev.params.areaRng[0]

    matches: list[MatchDiagnosis] = []
    background, duplicates, false_neg, ignored, evaluated = [], [], [], 0, 0
    gts = {i: _image_gt(coco_gt, i, K) for i in ids}
    for e in ev.evalImgs:
        if e is None or e["category_id"] != cat0 or list(e["aRng"]) != list(area0):
            continue
        img, g = int(e["image_id"]), gts[int(e["image_id"])]
        row_of = {gid: r for r, gid in enumerate(g.ids)}
        for d_pos, did in enumerate(e["dtIds"]):
            n = int(did) - 1  # loadRes numbers detections 1..N in list order
            evaluated += 1
            gid = int(e["dtMatches"][0][d_pos])
            if e["dtIgnore"][0][d_pos]:
                ignored += 1
            elif gid:
                own = row_of[gid]
                classes, ks = classify_keypoints(kp[n, :, :2], g.xy, g.vis, g.areas, own, sigmas,
                                                 keypoint_set.flip_index)
                oks = float(np.mean(ks[classes >= 0])) if np.any(classes >= 0) else 0.0  # = pycocotools OKS
                matches.append(MatchDiagnosis(n, img, gid, float(scores[n]), oks, _size_of(g.areas[own]), classes,
                                              ks, kp[n, :, :2].copy(), g.xy[own].copy(), g.vis[own].copy()))
            else:
                near = oks_matrix(kp[n:n + 1, :, :2], g.xy, g.vis, g.areas, sigmas)
                (duplicates if near.size and near.max() >= MATCH_OKS else background).append(n)
        for g_pos, gid in enumerate(e["gtIds"]):
            if not e["gtIgnore"][g_pos] and not int(e["gtMatches"][0][g_pos]):
                false_neg.append(int(gid))
    n_total_eval = sum(len(v) for v in by_image.values())

    # ---------------------------------------------------------------- counts
    keypoints = {s: {"labelled": 0, **{c: 0 for c in CLASSES}} for s in SIZES}
    per_kpt = np.zeros((len(CLASSES), K), dtype=int)
    for m in matches:
        for s in ("all", m.size):
            if s in keypoints:
                keypoints[s]["labelled"] += int(np.sum(m.classes >= 0))
                for c_idx, c in enumerate(CLASSES):
                    keypoints[s][c] += int(np.sum(m.classes == c_idx))
        for c_idx in range(len(CLASSES)):
            per_kpt[c_idx] += m.classes == c_idx
    per_keypoint = [{"keypoint": name, "labelled": int(per_kpt[:, k].sum()),
                     **{c: int(per_kpt[c_idx, k]) for c_idx, c in enumerate(CLASSES)}}
                    for k, name in enumerate(keypoint_set.names)]
    n_persons = sum(len(g.ids) for g in gts.values())

    # ---------------------------------------------------------------- scoring errors (original detections)
    scoring_errors = 0
    for img, idx in by_image.items():
        g = gts[img]
        if not g.ids:
            continue
        oks = oks_matrix(kp[idx, :, :2], g.xy, g.vis, g.areas, sigmas)
        used: set[int] = set()
        for gcol in np.argsort(-oks.max(axis=0), kind="mergesort"):
            avail = [r for r in range(len(idx)) if oks[r, gcol] >= SCORING_OKS and r not in used]
            if not avail:
                continue
            best = max(avail, key=lambda r: oks[r, gcol])
            used.add(best)
            if max(scores[idx[r]] for r in avail) > scores[idx[best]]:
                scoring_errors += 1

    # ---------------------------------------------------------------- corrections
    fn_set = set(false_neg)
    gt_dict = dict(coco_gt.dataset)
    gt_dict["annotations"] = [a for a in coco_gt.dataset["annotations"] if int(a["id"]) not in fn_set]
    coco_without_fn = quiet_coco(gt_dict) if fn_set else coco_gt

    def corrected(fix: set[str]) -> tuple[object, list[dict]]:
        """COCOeval of the results with the error types in ``fix`` corrected (module docstring)."""
        fixed = kp.copy()
        for m in matches:
            sel = np.isin(m.classes, [CLASSES.index(e) for e in KEYPOINT_ERRORS if e in fix])
            fixed[m.result_index, sel, :2] = m.gt_xy[sel]
        new_scores = scores
        if "score" in fix:
            new_scores = np.zeros(len(dets))  # unassigned detections score 0
            for img, idx in by_image.items():
                g = gts[img]
                oks = oks_matrix(fixed[idx, :, :2], g.xy, g.vis, g.areas, sigmas)
                for r, c in max_weight_assignment(oks):
                    new_scores[idx[r]] = oks[r, c]
        drop = set(background) if "background_fp" in fix else set()
        step_dets = [{"image_id": dets[n]["image_id"], "category_id": dets[n]["category_id"],
                      "keypoints": fixed[n].reshape(-1).tolist(), "score": float(new_scores[n])}
                     for n in range(len(dets)) if n not in drop]
        gt_used = coco_without_fn if "false_negative" in fix else coco_gt
        return _cocoeval(gt_used, step_dets, ids, keypoint_set), step_dets

    steps, alone, curves = [], [], {f"{t:.2f}": {} for t in PR_OKS}
    for n_step, step in enumerate(STEPS):
        evaluation, step_dets = (ev, dets) if step == "original" else corrected(set(STEPS[1:n_step + 1]))
        steps.append({"step": step, **_ap_row(evaluation, step_dets)})
        for key, values in _pr_curves(evaluation, step_dets).items():
            curves[key][step] = values
    for step in STEPS[1:]:
        alone.append({"step": step, **_ap_row(*corrected({step}))})

    report = {
        "method": METHOD,
        "thresholds": {"good_ks": GOOD_KS, "proximity_ks": PROXIMITY_KS, "match_oks": MATCH_OKS,
                       "scoring_oks": SCORING_OKS, "max_dets": MAX_DETS, "medium_area": MEDIUM_AREA,
                       "large_area": LARGE_AREA},
        "num_images": len(ids),
        "keypoints": keypoints,
        "per_keypoint": per_keypoint,
        "detections": {"total": len(dets), "in_evaluated_images": n_total_eval, "evaluated": evaluated,
                       "matched": len(matches), "background_fp": len(background), "duplicate": len(duplicates),
                       "ignored": ignored, "beyond_max_dets": n_total_eval - evaluated},
        "persons": {"total": n_persons, "matched": len(matches), "false_negative": len(false_neg)},
        "scoring_errors": scoring_errors,
        "ap_steps": steps,
        "ap_alone": alone,
        "pr_curves": {"recall": [round(float(r), 2) for r in ev.params.recThrs], "oks": curves},
    }
    analysis = Analysis(report, matches, keypoint_set, background, duplicates, false_neg)
    report["worst"] = [_worst_entry(m) for m in worst_matches(analysis)]
    return analysis


def worst_matches(analysis: Analysis, per_error: int = 3, total: int = 12) -> list[MatchDiagnosis]:
    """The detections shown in the worst-examples grid: for each error type (miss, swap, inversion, jitter) the
    ``per_error`` detections with the most keypoints of that type (ties: higher score first), then the lowest-OKS
    matches until ``total``. Each detection appears once."""
    chosen: list[MatchDiagnosis] = []
    seen: set[int] = set()
    for err in KEYPOINT_ERRORS:
        ranked = sorted((m for m in analysis.matches if m.count(err) and m.result_index not in seen),
                        key=lambda m: (-m.count(err), -m.score, m.oks))
        for m in ranked[:per_error]:
            chosen.append(m)
            seen.add(m.result_index)
    rest = sorted((m for m in analysis.matches if m.result_index not in seen and m.oks < 1.0), key=lambda m: m.oks)
    chosen.extend(rest[:max(0, total - len(chosen))])
    return chosen[:total]


def _worst_entry(m: MatchDiagnosis) -> dict:
    return {"result_index": m.result_index, "image_id": m.image_id, "gt_id": m.gt_id, "score": round(m.score, 4),
            "oks": round(m.oks, 4), "size": m.size,
            "errors": {e: m.count(e) for e in KEYPOINT_ERRORS if m.count(e)}}


# ------------------------------------------------------------------------------------------------ run folders
def evaluated_image_ids(coco_gt, selected: list[int] | None, skipped_paths=()) -> list[int]:
    """The image ids a run was scored on: ``selected`` (default: every image of ``coco_gt``) minus the images the
    run skipped (matched by file name, as listed in ``metrics.json`` ``skipped[].path``)."""
    ids = sorted(int(i) for i in coco_gt.getImgIds()) if selected is None else [int(i) for i in selected]
    skipped = {Path(str(p)).name for p in skipped_paths if p}
    return [i for i in ids if Path(coco_gt.imgs[i].get("file_name", "")).name not in skipped] if skipped else ids


def analyze_run(ann, results, run_dir: str | os.PathLike | RunDir, image_ids: list[int] | None = None,
                skipped_paths=(), images_dir: str | Path | None = None) -> tuple[Analysis, dict[str, Path]]:
    """Analyse the results of one evaluation run and write ``analysis.json`` and the plots next to its metrics.

    Args:
        ann: annotation file or loaded ``COCO``. results: results list or JSON path (see :func:`analyze`).
        run_dir: the run folder. image_ids: the images the run selected (None: all). skipped_paths: images the run
            could not read (left out, as in its AP). images_dir: image folder for the worst-examples grid (None:
            no grid).

    Returns:
        ``(analysis, paths)`` as :func:`analyze` and :func:`save_analysis`.
    """
    coco_gt = ann if hasattr(ann, "loadRes") else quiet_coco(ann)
    ids = evaluated_image_ids(coco_gt, image_ids, skipped_paths)
    result = analyze(coco_gt, results, image_ids=ids)
    return result, save_analysis(result, run_dir, images_dir, coco_gt)


def save_analysis(analysis: Analysis, run_dir: str | os.PathLike | RunDir, images_dir: str | Path | None = None,
                  coco_gt=None) -> dict[str, Path]:
    """Write ``analysis.json`` and the three plots into ``run_dir`` (next to ``metrics.json``).

    Plots (PNG, :mod:`kanpose_cli.core.evaluation.analysis_plots`): ``pr_error_curves.png`` (cumulative PR curves at
    OKS .75/.50/.10), ``keypoint_errors.png`` (error types per keypoint and per size) and, when ``images_dir`` and
    ``coco_gt`` are given, ``worst_examples.png``.

    Returns:
        ``{"analysis": path, "pr_curves": path, "keypoint_errors": path[, "worst_examples": path]}``; the same
        names (relative) are stored under ``report["plots"]``.
    """
    from kanpose_cli.core.evaluation import analysis_plots  # lazy: matplotlib

    run_dir = Path(run_dir)
    paths = {"pr_curves": analysis_plots.plot_pr_corrections(analysis.report, run_dir / "pr_error_curves.png"),
             "keypoint_errors": analysis_plots.plot_keypoint_errors(analysis.report,
                                                                    run_dir / "keypoint_errors.png")}
    if images_dir is not None and Path(images_dir).is_dir() and coco_gt is not None:
        out = analysis_plots.plot_worst_examples(analysis, worst_matches(analysis), coco_gt, images_dir,
                                                 run_dir / "worst_examples.png")
        if out is not None:
            paths["worst_examples"] = out
    analysis.report["plots"] = {k: p.name for k, p in paths.items()}
    paths["analysis"] = write_json_atomic(run_dir / "analysis.json", analysis.report)
    return paths


def load_run(run_dir: str | Path) -> dict:
    """An evaluated run folder for :func:`compare_runs`: ``{"name", "dir", "metrics", "analysis", "computed"}``.

    ``analysis`` is read from ``analysis.json``; when that file is missing it is computed now (``computed`` True,
    nothing written) from the run's results file and the annotation file named in ``metrics.json``.

    Raises:
        InputError: not a folder, no ``metrics.json``, or no analysis and no results file to compute it from.
    """
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise InputError(f"run folder not found: {run_dir}")
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        raise InputError(f"{run_dir} is not an evaluated run folder (no metrics.json); run `kanpose eval coco` first")
    metrics = _read_json(metrics_file)
    analysis_file = run_dir / "analysis.json"
    if analysis_file.is_file():
        report, computed = _read_json(analysis_file), False
        if not isinstance(report, dict) or "ap_steps" not in report:
            raise InputError(f"{analysis_file} is not a kanpose error analysis")
    else:
        settings = run_settings(metrics)
        results = run_results_file(run_dir, metrics)
        if results is None or not settings.get("ann_file"):
            raise InputError(f"{run_dir} has no analysis.json and no results file to compute it from; "
                             f"run `kanpose eval coco ... --analyze`")
        coco_gt = quiet_coco(settings["ann_file"])
        selected = None if settings.get("image_ids", "all") == "all" else settings["image_ids"]
        ids = evaluated_image_ids(coco_gt, selected, [s.get("path") for s in metrics.get("skipped", [])])
        report, computed = analyze(coco_gt, results, image_ids=ids).report, True
    return {"name": run_dir.name, "dir": run_dir, "metrics": metrics, "analysis": report, "computed": computed}


def run_settings(metrics) -> dict:
    """The ``settings`` of a run's ``metrics.json`` (empty when missing or not a mapping)."""
    return (metrics.get("settings") or {}) if isinstance(metrics, dict) else {}


def run_results_file(run_dir: Path, metrics) -> Path | None:
    """The results file of an evaluated run: ``results.json`` in its folder, else the file its ``metrics.json``
    names (``results_file``, or ``settings.results_file`` for ``kanpose eval coco --results``); None if neither
    exists."""
    if (Path(run_dir) / "results.json").is_file():
        return Path(run_dir) / "results.json"
    named = (metrics.get("results_file") if isinstance(metrics, dict) else None) or run_settings(metrics).get(
        "results_file")
    return Path(named) if named and Path(named).is_file() else None


def paired_bootstrap_runs(run_a: dict, run_b: dict, resamples: int = 200, seed: int = 0) -> dict:
    """:func:`~kanpose_cli.core.evaluation.coco_metric.paired_bootstrap_ap` of two runs of :func:`load_run`: both
    results files (``results.json`` in the run folder, else the file ``metrics.json`` names) rescored on the
    annotation file of run A with its keypoint set's OKS sigmas, over the images both runs evaluated.

    Returns:
        the paired bootstrap's dict (``delta`` = AP of B − AP of A, its ``ci95`` and ``b_better``).

    Raises:
        InputError: a run has no results file, the runs were scored on different annotation files or images, or
            either results file does not fit the annotation file.
    """
    ann_a, ann_b = run_settings(run_a["metrics"]).get("ann_file"), run_settings(run_b["metrics"]).get("ann_file")
    if not ann_a or not Path(ann_a).is_file():
        raise InputError(f"{run_a['dir']}: the annotation file its metrics.json names is not found ({ann_a}); "
                         "a paired bootstrap rescores both runs on it")
    if ann_b and Path(ann_b).resolve() != Path(ann_a).resolve():
        raise InputError(f"the runs were scored on different annotation files ({ann_a}, {ann_b}): a paired "
                         "bootstrap needs the same images and labels")
    coco_gt = quiet_coco(ann_a)
    kset = keypoint_set_from_coco(coco_gt.dataset, str(ann_a))
    evs, id_lists = [], []
    for run in (run_a, run_b):
        results = run_results_file(run["dir"], run["metrics"])
        if results is None:
            raise InputError(f"{run['dir']}: no results file to rescore (results.json, or the --results file its "
                             "metrics.json names)")
        s = run_settings(run["metrics"])
        selected = None if s.get("image_ids", "all") == "all" else s["image_ids"]
        skipped = [k.get("path") for k in run["metrics"].get("skipped", [])]
        id_lists.append(evaluated_image_ids(coco_gt, selected, skipped))
        evs.append((results, id_lists[-1]))
    if id_lists[0] != id_lists[1]:
        raise InputError(f"the runs evaluated different images ({len(id_lists[0])} and {len(id_lists[1])}): a paired "
                         "bootstrap needs the same images")
    ev_a, ev_b = (coco_eval(coco_gt, load_results(r), ids, kset)[0] for r, ids in evs)
    return paired_bootstrap_ap(ev_a, ev_b, resamples=resamples, seed=seed)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _pct(counts: dict, name: str) -> float:
    return 100.0 * counts.get(name, 0) / counts["labelled"] if counts.get("labelled") else 0.0


COMPARE_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
DETECTION_LABELS = {"background_fp": "background false positives", "duplicate": "duplicates",
                    "false_negative": "false negatives", "scoring_errors": "scoring errors"}


# Evaluation settings that make two runs' AP not comparable like for like when they differ (the model, weights and
# input size are what a comparison usually varies, so they are not listed): (key in metrics.json "settings", words).
COMPARED_SETTINGS = (("boxes", "box sources"), ("flip", "flip-test settings"), ("box_thr", "box score thresholds"),
                     ("ann_file", "annotation files"), ("image_ids", "image selections"))


def setting_differences(run_a: dict, run_b: dict) -> list[dict]:
    """The :data:`COMPARED_SETTINGS` that both runs record and that differ: ``[{"key", "what", "a", "b"}]``
    (``what``: ``box sources``, ``flip-test settings``, ...), in that order."""
    sa, sb = (run_settings(r["metrics"]) for r in (run_a, run_b))
    return [{"key": k, "what": what, "a": sa[k], "b": sb[k]} for k, what in COMPARED_SETTINGS
            if k in sa and k in sb and sa[k] != sb[k]]


def compare_runs(run_a: dict, run_b: dict) -> dict:
    """Two runs of :func:`load_run` side by side.

    Returns:
        ``{"runs": [label_a, label_b], "metrics": {name: [a, b, b - a]}`` (the COCO stats in [0, 1]),
        ``"keypoints": {class: [a %, b %, b - a]}`` (share of labelled keypoints of matched persons, percent),
        ``"detections": {name: [a, b, b - a]}`` (background FP, duplicates, false negatives, scoring errors),
        ``"ap_steps": {step: [a, b, b - a]}`` (AP after each cumulative correction),
        ``"setting_differences"``: :func:`setting_differences` (box source, flip test, ... that differ)``}``.
    """
    labels = [run_a["name"], run_b["name"]]
    if labels[0] == labels[1]:
        labels = [f"{r['dir'].parent.name}/{r['name']}" for r in (run_a, run_b)]
    if labels[0] == labels[1]:
        labels = [f"{labels[0]} (A)", f"{labels[1]} (B)"]

    def triple(a: float, b: float) -> list[float]:
        return [a, b, b - a]

    ma, mb = run_a["metrics"], run_b["metrics"]
    aa, ab = run_a["analysis"], run_b["analysis"]
    metrics = {k: triple(float(ma[k]), float(mb[k])) for k in COMPARE_METRICS if k in ma and k in mb}
    keypoints = {c: triple(_pct(aa["keypoints"]["all"], c), _pct(ab["keypoints"]["all"], c)) for c in CLASSES}
    detections = {
        "background_fp": triple(aa["detections"]["background_fp"], ab["detections"]["background_fp"]),
        "duplicate": triple(aa["detections"]["duplicate"], ab["detections"]["duplicate"]),
        "false_negative": triple(aa["persons"]["false_negative"], ab["persons"]["false_negative"]),
        "scoring_errors": triple(aa["scoring_errors"], ab["scoring_errors"]),
    }
    steps_a = {s["step"]: s["AP"] for s in aa["ap_steps"]}
    steps_b = {s["step"]: s["AP"] for s in ab["ap_steps"]}
    ap_steps = {s: triple(steps_a[s], steps_b[s]) for s in STEPS if s in steps_a and s in steps_b}
    return {"runs": labels, "dirs": [str(run_a["dir"]), str(run_b["dir"])], "metrics": metrics,
            "keypoints": keypoints, "detections": detections, "ap_steps": ap_steps,
            "setting_differences": setting_differences(run_a, run_b)}


def save_comparison(comparison: dict, run_a: dict, run_b: dict, save_dir: str | Path,
                    prefix: str = "compare") -> dict[str, Path]:
    """Write ``compare.json`` and ``pr_compare.png`` (both runs' PR curves on one plot) into a new numbered folder
    ``save_dir/compareN``; returns ``{"dir", "json", "plot"}``."""
    from kanpose_cli.core.evaluation import analysis_plots  # lazy: matplotlib

    out = Path(next_run_dir(save_dir, prefix).create())
    plot = analysis_plots.plot_pr_compare(run_a["analysis"], run_b["analysis"], comparison["runs"],
                                          out / "pr_compare.png")
    path = write_json_atomic(out / "compare.json", {**comparison, "plot": plot.name})
    return {"dir": out, "json": path, "plot": plot}

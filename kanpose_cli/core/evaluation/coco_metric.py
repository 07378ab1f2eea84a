"""The COCO keypoint metric: pycocotools ``COCOeval(iouType='keypoints')``, wrapped once.

Every AP kanpose reports comes from here (never from our own AP code): :func:`score_results` (``kanpose eval``,
training validation) and the error diagnosis (:mod:`~kanpose_cli.core.evaluation.analysis`, at its extra OKS
thresholds). Results are read and checked in one place (:func:`load_results`, :func:`check_results`), and the OKS
sigmas are passed to COCOeval from the keypoint set (``params.kpt_oks_sigmas``) instead of pycocotools' built-in
COCO-17 table.

Reference: pycocotools ``cocoeval.py`` (Lin et al., *Microsoft COCO*, ECCV 2014; https://cocodataset.org/#keypoints-eval).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from kanpose_cli.core.data.coco import quiet_coco
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.io import read_json_file
from kanpose_cli.core.keypoints import COCO17, KeypointSet

METRIC_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
"""The ten numbers of pycocotools' keypoint ``summarize`` (``COCOeval.stats``), in its order."""


def load_results(results: list | str | Path) -> list[dict]:
    """COCO keypoint results from a list or a JSON file, checked for the fields COCOeval needs.

    Each entry: ``image_id`` int, ``category_id`` int, ``keypoints`` flat ``x, y, score`` × K (original-image
    pixels), ``score`` float. Entries are copied (pycocotools mutates what it loads).

    Raises:
        InputError: file missing, not JSON, not a list, or an entry lacking a field.
    """
    where = "results"
    if not isinstance(results, list):
        path = Path(results).expanduser()
        where = str(path)
        results = read_json_file(path, "results file")
        if not isinstance(results, list):
            raise InputError(f"{path}: expected a JSON list of COCO keypoint results")
    out = []
    for n, r in enumerate(results):
        if not isinstance(r, dict) or any(k not in r for k in ("image_id", "category_id", "keypoints", "score")):
            raise InputError(f"{where}: entry {n} is not a COCO keypoint result "
                             f"(needs image_id, category_id, keypoints, score)")
        kp = r["keypoints"]
        if not isinstance(kp, list) or len(kp) == 0 or len(kp) % 3:
            raise InputError(f"{where}: entry {n} has keypoints of length {len(kp) if isinstance(kp, list) else '?'}"
                             f" (expected x, y, score × K)")
        out.append(dict(r))
    return out


def annotation_keypoints(coco_gt) -> int:
    """Number of keypoints per person in a loaded COCO annotation (its category's ``keypoints`` names, else the
    first annotation's ``keypoints`` length / 3); 0 when the file says neither."""
    for cat in coco_gt.dataset.get("categories", []) or []:
        if cat.get("keypoints"):
            return len(cat["keypoints"])
    for ann in coco_gt.dataset.get("annotations", []):
        if ann.get("keypoints"):
            return len(ann["keypoints"]) // 3
    return 0


def _set_words(keypoint_set: KeypointSet) -> str:
    return "COCO" if keypoint_set.name == COCO17.name else keypoint_set.name


def check_results(coco_gt, dets: list[dict], keypoint_set: KeypointSet = COCO17) -> None:
    """The checks every scoring does before COCOeval sees the results.

    Args:
        coco_gt: loaded ``pycocotools.coco.COCO``. dets: results as from :func:`load_results`.
        keypoint_set: the keypoints (and OKS sigmas) of the evaluation.

    Raises:
        InputError: results for images not in the annotation file; annotations whose keypoint count differs from
            the keypoint set's; results whose keypoint count differs from it.
    """
    unknown = sorted({int(d["image_id"]) for d in dets} - set(coco_gt.getImgIds()))
    if unknown:
        raise InputError(f"results refer to {len(unknown)} image id(s) not in the annotation file "
                         f"(e.g. {', '.join(map(str, unknown[:3]))})")
    K, k_ann = keypoint_set.num_keypoints, annotation_keypoints(coco_gt)
    if k_ann and k_ann != K:
        raise InputError(f"the annotations have {k_ann} keypoints per person; the {keypoint_set.name} OKS sigmas "
                         f"are for {K}")
    bad = next((d for d in dets if len(d["keypoints"]) != 3 * K), None)
    if bad is not None:
        raise InputError(f"results have {len(bad['keypoints']) // 3} keypoints per instance; the annotations and "
                         f"the OKS sigmas are for the {K} {_set_words(keypoint_set)} keypoints")


def coco_eval(coco_gt, dets: list[dict], image_ids: Sequence[int], keypoint_set: KeypointSet = COCO17,
              oks_thresholds: Sequence[float] | None = None, summarize: bool = False):
    """pycocotools ``COCOeval(iouType='keypoints')`` of checked results, evaluated and accumulated.

    Args:
        coco_gt: loaded ``pycocotools.coco.COCO``.
        dets: results (copied before pycocotools loads them); checked with :func:`check_results` here.
        image_ids: the images evaluated (``params.imgIds``).
        keypoint_set: its sigmas become ``params.kpt_oks_sigmas`` (COCO-17: the same figures as pycocotools'
            built-in table).
        oks_thresholds: ``params.iouThrs`` (default COCO's .50:.05:.95). ``summarize`` assumes the default.
        summarize: also run ``summarize()`` (fills ``stats``, the ten :data:`METRIC_NAMES`).

    Returns:
        ``(ev, text)``: the ``COCOeval`` (not evaluated when ``dets`` is empty: there is nothing to load) and what
        pycocotools printed (captured; nothing reaches stdout).

    Raises:
        InputError: as :func:`check_results`.
    """
    from pycocotools.cocoeval import COCOeval

    check_results(coco_gt, dets, keypoint_set)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev = COCOeval(coco_gt, coco_gt.loadRes([dict(d) for d in dets]) if dets else None, "keypoints")
        ev.params.imgIds = list(image_ids)
        ev.params.kpt_oks_sigmas = keypoint_set.sigmas_array()
        if oks_thresholds is not None:
            ev.params.iouThrs = np.asarray(oks_thresholds, dtype=float)
        if dets:
            ev.evaluate()
            ev.accumulate()
            if summarize:
                ev.summarize()
    return ev, buf.getvalue()


def score_results(ann_file, results: list | str | Path, image_ids: list[int] | None = None,
                  keypoint_set: KeypointSet = COCO17, bootstrap: int = 0) -> dict:
    """Score COCO keypoint results with pycocotools ``COCOeval(iouType='keypoints')``.

    Args:
        ann_file: COCO keypoint annotation JSON path (or a ``pycocotools.coco.COCO`` already loaded).
        results: list of result dicts or a results JSON path (see :func:`load_results`).
        image_ids: evaluate only these images (COCOeval ``params.imgIds``); default all images of ``ann_file``.
        keypoint_set: keypoints and OKS sigmas of the results (COCO-17).
        bootstrap: when > 0, also a bootstrap of AP over images with this many resamples (seed 0;
            :func:`bootstrap_ap`), under ``"bootstrap"``.

    Returns:
        ``{"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"}`` floats in [0, 1] (-1 where the
        ground truth has no instance of that area range), plus ``"num_results"`` and ``"summary"`` (pycocotools'
        printed table, captured; nothing reaches stdout), and ``"bootstrap"`` if asked. Empty results score 0.

    Raises:
        InputError: unreadable annotation/results, results for images not in the annotation file, or a keypoint
            count different from the annotation's / the keypoint set's.
    """
    coco_gt = ann_file if hasattr(ann_file, "loadRes") else quiet_coco(ann_file)
    dets = load_results(results)
    ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(int(i) for i in image_ids)
    ev, text = coco_eval(coco_gt, dets, ids, keypoint_set, summarize=True)
    if not dets:
        metrics = {name: 0.0 for name in METRIC_NAMES}
        return {**metrics, "num_results": 0, "summary": "no results: every metric is 0"}
    metrics = {name: float(v) for name, v in zip(METRIC_NAMES, ev.stats)}
    summary = "\n".join(line for line in text.splitlines() if "Average" in line)
    extra = {"bootstrap": bootstrap_ap(ev, resamples=bootstrap)} if bootstrap > 0 else {}
    return {**metrics, "num_results": len(dets), "summary": summary, **extra}


def bootstrap_ap(ev, resamples: int = 200, seed: int = 0) -> dict:
    """How much of an AP figure is the choice of evaluation images: a bootstrap over images (Efron & Tibshirani,
    *An Introduction to the Bootstrap*, 1993, ch. 6).

    COCOeval's per-image matching (``evaluate()``) is not repeated: each resample draws the evaluated images with
    replacement and reruns only ``accumulate()`` over the drawn images' per-image records, so a drawn-twice image
    counts twice (its ground truth and its detections both). 200 resamples of 874 images take about 30 s on one core.

    Args:
        ev: a ``COCOeval`` after ``evaluate()`` (from :func:`coco_eval` with results), default OKS thresholds.
        resamples: number of resamples, ≥ 2.
        seed: NumPy RNG seed; the same seed gives the same figures.

    Returns:
        ``{"AP": the full set's AP, "std": standard deviation of the resampled APs, "ci95": [2.5 %, 97.5 %
        quantiles], "resamples", "seed", "images"}``; AP values in [0, 1] (COCO's AP: OKS .50:.95, all areas, 20
        detections per image).

    Raises:
        ValueError: ``resamples`` < 2, or ``ev`` was not evaluated.
    """
    if resamples < 2:
        raise ValueError("resamples must be at least 2")
    if not getattr(ev, "evalImgs", None) or not getattr(ev, "eval", None):
        raise ValueError("bootstrap_ap needs a COCOeval after evaluate() and accumulate()")
    n_img = len(ev._paramsEval.imgIds)
    rng = np.random.default_rng(seed)
    aps = np.array([resampled_ap(ev, rng.integers(0, n_img, size=n_img)) for _ in range(resamples)])
    return {"AP": mean_ap(ev.eval["precision"]), "std": float(aps.std(ddof=1)),
            "ci95": [float(np.quantile(aps, 0.025)), float(np.quantile(aps, 0.975))],
            "resamples": int(resamples), "seed": int(seed), "images": int(n_img)}


def paired_bootstrap_ap(ev_a, ev_b, resamples: int = 200, seed: int = 0) -> dict:
    """Is B's AP above A's beyond the choice of evaluation images? A paired bootstrap over images of AP_B − AP_A.

    Both ``COCOeval`` s must cover the same images in the same order (two models on one annotation file). Each
    resample draws the images once, with replacement, and scores *both* runs on that same draw (as
    :func:`bootstrap_ap`, only ``accumulate()`` reruns), so what the two runs share (hard images, crowded images)
    cancels in the difference: its interval is much narrower than the two separate AP intervals suggest
    (Efron & Tibshirani 1993, ch. 6; Koehn 2004, "Statistical significance tests for machine translation evaluation",
    for the paired form).

    Args:
        ev_a, ev_b: evaluated and accumulated ``COCOeval`` s (:func:`coco_eval` with results), default OKS thresholds.
        resamples: number of resamples, ≥ 2. seed: NumPy RNG seed (the same seed draws the same images).

    Returns:
        ``{"AP_a", "AP_b", "delta": AP_b − AP_a on all images, "std": standard deviation of the resampled
        differences, "ci95": [2.5 %, 97.5 %] quantiles of the differences, "b_better": share of resamples where
        AP_b > AP_a, "resamples", "seed", "images"}``; AP values in [0, 1].

    Raises:
        ValueError: ``resamples`` < 2, either run not evaluated, or the two runs' images differ.
    """
    if resamples < 2:
        raise ValueError("resamples must be at least 2")
    for ev in (ev_a, ev_b):
        if not getattr(ev, "evalImgs", None) or not getattr(ev, "eval", None):
            raise ValueError("paired_bootstrap_ap needs two COCOevals after evaluate() and accumulate()")
    ids_a, ids_b = list(ev_a._paramsEval.imgIds), list(ev_b._paramsEval.imgIds)
    if ids_a != ids_b:
        raise ValueError(f"the two runs cover different images ({len(ids_a)} and {len(ids_b)}): a paired bootstrap "
                         "needs the same images")
    n_img = len(ids_a)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        pick = rng.integers(0, n_img, size=n_img)
        diffs.append(resampled_ap(ev_b, pick) - resampled_ap(ev_a, pick))
    diffs = np.array(diffs)
    ap_a, ap_b = mean_ap(ev_a.eval["precision"]), mean_ap(ev_b.eval["precision"])
    return {"AP_a": ap_a, "AP_b": ap_b, "delta": ap_b - ap_a, "std": float(diffs.std(ddof=1)),
            "ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
            "b_better": float((diffs > 0).mean()), "resamples": int(resamples), "seed": int(seed),
            "images": int(n_img)}


def resampled_ap(ev, pick: np.ndarray) -> float:
    """AP of an evaluated ``COCOeval`` over a multiset of its images: ``pick`` (n,) holds positions in
    ``ev.params.imgIds`` (repeats allowed; a repeated image counts as many times). Only ``accumulate()`` reruns.
    Equals the AP of a full evaluation of the same images duplicated under new ids (tested)."""
    import copy

    per_image = ev.evalImgs  # index (category * n_areas + area) * n_images + image, as COCOeval builds it
    n_img = len(ev._paramsEval.imgIds)
    n_blocks = len(per_image) // n_img
    boot = copy.copy(ev)
    boot.params = copy.copy(ev.params)
    boot.params.imgIds = list(range(len(pick)))  # positions: accumulate() needs only their count and order
    boot._paramsEval = copy.copy(boot.params)
    boot.evalImgs = [per_image[b * n_img + int(j)] for b in range(n_blocks) for j in pick]
    with contextlib.redirect_stdout(io.StringIO()):
        boot.accumulate()
    return mean_ap(boot.eval["precision"])


def mean_ap(precision: np.ndarray) -> float:
    """COCOeval's AP from ``eval['precision']`` [T, R, K, A, M]: mean over OKS thresholds, recall points and
    categories of the defined entries (> -1), all areas (index 0), the largest max-detections setting."""
    p = precision[:, :, :, 0, -1]
    p = p[p > -1]
    return float(p.mean()) if p.size else -1.0

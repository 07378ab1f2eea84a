"""``kanpose eval coco --analyze`` and ``kanpose eval compare``: keypoint error diagnosis after Ronchi & Perona
(ICCV 2017), checked on the real coco-mini val2017 ground truth with planted errors."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.coco import quiet_coco
from kanpose_cli.core.evaluation import analysis as A
from kanpose_cli.core.evaluation import evaluator
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.keypoints import COCO17

ANN = "annotations/person_keypoints_val2017.json"
SIGMAS = COCO17.sigmas_array()
runner = CliRunner()

# Planted errors on coco-mini val2017 persons (annotation ids; every person has ≥ 8 labelled keypoints and gets
# only one kind of error). Jitter: moved along x to ks 0.55 (two per person, so OKS < 0.95 and AP drops).
JITTER = [(230831, 0), (230831, 5), (1710500, 9), (1710500, 16), (209396, 7), (209396, 8)]
INVERSION = [(1221298, (5, 6)), (1221298, (15, 16)), (488820, (13, 14))]  # left/right exchanged
SWAP = [(1256641, 9, 1263909), (1279276, 11, 1256641), (513633, 0, 495849)]  # (person, keypoint, neighbour)
MISS = [(201384, 10), (201384, 15), (423477, 7), (472373, 12)]  # sent 2·sqrt(area)+100 px right, sqrt(area) down
DROPPED = 519606  # no detection: a false negative
DUPLICATE_OF = 426612  # a second detection of this person, every keypoint at ks 0.9, scored above the original
N_BACKGROUND = 4  # detections on images without any annotation


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    return lines[0]


@functools.lru_cache(maxsize=None)
def _coco(path: str):
    return quiet_coco(path)


def ks_of(p, q, area, k) -> float:
    return float(A.keypoint_similarity(np.asarray(p), np.asarray(q), area, SIGMAS[k]))


def planted_results(coco) -> tuple[list[dict], dict[tuple[int, int], str], dict]:
    """COCO results = the ground truth with the planted errors; returns (results, {(result index, keypoint):
    class} for every planted keypoint error, {"result_of": {ann id: result index}, "sizes": {ann id: size}})."""
    anns = sorted((a for a in coco.loadAnns(coco.getAnnIds()) if not a["iscrowd"] and a["num_keypoints"] > 0),
                  key=lambda a: (a["image_id"], a["id"]))
    by_id = {a["id"]: a for a in anns}
    rng = np.random.default_rng(0)
    res = {a["id"]: {"image_id": a["image_id"], "category_id": 1, "keypoints": [float(v) for v in a["keypoints"]],
                     "score": float(rng.uniform(0.3, 0.95))} for a in anns}

    def gt(aid, k):
        return np.array(by_id[aid]["keypoints"][3 * k:3 * k + 2], dtype=float)

    def put(aid, k, p):
        res[aid]["keypoints"][3 * k:3 * k + 2] = [float(p[0]), float(p[1])]

    planted: dict[tuple[int, int], str] = {}
    for aid, k in JITTER:
        d = np.sqrt(-2 * np.log(0.55) * by_id[aid]["area"] * (2 * SIGMAS[k]) ** 2)
        put(aid, k, gt(aid, k) + [d, 0])
        planted[aid, k] = "jitter"
    for aid, (left, right) in INVERSION:
        assert ks_of(gt(aid, right), gt(aid, left), by_id[aid]["area"], left) < 0.4  # far enough apart
        pl, pr = gt(aid, left), gt(aid, right)
        put(aid, left, pr)
        put(aid, right, pl)
        planted[aid, left] = planted[aid, right] = "inversion"
    for aid, k, other in SWAP:
        target = gt(other, k)
        assert by_id[other]["image_id"] == by_id[aid]["image_id"]
        assert ks_of(target, gt(aid, k), by_id[aid]["area"], k) < 0.4
        assert ks_of(target, gt(aid, COCO17.flip_index[k]), by_id[aid]["area"], k) < 0.4
        put(aid, k, target)
        planted[aid, k] = "swap"
    for aid, k in MISS:
        s = np.sqrt(by_id[aid]["area"])
        p = gt(aid, k) + [2 * s + 100, s]
        for other in (a for a in anns if a["image_id"] == by_id[aid]["image_id"]):  # near no body part
            assert all(ks_of(p, gt(other["id"], j), other["area"], k) < 0.5 for j in range(17))
        put(aid, k, p)
        planted[aid, k] = "miss"
    del res[DROPPED]
    dup = dict(res[DUPLICATE_OF], keypoints=list(res[DUPLICATE_OF]["keypoints"]), score=0.99)
    for k in range(17):
        if by_id[DUPLICATE_OF]["keypoints"][3 * k + 2] > 0:
            d = np.sqrt(-2 * np.log(0.9) * by_id[DUPLICATE_OF]["area"] * (2 * SIGMAS[k]) ** 2)
            dup["keypoints"][3 * k] += d
    order = list(res)
    results = [res[aid] for aid in order] + [dup]
    annotated = {a["image_id"] for a in coco.loadAnns(coco.getAnnIds())}
    empty = sorted(set(coco.getImgIds()) - annotated)[:N_BACKGROUND]
    pose = [float(v) for v in by_id[1221298]["keypoints"]]
    results += [{"image_id": i, "category_id": 1, "keypoints": pose, "score": 0.99} for i in empty]
    index = {aid: n for n, aid in enumerate(order)}
    return (results, {(index[aid], k): c for (aid, k), c in planted.items()},
            {"result_of": index, "duplicate": len(order),
             "size": {aid: A._size_of(by_id[aid]["area"]) for aid in by_id}, "order": order})


@pytest.fixture(scope="module")
def planted(coco_mini):
    coco = _coco(str(coco_mini / ANN))
    results, truth, info = planted_results(coco)
    return coco, results, truth, info, A.analyze(coco, results)


# ------------------------------------------------------------------------------------------------ units
def test_max_weight_assignment_equals_brute_force():
    rng = np.random.default_rng(1)
    for shape in ((1, 1), (3, 3), (4, 2), (2, 5), (5, 5), (6, 4)):
        w = rng.uniform(size=shape)
        pairs = A.max_weight_assignment(w)
        assert len(pairs) == min(shape) and len({r for r, _ in pairs}) == len({c for _, c in pairs}) == min(shape)
        small = range(min(shape))
        best = max(sum(w[(i, j) if shape[0] <= shape[1] else (j, i)] for i, j in zip(small, perm, strict=True))
                   for perm in itertools.permutations(range(max(shape)), min(shape)))
        assert sum(w[r, c] for r, c in pairs) == pytest.approx(best)
    assert A.max_weight_assignment(np.zeros((0, 3))) == []


def test_class_thresholds_follow_the_paper():
    """ks ≥ .85 good, .5 ≤ ks < .85 jitter, below .5: inversion / swap when ≥ .5 to the mirror / a neighbour."""
    K, area = 17, 10_000.0
    gt = np.zeros((2, K, 2))
    gt[0, :, 0] = np.arange(K) * 100.0  # person 0: keypoints 100 px apart on a line
    gt[1] = gt[0] + [0.0, 1000.0]  # person 1: far below
    vis = np.full((2, K), 2.0)
    areas = np.array([area, area])

    def dist(ks, k):  # distance giving keypoint similarity ks for keypoint k
        return np.sqrt(-2 * np.log(ks) * area * (2 * SIGMAS[k]) ** 2)

    pred = gt[0].copy()
    pred[1, 0] += dist(0.8501, 1)  # just above .85 -> good
    pred[2, 0] += dist(0.8499, 2)  # just below -> jitter
    pred[3, 0] += dist(0.5001, 3)  # just above .5 -> jitter
    pred[4, 0] += dist(0.4999, 4)  # just below .5, nothing near -> miss
    pred[5] = gt[0, 6] + [dist(0.6, 5), 0]  # left shoulder near the right shoulder -> inversion
    pred[7] = gt[1, 7]  # left elbow on the other person's left elbow -> swap
    pred[9] = gt[1, 10]  # left wrist on the other person's right wrist -> swap (mirror of a neighbour)
    classes, ks = A.classify_keypoints(pred, gt, vis, areas, 0, SIGMAS, COCO17.flip_index)
    names = [A.CLASSES[c] for c in classes]
    assert names[1] == "good" and names[2] == "jitter" and names[3] == "jitter" and names[4] == "miss"
    assert names[5] == "inversion" and names[7] == "swap" and names[9] == "swap"
    assert names[0] == "good" and ks[0] == pytest.approx(1.0)
    vis[0, 11] = 0
    classes, ks = A.classify_keypoints(pred, gt, vis, areas, 0, SIGMAS, COCO17.flip_index)
    assert classes[11] == A.UNLABELLED and np.isnan(ks[11])


def test_oks_equals_pycocotools(planted):
    """Our ks/OKS are pycocotools' computeOks: same matrix on a crowded real image (13 persons)."""
    from pycocotools.cocoeval import COCOeval

    coco, results, _, _, _ = planted
    img = 217285
    dets = [dict(d) for d in results if d["image_id"] == img]
    ev = COCOeval(coco, coco.loadRes(dets), "keypoints")
    ev.params.imgIds = [img]
    ev._prepare()
    theirs = ev.computeOks(img, 1)  # rows: detections by score, columns: ev._gts order
    order = np.argsort([-d["score"] for d in dets], kind="mergesort")
    g = A._image_gt(coco, img, 17)
    keep = [j for j, a in enumerate(ev._gts[img, 1]) if a["id"] in g.ids]  # the crowd region is not diagnosed
    assert len(keep) == len(g.ids) == 13 and len(ev._gts[img, 1]) == 14
    cols = [g.ids.index(ev._gts[img, 1][j]["id"]) for j in keep]
    kp = np.array([dets[i]["keypoints"] for i in order], dtype=float).reshape(len(dets), 17, 3)[..., :2]
    ours = A.oks_matrix(kp, g.xy, g.vis, g.areas, SIGMAS)[:, cols]
    np.testing.assert_allclose(ours, theirs[:, keep], rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------ planted errors
def test_planted_errors_land_in_their_class(planted):
    coco, results, truth, info, an = planted
    got = {}
    for m in an.matches:
        for k in np.flatnonzero(m.classes > A.GOOD):
            got[m.result_index, int(k)] = A.CLASSES[m.classes[k]]
    assert got == truth  # every planted keypoint in its own class, and nothing else is an error

    kp = an.report["keypoints"]
    assert {c: kp["all"][c] for c in A.KEYPOINT_ERRORS} == {"miss": 4, "swap": 3, "inversion": 6, "jitter": 6}
    labelled = sum(int(np.sum(m.classes >= 0)) for m in an.matches)
    assert kp["all"]["labelled"] == labelled and kp["all"]["good"] == labelled - 19
    for size in ("medium", "large"):  # the per-size counts follow the planted persons' areas
        want = {c: sum(1 for (n, _), cls in truth.items() if cls == c and info["size"][info["order"][n]] == size)
                for c in A.KEYPOINT_ERRORS}
        assert {c: kp[size][c] for c in A.KEYPOINT_ERRORS} == want
    assert kp["medium"]["labelled"] + kp["large"]["labelled"] <= labelled

    rows = {r["keypoint"]: r for r in an.report["per_keypoint"]}
    assert rows["left_ankle"]["inversion"] == 1 and rows["right_ankle"]["inversion"] == 1
    assert rows["right_wrist"]["miss"] == 1 and rows["left_wrist"]["swap"] == 1 and rows["nose"]["swap"] == 1

    det, persons = an.report["detections"], an.report["persons"]
    assert det["total"] == len(results) == 67 + 1 + N_BACKGROUND
    assert det["background_fp"] == N_BACKGROUND and len(an.background_fp) == N_BACKGROUND
    assert det["duplicate"] == 1 and an.duplicates == [info["result_of"][DUPLICATE_OF]]  # the exact one lost
    assert det["matched"] == 67 and persons == {"total": 68, "matched": 67, "false_negative": 1}
    assert an.false_negative == [DROPPED]
    assert an.report["scoring_errors"] == 1  # the duplicate outscores the better (exact) detection
    dup = next(m for m in an.matches if m.result_index == info["duplicate"])
    assert dup.gt_id == DUPLICATE_OF and dup.oks == pytest.approx(0.9) and int(np.sum(dup.classes > A.GOOD)) == 0


def test_corrections_bring_ap_back_to_one(planted, coco_mini):
    coco, results, _, _, an = planted
    steps = {s["step"]: s for s in an.report["ap_steps"]}
    assert list(steps) == list(A.STEPS)
    reference = evaluator.score_results(coco, results)
    for key in ("AP", "AP50", "AP75", "APM", "APL"):
        assert steps["original"][key] == pytest.approx(reference[key], abs=1e-12)
    ap = [steps[s]["AP"] for s in A.STEPS]
    assert ap[0] < 0.95
    for before, after, step in zip(ap, ap[1:], A.STEPS[1:], strict=False):
        if step in A.KEYPOINT_ERRORS or step in ("score", "false_negative"):
            assert after > before, (step, before, after)  # every planted error type costs AP
        else:
            assert after >= before, (step, before, after)
    final = steps["false_negative"]
    assert {k: round(final[k], 3) for k in ("AP", "AP50", "AP75", "AP10", "APM", "APL")} == dict.fromkeys(
        ("AP", "AP50", "AP75", "AP10", "APM", "APL"), 1.0)
    curves = an.report["pr_curves"]
    assert len(curves["recall"]) == 101 and set(curves["oks"]) == {"0.75", "0.50", "0.10"}
    assert all(v == 1.0 for v in curves["oks"]["0.75"]["false_negative"])


def test_ground_truth_has_no_error(coco_mini):
    coco = _coco(str(coco_mini / ANN))
    gt = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
          for a in coco.loadAnns(coco.getAnnIds()) if not a["iscrowd"] and a["num_keypoints"] > 0]
    an = A.analyze(coco, gt)
    assert an.report["keypoints"]["all"]["good"] == an.report["keypoints"]["all"]["labelled"] > 600
    assert all(s["AP"] == pytest.approx(1.0) for s in an.report["ap_steps"] + an.report["ap_alone"])
    assert an.report["detections"]["background_fp"] == an.report["persons"]["false_negative"] == 0


def test_image_subset_and_bad_input(planted):
    coco, results, _, _, _ = planted
    ids = [217285, 350679, 139]
    an = A.analyze(coco, results, image_ids=ids)
    assert an.report["ap_steps"][0]["AP"] == pytest.approx(evaluator.score_results(coco, results, ids)["AP"])
    assert {m.image_id for m in an.matches} <= set(ids) and an.report["num_images"] == 3
    with pytest.raises(InputError, match="no detections"):
        A.analyze(coco, [])
    with pytest.raises(InputError, match="17 COCO keypoints"):
        A.analyze(coco, [dict(results[0], keypoints=[0.0] * 15)])
    with pytest.raises(InputError, match="not in the annotation file"):
        A.analyze(coco, [dict(results[0], image_id=1)])


# ------------------------------------------------------------------------------------------------ CLI
def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def test_cli_analyze_writes_json_tables_and_plots(planted, coco_mini, tmp_path):
    coco, results, _, _, an = planted
    res_file = tmp_path / "planted.json"
    res_file.write_text(json.dumps(results))
    r = invoke("eval", "coco", "--data", coco_mini, "--results", res_file, "--analyze", "--save-dir", tmp_path / "r")
    assert r.exit_code == 0, r.output
    run = tmp_path / "r" / "exp1"
    report = json.loads((run / "analysis.json").read_text())
    assert report["keypoints"] == an.report["keypoints"] and report["ap_steps"] == an.report["ap_steps"]
    for head in ("jitter", "inversion", "+ false negatives", "background false positives", "left_ankle"):
        assert head in r.output
    assert "1.000" in r.output and f"{an.report['ap_steps'][0]['AP']:.3f}" in r.output  # AP as a fraction
    assert report["plots"] == {"pr_curves": "pr_error_curves.png", "keypoint_errors": "keypoint_errors.png",
                               "worst_examples": "worst_examples.png"}
    for name in report["plots"].values():
        image = _png(run / name)
        assert min(image.shape[:2]) > 300 and image.std() > 10  # a real picture, not a blank canvas
    assert len(report["worst"]) == 12 and {e for w in report["worst"] for e in w["errors"]} == set(A.KEYPOINT_ERRORS)

    # --ann without --images: the analysis runs, the worst-examples grid is skipped and says why
    r = invoke("eval", "coco", "--ann", coco_mini / ANN, "--results", res_file, "--analyze",
               "--save-dir", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert "give the images folder" in r.output and not (tmp_path / "r" / "exp2" / "worst_examples.png").exists()


def test_cli_compare_two_runs(planted, coco_mini, tmp_path):
    coco, results, _, _, an = planted
    gt = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
          for a in coco.loadAnns(coco.getAnnIds()) if not a["iscrowd"] and a["num_keypoints"] > 0]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "planted.json").write_text(json.dumps(results))
    r = invoke("eval", "coco", "--data", coco_mini, "--results", tmp_path / "gt.json", "--analyze",
               "--save-dir", tmp_path / "a")
    assert r.exit_code == 0, r.output
    r = invoke("eval", "coco", "--data", coco_mini, "--results", tmp_path / "planted.json",  # no --analyze
               "--save-dir", tmp_path / "b")
    assert r.exit_code == 0, r.output
    r = invoke("eval", "compare", tmp_path / "a" / "exp1", tmp_path / "b" / "exp1", "--save-dir", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert "a/exp1" in r.output and "b/exp1" in r.output  # both columns (same folder names -> parent shown)
    assert "analysed now" in r.output  # run b had no analysis.json
    ap_b = an.report["ap_steps"][0]["AP"]
    assert f"{ap_b:.3f}" in r.output and f"{ap_b - 1:+.3f}" in r.output and "1.000" in r.output  # AP fractions
    out = json.loads((tmp_path / "c" / "compare1" / "compare.json").read_text())
    assert out["metrics"]["AP"][0] == pytest.approx(1.0) and out["metrics"]["AP"][1] == pytest.approx(ap_b)
    assert out["keypoints"]["miss"][0] == 0 and out["keypoints"]["miss"][2] > 0
    assert out["detections"]["background_fp"] == [0, N_BACKGROUND, N_BACKGROUND]
    image = _png(tmp_path / "c" / "compare1" / "pr_compare.png")
    assert image.std() > 10
    assert not (tmp_path / "b" / "exp1" / "analysis.json").exists()  # compare writes nothing into the runs


def test_cli_compare_bad_input(coco_mini, tmp_path):
    r = invoke("eval", "compare", tmp_path / "nope", tmp_path)
    assert r.exit_code == 1 and "run folder not found" in one_line_error(r)
    (tmp_path / "empty").mkdir()
    r = invoke("eval", "compare", tmp_path / "empty", tmp_path / "empty")
    assert r.exit_code == 1 and "no metrics.json" in one_line_error(r)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"AP": 0.5, "settings": {}}))
    r = invoke("eval", "compare", run, run)
    assert r.exit_code == 1 and "--analyze" in one_line_error(r)
    (run / "analysis.json").write_text("{not json")
    r = invoke("eval", "compare", run, run)
    assert r.exit_code == 1 and "cannot read" in one_line_error(r)


def test_cli_analyze_bad_results(coco_mini, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 139, "category_id": 1, "keypoints": [1.0, 2.0, 1.0] * 5,
                                "score": 0.5}]))
    r = invoke("eval", "coco", "--data", coco_mini, "--results", bad, "--analyze", "--save-dir", tmp_path)
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]  # after the settings header
    assert r.exit_code == 1 and len(errors) == 1 and "keypoints" in errors[0] and "Traceback" not in r.output


def test_errors_by_view_counts_the_planted_limb_errors(planted):
    """benchmarks/errors_by_view.py: the planted inversions (3 pairs = 6 limb keypoints) and limb misses land in the
    groups of their persons (by nose label and size) and in the per-keypoint table."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("errors_by_view", Path(__file__).parents[1] / "benchmarks"
                                                  / "errors_by_view.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    coco, _, _, info, an = planted
    counts = module.errors_by_view(an)
    groups, per_kp = counts["groups"], counts["per_keypoint"]
    assert groups["all"]["inversion"] == 6 and groups["all"]["persons"] == len(an.matches)
    limb_misses = sum(1 for _, k in MISS if k >= 5)
    assert groups["all"]["miss"] == limb_misses
    assert groups["face labelled"]["persons"] + groups.get("no nose", {"persons": 0})["persons"] <= len(an.matches)
    assert sum(groups[s]["persons"] for s in ("small", "medium", "large") if s in groups) == len(an.matches)
    for aid, pair in INVERSION:
        nose_labelled = coco.anns[aid]["keypoints"][2] > 0
        assert groups["face labelled" if nose_labelled else "no nose"]["inversion"] >= 2
        for k in pair:
            assert per_kp[COCO17.names[k]]["inversion"] >= 1
    assert sum(c["inversion"] for c in per_kp.values()) == 6
    assert sum(c["labelled"] for c in per_kp.values()) == groups["all"]["labelled"]

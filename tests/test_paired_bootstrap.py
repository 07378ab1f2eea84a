"""Paired bootstrap of an AP difference (``kanpose eval compare --bootstrap``), on coco-mini val2017's real ground
truth with keypoints moved by known amounts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.coco import quiet_coco
from kanpose_cli.core.evaluation.coco_metric import bootstrap_ap, coco_eval, paired_bootstrap_ap, score_results

ANN = "annotations/person_keypoints_val2017.json"
runner = CliRunner()


def noisy_results(coco, sigma_px: float, seed: int) -> list[dict]:
    """Every labelled person of the ground truth as a result, its labelled keypoints moved by N(0, sigma_px²)."""
    rng = np.random.default_rng(seed)
    out = []
    for a in coco.loadAnns(coco.getAnnIds()):
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        kp = np.array(a["keypoints"], float).reshape(17, 3)
        kp[:, :2] += rng.normal(0, sigma_px, (17, 2)) * (kp[:, 2:] > 0)
        kp[:, 2] = 1.0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
    return out


@pytest.fixture(scope="module")
def two_models(coco_mini):
    coco = quiet_coco(str(coco_mini / ANN))
    ids = sorted(coco.getImgIds())
    worse, better = noisy_results(coco, 9.0, 1), noisy_results(coco, 6.0, 2)
    return coco, ids, worse, better


def test_same_run_twice_differs_by_nothing(two_models):
    coco, ids, worse, _ = two_models
    ev = coco_eval(coco, worse, ids)[0]
    pb = paired_bootstrap_ap(ev, ev, resamples=20, seed=3)
    assert pb["delta"] == 0 and pb["ci95"] == [0.0, 0.0] and pb["std"] == 0 and pb["b_better"] == 0
    assert pb["images"] == len(ids) == 79


def test_a_real_difference_is_found_and_the_pairing_narrows_it(two_models):
    coco, ids, worse, better = two_models
    ev_a, ev_b = coco_eval(coco, worse, ids)[0], coco_eval(coco, better, ids)[0]
    pb = paired_bootstrap_ap(ev_a, ev_b, resamples=100, seed=0)
    ap_a, ap_b = score_results(coco, worse, ids)["AP"], score_results(coco, better, ids)["AP"]
    assert pb["AP_a"] == pytest.approx(ap_a, abs=1e-12) and pb["AP_b"] == pytest.approx(ap_b, abs=1e-12)
    assert pb["delta"] == pytest.approx(ap_b - ap_a, abs=1e-12) and pb["delta"] > 0.05
    lo, hi = pb["ci95"]
    assert 0 < lo < pb["delta"] < hi and pb["b_better"] == 1.0
    # what the two runs share cancels: the difference varies less than two independent AP figures would
    sa, sb = bootstrap_ap(ev_a, 100, seed=0)["std"], bootstrap_ap(ev_b, 100, seed=0)["std"]
    assert pb["std"] < 0.8 * np.hypot(sa, sb)
    # the same seed draws the same images; swapping A and B flips the sign
    assert paired_bootstrap_ap(ev_a, ev_b, resamples=100, seed=0) == pb
    swapped = paired_bootstrap_ap(ev_b, ev_a, resamples=100, seed=0)
    assert swapped["delta"] == pytest.approx(-pb["delta"]) and swapped["ci95"] == pytest.approx([-hi, -lo])


def test_different_images_or_too_few_resamples_are_refused(two_models):
    coco, ids, worse, better = two_models
    ev_a, ev_b = coco_eval(coco, worse, ids)[0], coco_eval(coco, better, ids[:40])[0]
    with pytest.raises(ValueError, match="different images"):
        paired_bootstrap_ap(ev_a, ev_b)
    with pytest.raises(ValueError, match="at least 2"):
        paired_bootstrap_ap(ev_a, ev_a, resamples=1)


def test_cli_compare_bootstrap(two_models, coco_mini, tmp_path):
    coco, _, worse, better = two_models
    for name, res in (("a", worse), ("b", better)):
        (tmp_path / f"{name}.json").write_text(json.dumps(res))
        r = runner.invoke(app, ["eval", "coco", "--data", str(coco_mini), "--results", str(tmp_path / f"{name}.json"),
                                "--save-dir", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", "compare", str(tmp_path / "a" / "exp1"), str(tmp_path / "b" / "exp1"),
                            "--bootstrap", "40", "--save-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "c" / "compare1" / "compare.json").read_text())
    pb = out["paired_bootstrap"]
    assert pb["delta"] == pytest.approx(out["metrics"]["AP"][2], abs=1e-9) and pb["ci95"][0] > 0
    assert pb["resamples"] == 40 and "B above A beyond the image noise" in " ".join(r.output.split())
    # scored on another annotation file: refused in one line
    other = tmp_path / "other.json"
    other.write_text((coco_mini / ANN).read_text())
    metrics = json.loads((tmp_path / "b" / "exp1" / "metrics.json").read_text())
    metrics["settings"]["ann_file"] = str(other)
    (tmp_path / "b" / "exp1" / "metrics.json").write_text(json.dumps(metrics))
    r = runner.invoke(app, ["eval", "compare", str(tmp_path / "a" / "exp1"), str(tmp_path / "b" / "exp1"),
                            "--bootstrap", "40", "--save-dir", str(tmp_path / "c")])
    assert r.exit_code == 1 and "different annotation files" in r.output
    r = runner.invoke(app, ["eval", "compare", str(tmp_path / "a" / "exp1"), str(tmp_path / "a" / "exp1"),
                            "--bootstrap", "1", "--save-dir", str(tmp_path / "c")])
    assert r.exit_code == 2 and "at least 2" in r.output

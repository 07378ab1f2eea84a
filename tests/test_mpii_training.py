"""mmpose's MPII JSON as users have it (issue 33, item 2): one reader (``core/data/mpii.py``) for ``kanpose train`` and
``kanpose eval mpii``; ``infer_format`` tells an MPII JSON (a list) from a COCO JSON (an object); an MPII training
source gives the model the ``mpii16`` set, or maps onto COCO-17 through the declared mapping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from kanpose_cli.cli.app import app
from kanpose_cli.core.data.mpii import MPII16, load_mpii_instances, read_mpii_json
from kanpose_cli.core.data.training_sets import (DataSource, default_keypoint_set, infer_format, load_sources,
                                                 source_keypoint_set)
from kanpose_cli.core.errors import InputError
from kanpose_cli.core.evaluation import benchmarks
from kanpose_cli.core.keypoints import COCO17, LSP14

MPII_ANN = SHARED_DATA / "keypoint-sets" / "mpii" / "test_mpii.json"
MPII_IMAGES = MPII_ANN.parent
SIZES = {"005808361.jpg": (1280, 720), "052475643.jpg": (854, 480), "051423444.jpg": (1280, 720),
         "004645041.jpg": (1280, 720), "060754485.jpg": (1280, 720)}  # the sample's images, width x height
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "amfacpose-r18-128x96-coco-lsp.safetensors"


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    if not MPII_ANN.exists():
        pytest.skip(f"shared data not found: {MPII_ANN} (set KANPOSE_SHARED_DATA)")
    return json.loads(MPII_ANN.read_text())


def mmpose_box(entry: dict) -> np.ndarray:
    """mmpose ``MpiiDataset``: centre moved down by 15 / 200 of the box side 200 · scale, then − 1 (0-based)."""
    side = 200.0 * entry["scale"]
    cx, cy = entry["center"][0] - 1.0, entry["center"][1] + 15.0 / 200.0 * side - 1.0
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def test_reader_moves_joints_to_0_based_pixels_with_mmpose_boxes(entries):
    people = read_mpii_json(MPII_ANN)
    assert len(people) == 5 == len(entries)
    for n, (p, e) in enumerate(zip(people, entries)):
        assert p.index == n and p.image == e["image"] and p.headbox is None
        np.testing.assert_array_equal(p.joints, np.asarray(e["joints"]) - 1.0)
        assert p.labelled.tolist() == [v > 0 for v in e["joints_vis"]]
        np.testing.assert_allclose(p.box, mmpose_box(e), rtol=0, atol=1e-9)
    # the first person: centre (966, 340), scale 4.718488 -> side 943.6976, centre moved down 70.77732 px
    np.testing.assert_allclose(people[0].box, [493.1512, -62.07148, 1436.8488, 881.62612], atol=1e-4)
    assert people[2].labelled.sum() == 14 and not people[2].labelled[[0, 5]].any()  # its ankles unlabelled
    assert [p.index for p in read_mpii_json(MPII_ANN, max_entries=2)] == [0, 1]


def test_training_instances_on_mpii16(entries):
    got = load_mpii_instances(MPII_ANN, MPII_IMAGES, MPII16)
    assert [i.ann_id for i in got] == [1, 2, 3, 4, 5] and [i.image_id for i in got] == [1, 2, 3, 4, 5]
    for inst, e in zip(got, entries):
        w, h = SIZES[e["image"]]
        assert (inst.width, inst.height) == (w, h) and inst.image_path == str(MPII_IMAGES / e["image"])
        x1, y1, x2, y2 = mmpose_box(e)
        np.testing.assert_allclose(inst.box, [max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)], atol=1e-9)
        vis = np.asarray(e["joints_vis"]) > 0
        assert inst.keypoints.shape == (16, 3)
        np.testing.assert_array_equal(inst.keypoints[vis, :2], np.asarray(e["joints"])[vis] - 1.0)
        assert (inst.keypoints[vis, 2] == 2).all() and (inst.keypoints[~vis] == 0).all()
    np.testing.assert_allclose(got[0].box, [493.1512, 0.0, 1279.0, 719.0], atol=1e-4)  # clipped to the image
    assert (got[2].keypoints[:, 2] > 0).sum() == 14


def test_coco17_model_reads_the_limb_joints_through_the_declared_mapping(entries):
    got = load_mpii_instances(MPII_ANN, MPII_IMAGES, COCO17)
    assert len(got) == 5
    for inst, e in zip(got, entries):
        joints, vis = np.asarray(e["joints"]) - 1.0, np.asarray(e["joints_vis"]) > 0
        assert inst.keypoints.shape == (17, 3)
        assert (inst.keypoints[:5] == 0).all()  # nose, eyes, ears: MPII has none -> weight 0
        for c, name in enumerate(COCO17.names[5:], start=5):  # the 12 limb joints, matched by name
            m = MPII16.names.index(name)
            if vis[m]:
                np.testing.assert_array_equal(inst.keypoints[c], [*joints[m], 2.0])
            else:
                assert (inst.keypoints[c] == 0).all()
    assert (got[2].keypoints[:, 2] > 0).sum() == 10  # 12 limb joints less its two unlabelled ankles
    with pytest.raises(InputError, match="no joint mapping from mpii16 to lsp14"):
        load_mpii_instances(MPII_ANN, MPII_IMAGES, LSP14)


def test_infer_format_tells_mpii_list_from_coco_object(tmp_path, entries):
    assert infer_format(MPII_ANN) == "mpii"
    (tmp_path / "spaced.json").write_text("\n \t [" + json.dumps(entries)[1:])
    (tmp_path / "coco.json").write_text('  {"images": [], "annotations": []}')
    assert infer_format(tmp_path / "spaced.json") == "mpii"
    assert infer_format(tmp_path / "coco.json") == "coco"
    assert infer_format(tmp_path / "missing.json") == "coco"  # left to the COCO reader's one-line error
    src = DataSource(str(MPII_ANN), str(MPII_IMAGES))
    assert src.format == "mpii" and source_keypoint_set(src) is MPII16 and default_keypoint_set([src]) is MPII16
    instances, sizes = load_sources([src], COCO17, positional=True)  # --keypoint-set coco17: still by the mapping
    assert sizes == [5] and instances[0].keypoints.shape == (17, 3) and (instances[0].keypoints[:5] == 0).all()


def test_malformed_entries_name_the_file_and_the_entry(tmp_path, entries):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([entries[0], {**entries[1], "joints_vis": [1] * 15}]))
    with pytest.raises(InputError) as err:
        load_mpii_instances(bad, MPII_IMAGES, MPII16)
    assert str(err.value) == (f"{bad}: entry 1: joints must be 16 × [x, y], joints_vis 16 flags, center [x, y]; "
                              f"got [16, 2], [15], [2]")
    bad.write_text(json.dumps([entries[0], {k: v for k, v in entries[2].items() if k != "scale"}]))
    with pytest.raises(InputError, match=r"bad.json: entry 1: needs image, center, scale, joints and joints_vis"):
        read_mpii_json(bad)
    bad.write_text(json.dumps([{**entries[0], "scale": "big"}]))
    with pytest.raises(InputError, match=r"bad.json: entry 0: scale must be a number, got 'big'"):
        benchmarks.mpii_people(bad, MPII_IMAGES)
    bad.write_text(json.dumps([entries[0], {**entries[1], "image": "nowhere.jpg"}]))
    with pytest.raises(InputError, match=r"bad.json: entry 1: image .*nowhere.jpg not found"):
        load_mpii_instances(bad, MPII_IMAGES, MPII16)
    assert len(load_mpii_instances(bad, MPII_IMAGES, MPII16, check_files=False)) == 1
    bad.write_text("[]")
    with pytest.raises(InputError, match="bad.json: no persons"):
        read_mpii_json(bad)
    (tmp_path / "short.json").write_text(json.dumps([{**entries[0], "joints": entries[0]["joints"][:15]}]))
    res = CliRunner().invoke(app, ["train", "--train-ann", str(tmp_path / "short.json"), "--train-images",
                                   str(MPII_IMAGES), "--epochs", "1", "--device", "cpu", "--project", str(tmp_path)])
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and "short.json: entry 0: joints must be 16" in lines[0], res.output


def test_eval_reader_and_training_reader_agree(entries):
    """``eval mpii`` scores the joints and boxes the training reader gives (before clipping)."""
    people = benchmarks.mpii_people(MPII_ANN, MPII_IMAGES)
    for p, e in zip(people, read_mpii_json(MPII_ANN)):
        assert p.number == e.index + 1 and p.path == MPII_IMAGES / e.image
        np.testing.assert_array_equal(p.joints, e.joints)
        np.testing.assert_array_equal(p.box, e.box)
        head = np.hypot(*(e.joints[9] - e.joints[8]))  # no headbox: head top - upper neck
        assert p.norm == pytest.approx(head, rel=1e-12)


def test_kanpose_train_on_mpii_json_gives_an_mpii16_model(tmp_path, monkeypatch, entries):
    """``kanpose train --train-ann mpii.json`` (--init the shipped COCO-17 checkpoint, two steps, about 7 s on CPU):
    the model takes the ``mpii16`` set and its checkpoint card holds it."""
    from safetensors import safe_open

    from kanpose_cli.core.weights.card import read_model_card

    monkeypatch.setenv("COLUMNS", "300")
    res = CliRunner().invoke(app, ["train", "--train-ann", str(MPII_ANN), "--train-images", str(MPII_IMAGES),
                                   "--init", str(SHIPPED), "--epochs", "1", "--batch", "2", "--workers", "0", "-q",
                                   "--device", "cpu", "--project", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    assert "keypoints mpii16 (16) · 5 persons" in res.stderr
    run = tmp_path / "runs" / "exp1"
    last = run / "weights" / "last.safetensors"
    kset = read_model_card(last).keypoints()
    assert kset.name == "mpii16" and kset.names == MPII16.names and kset.flip_index == MPII16.flip_index
    with safe_open(str(last), "pt") as f:
        assert f.get_tensor("net.head.proj.weight").shape[0] == 16
    train = json.loads((run / "config.json").read_text())["data"]["train"]
    assert [s["format"] for s in train] == ["mpii"]

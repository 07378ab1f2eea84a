"""Video tracks: stable ``track_id`` per person (ultralytics' ByteTrack / BoT-SORT over kanpose's boxes), One-Euro
smoothing that measurably lowers a still person's jitter, ``tracks.csv``, corrupt frames, and usage errors.

The clips are made here from a real COCO photo (``000000311002.jpg``, two people) written as MJPEG AVI files:
``moving`` shifts and scales the photo frame by frame, ``still`` repeats it with ±3 grey levels of sensor noise, and
``corrupt`` is ``moving`` with the JPEG data of frame 6 overwritten. The default shipped checkpoint is only a smoke
checkpoint: its keypoints are near-meaningless but deterministic, which is what identity and jitter tests need.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.track.one_euro import KeypointSmoother, OneEuroFilter, smoothing_factor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
PHOTO = "000000311002.jpg"
FRAMES, FPS, BAD_FRAME = 12, 25.0, 6
SIZE = (640, 480)  # W, H


def _write_avi(path: Path, frames: list[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _place(img: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    h, w = img.shape[:2]
    W, H = SIZE
    m = np.array([[scale, 0, dx + (W - scale * w) / 2], [0, scale, dy + (H - scale * h) / 2]], np.float64)
    return cv2.warpAffine(img, m, SIZE, borderValue=(114, 114, 114))


@pytest.fixture(scope="module")
def clips(coco_mini, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    img = cv2.imread(str(coco_mini / "val2017" / PHOTO))
    moving = [_place(img, 0.80 + 0.15 * t / (FRAMES - 1), -20 + 4 * t, 20 - 2 * t) for t in range(FRAMES)]
    rng = np.random.default_rng(0)
    still = [np.clip(_place(img, 0.9, 0, 0).astype(np.int16) + rng.integers(-3, 4, (SIZE[1], SIZE[0], 3)),
                     0, 255).astype(np.uint8) for _ in range(FRAMES)]
    out = {"moving": _write_avi(folder / "moving.avi", moving), "still": _write_avi(folder / "still.avi", still)}
    data = bytearray(out["moving"].read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i] == 0xFF and data[i + 1] == 0xD8 and data[i + 2] == 0xFF]
    assert len(starts) == FRAMES  # one JPEG per frame
    for j in range(starts[BAD_FRAME] + 2, starts[BAD_FRAME + 1] - 64):
        data[j] = 0x00 if j % 2 else 0x13
    out["corrupt"] = folder / "corrupt.avi"
    out["corrupt"].write_bytes(bytes(data))
    return out


def _jsonl(path: Path) -> tuple[dict, list[dict]]:
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]


def _tracks(frames: list[dict]) -> dict[int, np.ndarray]:
    """``{track_id: (frames, 17, 2) keypoints}`` from JSON Lines frames written with ``--kpt-thr 0``."""
    out: dict[int, list] = {}
    for f in frames:
        for inst in f["instances"]:
            out.setdefault(inst["track_id"], []).append(np.array(inst["keypoints"], dtype=float))
    return {k: np.stack(v) for k, v in out.items()}


def jitter(kpts: np.ndarray) -> float:
    """Mean frame-to-frame keypoint displacement in pixels, (T, K, 2) -> float."""
    return float(np.linalg.norm(np.diff(kpts, axis=0), axis=-1).mean())


def predict(*args):
    r = runner.invoke(app, ["predict", *map(str, args)])
    assert "Traceback" not in r.output
    return r


# ---------------------------------------------------------------------------------------------- corrupt frames
def test_video_source_skips_a_corrupt_frame_and_goes_on(clips):
    from kanpose_cli.core.data.sources import open_source

    frames = list(open_source(str(clips["corrupt"])))
    assert [f.index for f in frames] == list(range(FRAMES))
    bad = [f for f in frames if f.image is None]
    assert [f.index for f in bad] == [BAD_FRAME] and "could not be decoded" in bad[0].error
    assert frames[BAD_FRAME + 1].time_s == pytest.approx((BAD_FRAME + 1) / FPS)


def test_cli_track_keeps_every_id_through_a_moving_clip_with_a_corrupt_frame(clips, tmp_path):
    """``--track --save-tracks`` on the shifted/scaled clip whose frame 6 is corrupt: frame 6 is reported and
    skipped (exit 1), every other frame is written, each person keeps one id from first to last frame, the drawn
    video and tracks.csv are written."""
    r = predict(clips["corrupt"], "--track", "--save-tracks", "--kpt-thr", "0", "--save-dir", tmp_path)
    assert r.exit_code == 1, r.output
    assert f"frame {BAD_FRAME} could not be decoded" in " ".join(r.output.split())
    assert f"1 of {FRAMES} frames could not be read" in " ".join(r.output.split())
    run = tmp_path / "exp1"
    head, frames = _jsonl(run / "corrupt.jsonl")
    assert head["tracker"] == "bytetrack" and head["smoothing"] is None
    assert [f["frame_id"] for f in frames] == [i for i in range(FRAMES) if i != BAD_FRAME]
    ids = [sorted(i["track_id"] for i in f["instances"]) for f in frames]
    assert ids[0] == [1, 2] and all(x == ids[0] for x in ids), ids  # two people, one id each, all frames
    for tid in ids[0]:  # and the id follows the same person: its box centre moves a few pixels per frame
        centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for f in frames for i in f["instances"]
                            if i["track_id"] == tid for b in [i["bbox"]]])
        assert np.linalg.norm(np.diff(centres, axis=0), axis=1).max() < 25
    cap = cv2.VideoCapture(str(run / "corrupt.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES - 1
    with open(run / "tracks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["frame", "time_s", "track_id", "keypoint", "x", "y", "score"]
    assert len(rows) == (FRAMES - 1) * 2 * 17
    assert {int(x["track_id"]) for x in rows} == {1, 2} and {int(x["frame"]) for x in rows} == \
        {i for i in range(FRAMES) if i != BAD_FRAME}
    assert rows[0]["keypoint"] == "nose" and float(rows[-1]["time_s"]) == pytest.approx((FRAMES - 1) / FPS)
    first = next(x for x in rows if x["track_id"] == "1" and x["keypoint"] == "left_wrist" and x["frame"] == "0")
    inst = next(i for i in frames[0]["instances"] if i["track_id"] == 1)
    assert [float(first["x"]), float(first["y"])] == inst["keypoints"][9]


@pytest.mark.parametrize("tracker", ["bytetrack", "botsort"])
def test_api_stream_tracks_with_both_ultralytics_trackers(clips, tracker):
    from kanpose_cli import PoseEstimator

    results = list(PoseEstimator().stream(clips["moving"], track=True, tracker=tracker))
    assert [r.frame_index for r in results] == list(range(FRAMES))
    ids = [sorted(r.track_ids.tolist()) for r in results]
    assert ids[0] == [1, 2] and all(x == ids[0] for x in ids), ids
    assert all(r.keypoints.shape == (2, 17, 2) for r in results)


# --------------------------------------------------------------------------------------------------- smoothing
def test_smooth_lowers_the_jitter_of_a_still_person(clips, tmp_path):
    """Two people standing still (the same photo, sensor noise only): with ``--smooth`` (defaults: min cutoff 1 Hz,
    beta 0.01 /px, d-cutoff 1 Hz; 25 fps) the mean frame-to-frame keypoint movement falls to under 60 % of the
    unsmoothed one for each person (measured with the phase-3 shipped model of 2026-12-03: 10.2 -> 4.3 px and
    0.49 -> 0.10 px). The first frame passes unchanged."""
    raw = predict(clips["still"], "--track", "--kpt-thr", "0", "--no-save", "--save-dir", tmp_path / "raw")
    smooth = predict(clips["still"], "--track", "--smooth", "--kpt-thr", "0", "--no-save", "--save-dir",
                     tmp_path / "smooth")
    assert raw.exit_code == 0 and smooth.exit_code == 0, raw.output + smooth.output
    _, raw_frames = _jsonl(tmp_path / "raw" / "exp1" / "still.jsonl")
    head, smooth_frames = _jsonl(tmp_path / "smooth" / "exp1" / "still.jsonl")
    assert head["smoothing"] == {"filter": "one-euro", "min_cutoff_hz": 1.0, "beta_per_px": 0.01, "d_cutoff_hz": 1.0}
    a, b = _tracks(raw_frames), _tracks(smooth_frames)
    assert sorted(a) == sorted(b) == [1, 2] and all(len(v) == FRAMES for v in a.values())
    for tid in a:
        ja, jb = jitter(a[tid]), jitter(b[tid])
        print(f"track {tid}: jitter {ja:.2f} px unsmoothed, {jb:.2f} px smoothed")
        assert ja > 0.3, "the still clip should jitter without smoothing"
        assert jb < 0.6 * ja, (tid, ja, jb)
        assert np.allclose(a[tid][0], b[tid][0], atol=0.011)
        # smoothing does not drift: the smoothed track stays near the unsmoothed mean position
        assert np.abs(b[tid].mean(0) - a[tid].mean(0)).mean() < 2.0


def test_one_euro_filter_follows_the_paper():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert np.array_equal(f(np.array([5.0, 7.0]), 0.0), [5.0, 7.0])  # first sample unchanged
    assert np.allclose(f(np.array([5.0, 7.0]), 0.1), [5.0, 7.0])  # a constant stays constant
    # beta = 0: a plain exponential low-pass at min_cutoff, alpha = 1 / (1 + 1 / (2 pi fc dt))
    a = smoothing_factor(1.0, 0.1)
    assert a == pytest.approx(1 / (1 + 1 / (2 * np.pi * 0.1)))
    assert np.allclose(f(np.array([15.0, 7.0]), 0.2), [5 + a * 10, 7.0])
    assert np.allclose(f(np.array([99.0, 99.0]), 0.2), [5 + a * 10, 7.0])  # same timestamp: previous output
    # beta > 0: a fast move raises the cutoff, so the output lags less than with beta = 0
    slow, fast = OneEuroFilter(1.0, 0.0), OneEuroFilter(1.0, 0.05)
    for t in range(5):
        x = np.array([100.0 * t])
        ys, yf = slow(x, t / 10), fast(x, t / 10)
    assert abs(400 - yf[0]) < abs(400 - ys[0])
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroFilter(beta=-1)
    sm = KeypointSmoother(1.0, 0.0, 1.0)
    k = np.zeros((2, 17, 2))
    sm(k, np.array([1, 2]), 0.0)
    out = sm(k + np.array([[[10.0, 0.0]]]).repeat(2, 0) * np.array([1, 0])[:, None, None], np.array([1, 2]), 0.1)
    assert np.allclose(out[0, :, 0], a * 10, atol=1e-5) and np.allclose(out[1], 0)  # one filter per track


def test_track_colours_the_drawn_boxes_per_id():
    from kanpose_cli.core.draw import track_colour
    from kanpose_cli.core.results import PoseResult

    r = PoseResult([[10, 10, 60, 90], [70, 10, 120, 90]], [1, 1], np.zeros((2, 17, 2)), np.zeros((2, 17)),
                   (100, 130), track_ids=[1, 2])
    img = r.plot(np.zeros((100, 130, 3), np.uint8), kpt_thr=1.0)
    assert tuple(img[60, 10]) == track_colour(1) and tuple(img[60, 70]) == track_colour(2)
    assert track_colour(1) != track_colour(2)


# ------------------------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize("args, message", [
    (["{image}", "--track"], "--track needs a video file or a webcam"),
    (["{folder}", "--track"], "--track needs a video file or a webcam"),
    (["{video}", "--smooth"], "it needs --track"),
    (["{video}", "--save-tracks"], "add --track"),
    (["{video}", "--track", "--tracker", "sort"], "unknown tracker"),
    (["{video}", "--track", "--smooth", "--min-cutoff", "0"], "min_cutoff > 0"),
])
def test_tracking_usage_errors_are_one_line(clips, coco_mini, tmp_path, args, message):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / PHOTO).symlink_to(coco_mini / "val2017" / PHOTO)
    subst = {"{image}": folder / PHOTO, "{folder}": folder, "{video}": clips["still"]}
    r = predict(*[subst.get(a, a) for a in args], "--weights", "random", "--detector", "none", "--save-dir",
                tmp_path / "out")
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in " ".join(r.stderr.split()), r.stderr
    assert not (tmp_path / "out").exists()


def test_api_track_on_a_folder_is_a_usage_error(coco_mini, tmp_path):
    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.errors import UsageError

    (tmp_path / PHOTO).symlink_to(coco_mini / "val2017" / PHOTO)
    est = PoseEstimator(weights="random", detector="none")
    with pytest.raises(UsageError, match="needs a video"):
        next(est.stream(tmp_path, track=True))
    with pytest.raises(UsageError, match="needs --track"):
        next(est.stream(tmp_path, smooth=True))

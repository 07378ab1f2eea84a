"""The streaming pipeline of issue 14: ``--det-every N`` (the person detector on every N-th video frame, tracked boxes
carried in between), the background reader (decoding overlapped with detection and pose), and the per-stage times.

The clip is made here from ultralytics' ``bus.jpg``: the left part of the photo (three people, one of them cut by the
image edge) placed in a 480×640 frame and moved 4 px right and 1 px down per frame, 12 frames, written as an MJPEG
AVI with ``cv2.VideoWriter``. YOLO11n finds the same three people in every frame (scores ≥ 0.39), so the run with a
detector on every frame is a stable reference.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.data.prefetch import Prefetcher
from kanpose_cli.core.data.sources import Frame, Source, open_source
from kanpose_cli.core.errors import InputError, UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
FRAMES, FPS, SIZE = 12, 25.0, (480, 640)  # SIZE: W, H
PERSONS = 3


def bus_jpg() -> Path:
    return Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"


def _frames() -> list[np.ndarray]:
    crop = cv2.imread(str(bus_jpg()))[300:1000, 0:420]
    return [cv2.warpAffine(crop, np.float32([[1, 0, 20 + 4 * t], [0, 1, 10 + t]]), SIZE,
                           borderValue=(114, 114, 114)) for t in range(FRAMES)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "bus_walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for f in _frames():
        writer.write(f)
    writer.release()
    return path


class SpyBoxes:
    """Wraps a box source and keeps every image it was asked about (a copy), in call order."""

    def __init__(self, inner):
        self.inner, self.seen, self.calls = inner, [], 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, images, paths, image_ids):
        self.calls += 1
        self.seen += [np.array(im) for im in images]
        return self.inner(images, paths, image_ids)

    def take(self) -> list[np.ndarray]:
        seen, self.seen, self.calls = self.seen, [], 0
        return seen


@pytest.fixture(scope="module")
def estimator():
    """The defaults of ``kanpose predict`` (shipped amfacpose-r18-128x96 + YOLO11n person boxes), box source spied."""
    from kanpose_cli import PoseEstimator

    est = PoseEstimator()
    est.box_source = SpyBoxes(est.box_source)
    return est


@pytest.fixture(scope="module")
def runs(estimator, clip) -> dict:
    """``{N: (results, frame indexes the detector saw, timings)}`` for N = 1 and 3, tracked."""
    decoded = [f.image for f in open_source(str(clip))]
    assert len(decoded) == FRAMES
    out = {}
    for n in (1, 3):
        results = list(estimator.stream(clip, track=True, det_every=n))
        seen = [next(i for i, d in enumerate(decoded) if np.array_equal(d, im)) for im in estimator.box_source.take()]
        out[n] = (results, seen, estimator.timings)
    return out


def _by_id(result) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {int(t): (result.boxes[i], result.keypoints[i]) for i, t in enumerate(result.track_ids)}


# ------------------------------------------------------------------------------------------------- --det-every
def test_det_every_3_runs_the_detector_on_frames_0_3_6_9_only(runs):
    every, seen_every, times_every = runs[1]
    third, seen_third, times_third = runs[3]
    assert seen_every == list(range(FRAMES))
    assert seen_third == [0, 3, 6, 9]
    assert (times_every.frames, times_every.detector_frames) == (FRAMES, FRAMES)
    assert (times_third.frames, times_third.detector_frames) == (FRAMES, 4)
    assert [r.frame_index for r in third] == list(range(FRAMES))


def test_det_every_3_keeps_every_person_their_id_and_keypoints_close(runs):
    """Every frame has the three people with ids 1, 2, 3 in both runs, an id names the same person in both (box
    centres within 30 px), detector frames give the same poses as the every-frame run (to 0.01 px: the detector and
    the pose network batch other frames with them), a carried box stays within 10 % of the person's height of the
    detector's box for that frame (edge by edge: the clip moves 4 px a frame, the detector itself jitters by more),
    and over all carried frames the keypoints stay on average within 6 % of the person's height of the every-frame
    run (a weakly trained checkpoint moves its keypoints with the crop, so this bounds the crop, not the accuracy)."""
    every, third = runs[1][0], runs[3][0]
    carried = []
    for t, (a, b) in enumerate(zip(every, third)):
        assert sorted(a.track_ids.tolist()) == sorted(b.track_ids.tolist()) == [1, 2, 3], t
        assert len(a) == len(b) == PERSONS
        ida, idb = _by_id(a), _by_id(b)
        for tid, (box_a, kpts_a) in ida.items():
            box_b, kpts_b = idb[tid]
            centre = lambda box: np.array([box[0] + box[2], box[1] + box[3]]) / 2  # noqa: E731
            assert np.linalg.norm(centre(box_a) - centre(box_b)) < 30, (t, tid)
            dist = np.linalg.norm(kpts_a - kpts_b, axis=-1)
            height = box_a[3] - box_a[1]
            if t % 3 == 0:  # a detector frame: the detector's boxes, the same crops (batched differently: last bits)
                assert np.abs(box_a - box_b).max() < 1e-2, (t, tid)
                assert dist.max() < 1e-2, (t, tid, dist.max())
            else:
                assert np.abs(box_a - box_b).max() < 0.10 * height, (t, tid, box_a, box_b)
                carried.append(dist.mean() / height)
    assert len(carried) == 8 * PERSONS and np.mean(carried) < 0.06, carried


def test_det_every_is_a_tracking_option_and_a_video_option(estimator, clip, tmp_path):
    from kanpose_cli import PoseEstimator

    (tmp_path / "bus.jpg").write_bytes(bus_jpg().read_bytes())
    with pytest.raises(UsageError, match="needs --track"):
        next(estimator.stream(clip, det_every=3))
    with pytest.raises(UsageError, match="--det-every need a video"):
        next(estimator.stream(tmp_path, track=True, det_every=3))
    with pytest.raises(UsageError, match="integer ≥ 1"):
        next(estimator.stream(clip, track=True, det_every=0))
    none = PoseEstimator(weights="random", detector="none")
    with pytest.raises(UsageError, match="skips the person detector"):
        next(none.stream(clip, track=True, det_every=3))
    yolo = PoseEstimator("yolo:yolo11n-pose.pt")
    with pytest.raises(UsageError, match="does not apply to yolo"):
        next(yolo.stream(clip, track=True, det_every=3))


@pytest.mark.parametrize("args, message", [
    (["{image}", "--det-every", "3"], "--det-every needs a video file or a webcam"),
    (["{folder}", "--det-every", "3", "--track"], "--det-every needs a video file or a webcam"),
    (["{video}", "--det-every", "3"], "it needs --track"),
    (["{video}", "--det-every", "3", "--track", "--detector", "none"], "skips the person detector"),
])
def test_det_every_usage_errors_are_one_line(clip, tmp_path, args, message):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "bus.jpg").write_bytes(bus_jpg().read_bytes())
    subst = {"{image}": folder / "bus.jpg", "{folder}": folder, "{video}": clip}
    r = runner.invoke(app, ["predict", *[str(subst.get(a, a)) for a in args], "--weights", "random",
                            "--save-dir", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in " ".join(r.stderr.split()), r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_det_every_header_and_stage_line(clip, tmp_path):
    r = runner.invoke(app, ["predict", str(clip), "--track", "--det-every", "3", "--weights", "random", "--no-save",
                            "--save-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "exp1" / "bus_walk.jsonl").read_text().splitlines()
    head, frames = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert head["det_every"] == 3 and head["tracker"] == "bytetrack"
    assert [f["frame_id"] for f in frames] == list(range(FRAMES))
    assert all(sorted(i["track_id"] for i in f["instances"]) == [1, 2, 3] for f in frames)
    text = " ".join(r.stderr.split())
    assert "detector every 3 frames" in text  # the tracker settings of the first line
    assert "stages:" in text and "decode" in text and "pose" in text and "detector on 4 of 12 frames" in text


def test_shift_box_and_the_carrier_schedule():
    from kanpose_cli.core.track.carry import BoxCarrier, shift_box

    box = np.array([0.0, 10.0, 40.0, 90.0])
    then = np.array([[10.0, 20.0], [30.0, 60.0], [20.0, 40.0], [500.0, 500.0]])
    now = then + [[5.0, -2.0], [7.0, -2.0], [6.0, -3.0], [-400.0, -400.0]]
    s_then = np.array([0.9, 0.8, 0.5, 0.9])
    s_now = np.array([0.9, 0.8, 0.5, 0.1])  # the far keypoint scores below 0.3 now: left out
    assert shift_box(box, then, s_then, now, s_now).tolist() == [6.0, 8.0, 46.0, 88.0]  # median (6, -2), same size
    assert shift_box(box, then, s_then, now, s_now, image_size=(85, 45)).tolist() == [6.0, 8.0, 45.0, 85.0]
    assert shift_box(box, then, np.array([0.9, 0.1, 0.5, 0.9]), now, s_now) is None  # 2 counted < min_keypoints 3
    carrier = BoxCarrier(3)
    assert [carrier.due(i) for i in range(10)] == [True, False, False] * 3 + [True]
    lost = BoxCarrier(3)  # frame 3 could not be decoded: the next frame detects, so no gap exceeds N frames
    assert [lost.due(i) for i in (0, 1, 2, 4, 5, 6, 7)] == [True, False, False, True, False, False, True]
    fed = np.array([[0, 10, 40, 90], [100, 0, 140, 80], [200, 0, 240, 80]], np.float32)
    box_scores = np.array([0.9, 0.8, 0.3], np.float32)
    poses, scores = np.zeros((2, 4, 2)), np.stack([s_then, np.zeros(4)])
    poses[0] = then
    carrier.update(fed, box_scores, np.array([1, -1, 2]), poses, scores, (480, 640), detected=True)
    boxes, carried_scores = carrier.boxes()
    assert boxes.tolist() == fed.tolist()  # anchored on the detector frame: no movement yet
    assert carried_scores.tolist() == pytest.approx([0.9, 0.8, 0.3])
    poses = np.stack([now, then + 100, np.zeros((4, 2))])  # three tracked boxes now, in the order of ``boxes``
    scores = np.stack([s_now, s_then, np.zeros(4)])
    carrier.update(boxes, box_scores, np.array([1, 3, 2]), poses, scores, (480, 640), detected=False)
    assert carrier.boxes()[0].tolist() == [[6.0, 8.0, 46.0, 88.0],  # the anchor box moved with the person
                                           [100, 0, 140, 80],  # tracked from now on: anchored here, unmoved
                                           [200, 0, 240, 80]]  # no confident keypoint: its previous box
    poses[0] = now + [10.0, 0.0]
    carrier.update(carrier.boxes()[0], box_scores, np.array([1, 3, 2]), poses, scores, (480, 640), detected=False)
    assert carrier.boxes()[0][0].tolist() == [16.0, 8.0, 56.0, 88.0]  # measured from the anchor, not the last box


def test_a_box_carried_with_real_keypoints_fits_the_next_frames_detection():
    """Real keypoints (YOLO11n-pose, one stage) of frames 0 and t move the frame-0 box of each person; the moved box
    overlaps the person detector's box of frame t + 1 with IoU > 0.6: the carried box is the detector's box,
    moved with the person."""
    from kanpose_cli import PoseEstimator
    from kanpose_cli.core.track.carry import shift_box

    frames = _frames()[:4]
    poses = PoseEstimator("yolo:yolo11n-pose.pt").predict(frames)
    boxes = PoseEstimator(weights="random").box_source(frames[1:], [""] * 3, [None] * 3)
    checked = 0
    for anchor_box, kpts0, scores0 in zip(poses[0].boxes, poses[0].keypoints, poses[0].keypoint_scores):
        if scores0.mean() < 0.5:
            continue
        for t in range(3):  # the same person at frame t: the box that overlaps the anchor most
            j = max(range(len(poses[t])), key=lambda k: _iou(anchor_box, poses[t].boxes[k]))
            carried = shift_box(anchor_box, kpts0, scores0, poses[t].keypoints[j], poses[t].keypoint_scores[j],
                                image_size=frames[t].shape[:2])
            assert carried is not None
            assert max(_iou(carried, b) for b in boxes[t][0]) > 0.6, (t, carried, boxes[t][0])
            checked += 1
    assert checked >= 2 * 3  # the two people seen whole, in each of the three frames


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union)


# --------------------------------------------------------------------------------------------- stage times
def test_stage_times_of_a_run(runs):
    times = runs[3][2]
    assert times.background_decode and times.decode > 0 and times.detect > 0 and times.pose > 0
    assert times.track > 0 and times.write == 0.0  # nothing written by stream()
    ms = times.ms_per_frame()
    assert set(ms) == {"decode", "wait", "detect", "track", "pose", "write"}
    assert ms["pose"] == pytest.approx(1e3 * times.pose / FRAMES)
    text = times.describe()
    assert text.startswith("decode ") and "(background)" in text and text.endswith("detector on 4 of 12 frames")
    assert "detector on" not in runs[1][2].describe()  # every frame detected: nothing to say


# ------------------------------------------------------------------------------------------ background reader
def test_reading_ahead_changes_no_result_on_a_video(estimator, runs, clip):
    plain = list(estimator.stream(clip, track=True, det_every=3, prefetch=False))
    estimator.box_source.take()
    assert not estimator.timings.background_decode and estimator.timings.wait == 0.0
    assert estimator.timings.decode > 0
    for a, b in zip(runs[3][0], plain, strict=True):
        assert a.frame_index == b.frame_index and np.array_equal(a.track_ids, b.track_ids)
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.keypoints, b.keypoints)
        assert np.array_equal(a.keypoint_scores, b.keypoint_scores)


def test_reading_ahead_keeps_order_and_reports_a_corrupt_image(estimator, tmp_path):
    img = cv2.imread(str(bus_jpg()))
    names = []
    for i in range(11):  # 11 files: more than one chunk of 8, a corrupt one in each chunk
        name = f"{i:02d}.jpg"
        if i in (2, 9):
            (tmp_path / name).write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3)
        else:
            cv2.imwrite(str(tmp_path / name), cv2.resize(np.roll(img, 7 * i, axis=1), (270, 360)))
        names.append(name)
    got = {}
    for prefetch in (True, False):
        got[prefetch] = list(estimator.run(tmp_path, prefetch=prefetch))
        estimator.box_source.take()
    ahead, plain = got[True], got[False]
    assert [Path(f.path).name for f, _ in ahead] == [Path(f.path).name for f, _ in plain] == names
    for (fa, ra), (fb, rb) in zip(ahead, plain):
        assert (ra is None) == (rb is None) == (Path(fa.path).name in ("02.jpg", "09.jpg"))
        if ra is None:
            assert fa.error == fb.error and "not a decodable image" in fa.error
            continue
        assert len(ra) > 0 and np.array_equal(ra.boxes, rb.boxes) and np.array_equal(ra.keypoints, rb.keypoints)


def _readers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kanpose-reader" and t.is_alive()]


def _wait_until(condition, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_prefetcher_keeps_order_bounds_memory_and_hands_on_the_sources_error():
    produced = []

    def numbers():
        for i in range(5):
            produced.append(i)
            yield i
        raise InputError("the source broke after 5 items")

    reader = Prefetcher(numbers(), depth=2)
    items = iter(reader)
    assert next(items) == 0
    assert _wait_until(lambda: len(produced) == 4)  # 1 taken + 2 queued + 1 waiting to be queued: never more
    time.sleep(0.2)
    assert len(produced) == 4
    rest = []
    with pytest.raises(InputError, match="broke after 5"):
        for x in items:
            rest.append(x)
    assert rest == [1, 2, 3, 4]
    assert _wait_until(lambda: not reader.alive)


class EndlessSource(Source):
    """An image source that never ends (like a camera); ``closed`` is set when its iterator is closed."""

    kind, description = "folder", "endless test images"

    def __init__(self, image: np.ndarray):
        self.image, self.produced, self.closed = image, 0, threading.Event()

    def __iter__(self):
        try:
            while True:
                self.produced += 1
                yield Frame(self.image.copy(), f"img{self.produced:05d}.jpg")
        finally:
            self.closed.set()


@pytest.fixture()
def small_estimator():
    from kanpose_cli import PoseEstimator

    return PoseEstimator(weights="random", detector="none")


def test_an_exception_in_the_consumer_stops_the_reader(small_estimator):
    source = EndlessSource(cv2.resize(cv2.imread(str(bus_jpg())), (96, 128)))
    real, calls = small_estimator.pipeline.estimate_many, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the pose network failed")
        return real(*args, **kwargs)

    small_estimator.pipeline.estimate_many = failing
    done = []
    with pytest.raises(RuntimeError, match="pose network failed"):
        for _frame, result in small_estimator.run(source):
            done.append(result)
    assert len(done) == 8  # the first chunk came through, the second failed
    assert source.closed.wait(10) and _wait_until(lambda: not _readers_alive())
    assert source.produced <= 8 + 8 + 8 + 1  # two chunks taken, at most one chunk queued, one in the reader's hand


def test_ctrl_c_in_the_predict_loop_stops_the_reader_and_keeps_the_outputs(small_estimator, tmp_path):
    from kanpose_cli.core.tasks.predictor import make_writer, run_predict
    from kanpose_cli.core.io import next_run_dir

    source = EndlessSource(cv2.resize(cv2.imread(str(bus_jpg())), (96, 128)))
    writer = make_writer(next_run_dir(tmp_path), small_estimator, save=False, save_coco=True)
    seen = []

    def on_frame(frame, result):
        seen.append(frame.path)
        if len(seen) == 3:
            raise KeyboardInterrupt

    summary = run_predict(source, small_estimator, writer, on_frame=on_frame)
    assert summary.interrupted and summary.frames == 3
    assert sorted(p.name for p in (tmp_path / "exp1").glob("img*.json")) == [
        "img00001.json", "img00002.json", "img00003.json"]
    assert source.closed.wait(10) and _wait_until(lambda: not _readers_alive())
    stages = summary.stages
    assert stages.frames == 8 and stages.write > 0 and stages.pose > 0 and stages.detect > 0  # one chunk estimated

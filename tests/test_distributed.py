"""``torchrun --nproc-per-node 2 -m kanpose_cli predict|label``: 2 gloo CPU processes give the same files and
keypoints as one process (core/tasks/distributed.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kanpose_cli.core.data.sources import ImageListSource
from kanpose_cli.core.tasks.distributed import Shard, shard_source

COMMON = ["--model", "amfacpose-r18-128x96", "--device", "cpu", "--batch", "4"]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", KANPOSE_DEBUG="1", PYTHONWARNINGS="ignore")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _run(args: list[str], cwd: Path, nproc: int = 1) -> subprocess.CompletedProcess:
    if nproc == 1:
        cmd = [sys.executable, "-m", "kanpose_cli", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "kanpose_cli", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _images(coco_mini: Path, tmp_path: Path, n: int = 6) -> tuple[Path, Path]:
    """``n`` coco-mini images (one without people) in a folder of their own, and a COCO detection-results file
    with their ground-truth person boxes (score 0.9)."""
    ann = coco_mini / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(ann.read_text())
    with_people = {a["image_id"] for a in data["annotations"] if a.get("num_keypoints", 0) > 0}
    chosen = [im for im in data["images"] if im["id"] in with_people][:n - 1]
    chosen += [im for im in data["images"] if im["id"] not in with_people][:1]
    folder = tmp_path / "images"
    folder.mkdir()
    for im in chosen:
        shutil.copy(coco_mini / "val2017" / im["file_name"], folder / im["file_name"])
    ids = {im["id"] for im in chosen}
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in data["annotations"] if a["image_id"] in ids and not a.get("iscrowd")]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(dets))
    return folder, boxes


def _same(a, b, tol: float = 0.011) -> bool:
    """Equal JSON, floats within ``tol`` (outputs are rounded to 2 decimals; batch composition differs between
    the runs, which may move a value across a rounding boundary)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    return a == b


def test_shard_source_splits_in_turn_and_keeps_global_order(tmp_path):
    paths = [tmp_path / f"{n}.jpg" for n in "abcde"] + [tmp_path / "sub" / "a.jpg"]
    src = ImageListSource(paths, "folder", "six")
    assert shard_source(src, Shard(0, 1)) is src
    share = shard_source(src, Shard(1, 2))
    assert share.paths == paths[1::2]
    assert share.global_index[str(paths[5])] == 5
    assert share.stems[str(paths[0])] == "a" and share.stems[str(paths[5])] == "a_1"  # unique over all ranks


def test_two_gloo_processes_write_the_same_files_as_one(coco_mini, tmp_path):
    folder, boxes = _images(coco_mini, tmp_path)
    gt = ["--boxes", str(boxes)]
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"n{nproc}"
        _run(["predict", str(folder), *COMMON, *gt, "--save-coco", "--no-save", "--save-dir", str(out)], tmp_path,
             nproc)
        _run(["label", str(folder), *COMMON, *gt, "--no-flip", "--out", str(out / "labels.json")], tmp_path, nproc)
        runs[nproc] = out
    one, two = runs[1] / "exp1", runs[2] / "exp1"
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    assert len(list(one.glob("*.json"))) == 7  # 6 per-image JSONs + coco_results.json
    for f in one.iterdir():
        assert _same(json.loads(f.read_text()), json.loads((two / f.name).read_text())), f.name
    assert _same(json.loads((runs[1] / "labels.json").read_text()), json.loads((runs[2] / "labels.json").read_text()))
    coco = json.loads((one / "coco_results.json").read_text())
    assert len(coco) > 0 and [r["image_id"] for r in coco] == sorted(r["image_id"] for r in coco)


THREADS_SCRIPT = """
import os
from kanpose_cli.core.tasks import distributed

def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()
shard = distributed.start("cpu")
import torchvision  # noqa: F401  (imports torch._dynamo after the group exists, as predict's model building does)
from kanpose_cli.core.models import create_model
create_model("amfacpose-r18-128x96")
distributed.broadcast(distributed.gather(shard.rank, shard), shard)
during = threads()
distributed.finish(shard)
# one file per rank: both ranks share torchrun's stdout, where their lines can interleave character by character
with open(f"threads-{shard.rank}.txt", "w") as f:
    f.write(f"{before} {during} {threads()}")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc/self/task (Linux)")
def test_finish_stops_the_gloo_threads_before_interpreter_shutdown(tmp_path):
    """Gloo worker threads still alive at interpreter shutdown abort a rank at random (exit -6); ``finish`` must
    leave none, also after torchvision (hence torch._dynamo) was imported with the group already up."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(p.name for p in tmp_path.glob("threads-*.txt"))
    assert files == ["threads-0.txt", "threads-1.txt"], proc.stdout
    for name in files:
        before, during, after = (tmp_path / name).read_text().split()
        assert int(during) > int(before)  # the group's threads (gloo's event loop and workers)
        assert int(after) == int(before), f"{int(after) - int(before)} thread(s) left after finish()"

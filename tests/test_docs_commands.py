"""Every shell command shown in the docs, run as a user would (issue 31).

The commands are the lines of the ```bash blocks of README.md, CONTRIBUTING.md, docs/*.md, docs/notes/*.md and
weights/README.md (``\\`` continuations joined, comments and blank lines dropped). ``COMMANDS`` says how each one is
run; a documented command missing from it, or an entry whose command is no longer documented, fails
``test_every_doc_command_is_in_the_table``, so the docs and this test stay in sync.

Each command runs verbatim through ``bash -c`` in one work folder per doc file, in document order, with a fresh empty
HOME and ``KANPOSE_OFFLINE=1``. The files a command names are placed there under the doc's names: ``photo.jpg``,
``img.jpg`` and ``bus.jpg`` are ultralytics' bus.jpg, ``photos/`` its two sample photos, ``clip.mp4`` a 4-frame clip
made from bus.jpg, ``train.json``/``train2017/``/``val.json``/``val2017/`` and ``coco/`` coco-mini,
``lspet/`` the first 8 LSP-Extended images with their joints, ``dets.json`` coco-mini's ground-truth person boxes as
COCO detection results, ``vitpose-b.pth`` a random ViTPose-B in the official (mmpose) layout, ``weights/`` and
``benchmarks/`` the repository's folders, and ``../shared/data`` the real data (the command is skipped, with the
reason, when it is missing). Files a command reads from an earlier command (``runs/eval/exp1/results.json``) are made
by running the file's earlier commands first. An entry may append budget flags (fewer images, one epoch) that leave
the documented paths and flags as they are.

A command may exit non-zero only where the docs announce why near it (a CUDA GPU, a download from the Hub): the test
then asserts the exit code, one ``error:`` line with no traceback, and that the text within a few lines of the command
names the condition.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conftest import SHARED_DATA
from test_readme import fresh_user_env

REPO = Path(__file__).resolve().parents[1]
DOC_GLOBS = ("README.md", "CONTRIBUTING.md", "docs/*.md", "docs/notes/*.md", "weights/README.md")
CONTEXT_LINES = 8  # how far from a command its announcement may be (lines of the doc)
TIMEOUT_S = 1800

ASSETS = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets"
COCO_MINI = SHARED_DATA / "coco-mini"

EVAL_BUDGET = "--max-images 8"  # the first 8 annotated coco-mini val2017 images (3 people)
TRAIN_BUDGET = "--epochs 1 --workers 0"
LSPET_FULL = ("needs all 10,000 LSP-Extended images (data/lspet-full, rebuilt by tools/build_training_set.sh from a "
              "local copy of axelcarlier/lsp); `kanpose eval lsp --range` is tested on ../shared/data/lspet in "
              "tests/test_eval_benchmarks.py, training on lsp14 in tests/test_keypoint_set_flow.py")


# ------------------------------------------------------------------------------------------------ the docs
@dataclass(frozen=True)
class DocCommand:
    file: str      # doc path relative to the repository root
    line: int      # 1-based line of the command's first line
    command: str   # the command, continuations joined, trailing comment dropped, spaces collapsed
    context: str   # prose and comments within CONTEXT_LINES lines of the command (no command text)


def _split_comment(line: str) -> tuple[str, str]:
    """``cmd  # comment`` -> (cmd, comment); a ``#`` inside quotes or a word is not a comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ""


def doc_commands() -> list[DocCommand]:
    """Every command of every ```bash block of the docs, in document order per file."""
    out = []
    files = []
    for pattern in DOC_GLOBS:
        files += sorted(REPO.glob(pattern))
    for path in files:
        lines = path.read_text().splitlines()
        prose = list(lines)  # per line: the text that may announce a condition (prose, or a comment in a block)
        commands: list[tuple[int, str]] = []
        i, in_bash, in_other = 0, False, False
        while i < len(lines):
            ln = lines[i]
            fence = ln.strip().startswith("```")
            if fence and not in_bash and not in_other:
                in_bash, in_other = ln.strip() == "```bash", ln.strip() != "```bash"
                prose[i] = ""
                i += 1
                continue
            if fence:
                in_bash = in_other = False
                prose[i] = ""
                i += 1
                continue
            if not in_bash:
                i += 1
                continue
            start, parts = i, []
            while True:
                cmd, comment = _split_comment(lines[i])
                prose[i] = comment
                if cmd.endswith("\\") and i + 1 < len(lines):
                    parts.append(cmd[:-1])
                    i += 1
                    continue
                parts.append(cmd)
                break
            command = " ".join(" ".join(parts).split())
            if command:
                commands.append((start, command))
            i += 1
        rel = path.relative_to(REPO).as_posix()
        for start, command in commands:
            window = prose[max(0, start - CONTEXT_LINES): start + CONTEXT_LINES + 1]
            out.append(DocCommand(rel, start + 1, command, " ".join(window)))
    return out


# ------------------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Run:
    """Run the command; ``budget`` flags are appended; it must exit 0 (``needs`` None) or, where the machine lacks
    what ``needs`` names, exit with that condition's code and one ``error:`` line."""

    budget: str = ""
    needs: str | None = None           # "cuda": CUDA GPU; "hub": a download from the Hugging Face Hub
    requires: tuple[str, ...] = ()     # files (globs) made by the file's earlier commands, run first if missing
    setup: str = ""                    # else this shell command makes them (not a doc command)
    check: Callable[[Path, subprocess.CompletedProcess], None] | None = None
    cwd_repo: bool = False             # run in the repository root (repo-wide tools), not the work folder
    slow: bool = True


@dataclass(frozen=True)
class NotRun:
    reason: str


# where the machine lacks it: (exit code, what the error line says, what the doc text near the command must say)
NEEDS = {
    "cuda": (3, r"asked for CUDA", r"CUDA|GPU"),
    "hub": (3, r"KANPOSE_OFFLINE=1 forbids downloads", r"download|Hugging Face|\bHub\b"),
}


def _json(path: Path):
    return json.loads(path.read_text())


def _check_predict_folder(work, proc):
    run = _newest(work / "runs/predict")
    names = sorted(p.name for p in run.iterdir())
    assert {"bus.jpg", "bus.json", "zidane.jpg", "zidane.json"} <= set(names), names
    coco = [n for n in names if n.endswith(".json") and n not in ("bus.json", "zidane.json")]
    assert len(coco) == 1, names
    results = _json(run / coco[0])
    assert len(results) >= 4 and all(len(r["keypoints"]) == 51 for r in results), results[:1]


def _check_predict_image(n_min: int, model: str | None = None):
    def check(work, proc):
        run = _newest(work / "runs/predict")
        record = _json(next(run.glob("*.json")))
        assert len(record["instances"]) >= n_min, record["instances"]
        assert record["width"] > 0 and record["height"] > 0, record
        if model:
            assert record["model"] == model, record["model"]
        for inst in record["instances"]:
            assert len(inst["keypoint_scores"]) == 17
    return check


def _check_tracks(work, proc):
    run = _newest(work / "runs/predict")
    lines = (run / "clip.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["fps"] == 25.0 and len(lines) == 5, lines[:1]
    ids = {inst["track_id"] for ln in lines[2:] for inst in json.loads(ln)["instances"]}
    assert ids and ids <= {1, 2, 3, 4, 5, 6}, ids
    rows = (run / "tracks.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["frame", "time_s", "track_id"] and len(rows) > 17, rows[:2]


def _check_eval(ap_min: float):
    def check(work, proc):
        metrics = _json(_newest(work / "runs/eval") / "metrics.json")
        assert ap_min <= metrics["AP"] <= 1.0 and metrics["num_images"] == 8, metrics
    return check


def _check_metric(name: str, minimum: float, **expected):
    """The newest eval run's metrics.json has ``name`` in [minimum, 1] and the ``expected`` values."""
    def check(work, proc):
        metrics = _json(_newest(work / "runs/eval") / "metrics.json")
        assert metrics[name] is not None and minimum <= metrics[name] <= 1.0, metrics
        for key, value in expected.items():
            assert metrics[key] == value, (key, metrics[key])
    return check


def _check_analyze(work, proc):
    run = _newest(work / "runs/eval")
    assert (run / "analysis.json").is_file() and len(list(run.glob("*.png"))) == 3, sorted(run.iterdir())


def _check_compare(work, proc):
    assert "exp1" in proc.stdout and "exp2" in proc.stdout and "AP" in proc.stdout, proc.stdout


def _check_compare_bootstrap(work, proc):
    _check_compare(work, proc)
    out = " ".join((proc.stdout + proc.stderr).split())  # tables on stdout, messages on stderr
    assert "paired bootstrap over" in out and "200 resamples" in out, out[-600:]


def _check_file(name: str, min_bytes: int = 1):
    def check(work, proc):
        path = work / name
        assert path.is_file() and path.stat().st_size >= min_bytes, (name, sorted(p.name for p in work.iterdir()))
    return check


def _check_bench(models: str, batches=(1, 8)):
    """bench/bench.json has a timed model-only row of kanpose's network for every model and batch."""
    def check(work, proc):
        rows = _json(work / "bench" / "bench.json")["rows"]
        timed = {(r["model"], r["batch"]) for r in rows
                 if r["section"] == "model" and r["impl"] == "kanpose" and r["status"] == "ok" and r["p50_ms"] > 0}
        want = {(m, b) for m in models.split(",") for b in batches}
        assert want <= timed, (sorted(want - timed), sorted(timed))
    return check


def _check_train(work, proc):
    run = _newest(work / "runs/train")
    assert (run / "weights" / "best.safetensors").is_file() or (run / "weights" / "last.safetensors").is_file(), \
        sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))


def _check_train_keypoints(k: int, project: str = "runs/train"):
    """The newest run under ``project`` wrote weights whose card holds a K-keypoint set."""
    def check(work, proc):
        from kanpose_cli.core.weights.card import read_model_card

        last = _newest(work / project) / "weights" / "last.safetensors"
        assert last.is_file(), last
        kset = read_model_card(last).keypoints()
        assert kset.num_keypoints == k, kset
    return check


def _check_eval_hands(work, proc):
    metrics = _json(_newest(work / "runs/eval") / "metrics.json")
    assert 0.0 <= metrics["AP"] <= 1.0 and metrics["num_images"] == 4, metrics
    assert metrics["settings"]["keypoint_set"] == "onehand21", metrics["settings"]  # the names are the built-in set's


def _check_predict_hand(work, proc):
    run = _newest(work / "runs/predict")
    pred = _json(run / "9.json")
    assert len(pred["keypoint_names"]) == 21 and pred["keypoint_names"][:2] == ["wrist", "thumb1"], pred
    assert len(pred["instances"]) == 1 and (run / "9.jpg").is_file()


def _check_resumed(work, proc):
    assert "resuming" in proc.stdout + proc.stderr, proc.stdout[-1000:]
    _check_train(work, proc)


def _check_label(work, proc):
    data = _json(work / "pseudo.json")
    assert len(data["images"]) == 2 and len(data["annotations"]) >= 4, {k: len(v) for k, v in data.items()}


def _check_fill(work, proc):
    data = _json(work / "lspet_filled.json")
    assert len(data["annotations"]) == 8, len(data["annotations"])
    # the teacher adds face points LSP lacks (nose, eyes, ears: the first 5 COCO keypoints) to some persons
    assert any(a["keypoints"][2] > 0 for a in data["annotations"]), data["annotations"][0]["keypoints"]


def _check_flips(work, proc):
    data = _json(work / "lspet_clean.json")
    report = _json(work / "lspet_clean.flips.json")
    assert len(data["annotations"]) == 8, len(data["annotations"])  # nothing dropped without --drop-swapped
    assert len(data["categories"][0]["keypoints"]) == 17  # LSP mapped onto COCO-17
    assert report["counts"]["checked"] == 8, report["counts"]  # every LSP person went through the check


def _newest(folder: Path) -> Path:
    runs = sorted((p for p in folder.glob("exp*") if p.is_dir()), key=lambda p: int(p.name[3:] or 0))
    assert runs, f"no run folder under {folder}"
    return runs[-1]


SMALL_TRAIN = (f"kanpose train --model amfacpose-r18-128x96 --train-ann train.json --train-images train2017/ "
               f"{TRAIN_BUDGET}")
EVAL_RUNS = ("runs/eval/exp1/results.json",)
COCO_MINI_DATA = "../shared/data/coco-mini"
KS = "../shared/data/keypoint-sets"  # the benchmark samples

COMMANDS: dict[str, Run | NotRun] = {
    # ---- install, test, lint
    "python3 -m venv .venv && . .venv/bin/activate": NotRun("installs packages (exercised by .ci/run)"),
    'pip install -e ".[dev]"': NotRun("installs packages (exercised by .ci/run)"),
    "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu":
        NotRun("installs packages (exercised by .ci/run)"),
    "python -m pytest -q": NotRun("the test suite itself, of which this test is a part"),
    "python -m pytest -q -m slow": NotRun("the slow part of the test suite, of which this test is a part"),
    "ruff check .": Run(cwd_repo=True, slow=False),
    # ---- predict
    "kanpose predict --demo": Run(check=_check_predict_image(2)),
    "kanpose predict photo.jpg --model vitpose-b --weights hub": Run(needs="hub", slow=False),
    "kanpose predict img.jpg --model vitpose-b --weights hub": Run(needs="hub"),
    "kanpose predict img.jpg --model vitpose-h --weights hub": Run(needs="hub"),
    "kanpose predict photos/ --save-coco": Run(check=_check_predict_folder),
    "kanpose predict clip.mp4 --track --smooth --save-tracks": Run(check=_check_tracks),
    "kanpose predict photo.jpg --model yolo:yolo11n-pose.pt":
        Run(check=_check_predict_image(4, "yolo:yolo11n-pose.pt")),
    "kanpose predict img.jpg --model yolo:yolo11n-pose.pt": Run(check=_check_predict_image(4, "yolo:yolo11n-pose.pt")),
    "kanpose predict clip.mp4 --device cuda --half": Run(needs="cuda", slow=False),
    "kanpose predict img.jpg --model vitpose-b --weights vitpose-b.pth":
        Run(check=_check_predict_image(1, "vitpose-b")),
    "kanpose predict 000000000139.jpg --boxes dets.json": Run(check=_check_predict_image(2)),
    "kanpose predict crops/ --detector none": Run(check=_check_predict_image(1)),
    "torchrun --nproc-per-node 4 -m kanpose_cli predict photos/ --device cuda --save-coco": Run(needs="cuda"),
    "kanpose predict photo.jpg --kpt-thr 0.3": Run(check=_check_predict_image(4)),
    # ---- eval
    "kanpose eval coco --data ../shared/data/coco-mini --boxes gt": Run(EVAL_BUDGET, check=_check_eval(0.1)),
    "kanpose eval coco --data ../shared/data/coco-mini --model yolo:yolo11n-pose.pt":
        Run(EVAL_BUDGET, check=_check_eval(0.2)),
    "kanpose eval coco --data ../shared/data/coco-mini --boxes dets.json": Run(EVAL_BUDGET, check=_check_eval(0.1)),
    "kanpose eval coco --data ../shared/data/coco-mini --boxes detector --model vitpose-b --weights hub":
        Run(EVAL_BUDGET, needs="hub"),
    "kanpose eval coco --data ../shared/data/coco-mini --boxes none": Run(EVAL_BUDGET, check=_check_eval(0.0)),
    "kanpose eval coco --data ../shared/data/coco-mini --results runs/eval/exp1/results.json":
        Run(EVAL_BUDGET, requires=EVAL_RUNS, check=_check_eval(0.1)),
    "kanpose eval coco --data ../shared/data/coco-mini --results runs/eval/exp1/results.json --analyze":
        Run(EVAL_BUDGET, requires=EVAL_RUNS, check=_check_analyze),
    "kanpose eval compare runs/eval/exp1 runs/eval/exp2":
        Run(requires=("runs/eval/exp1/metrics.json", "runs/eval/exp2/metrics.json"), check=_check_compare),
    "kanpose eval compare runs/eval/exp1 runs/eval/exp2 --bootstrap 200":
        Run(requires=("runs/eval/exp1/metrics.json", "runs/eval/exp2/metrics.json"), check=_check_compare_bootstrap),
    "kanpose eval coco --data ../shared/data/coco-mini --weights weights/amfacpose-r18-128x96-coco-lsp.safetensors":
        Run(EVAL_BUDGET, check=_check_eval(0.1)),
    "kanpose eval coco --data ../shared/data/coco-mini --boxes detector": Run(EVAL_BUDGET, check=_check_eval(0.05)),
    "kanpose eval coco --ann ../shared/data/coco-mini/annotations/person_keypoints_val2017.json --images "
    "../shared/data/coco-mini/val2017 --boxes dets.json --box-thr 0.0": Run(EVAL_BUDGET, check=_check_eval(0.1)),
    "kanpose eval coco --data ../shared/data/coco-mini --model yolo:yolo11n-pose.pt --analyze":
        Run(EVAL_BUDGET, check=_check_analyze),
    # ---- the other benchmarks (docs/eval.md, docs/cli.md)
    "kanpose eval lsp --data lspet/ --range 1-8":
        Run(check=_check_metric("PCK@0.2", 0.3, num_persons=8, not_scored_joints=["neck", "head_top"])),
    "kanpose eval lsp --data ../shared/data/lspet --range 3001-4000":
        Run("--max-images 8", check=_check_metric("PCK@0.2", 0.3, num_persons=8)),
    f"kanpose eval mpii --ann {KS}/mpii/test_mpii.json --images {KS}/mpii":
        Run(check=_check_metric("PCKh@0.5", 0.5, num_persons=5)),
    f"kanpose eval crowdpose --ann {KS}/crowdpose/test_crowdpose.json --images {KS}/crowdpose":
        Run(check=_check_metric("AP_medium", 0.2, AP_easy=-1.0, AP_hard=-1.0)),
    f"kanpose eval crowdpose --ann {KS}/crowdpose/test_crowdpose.json --images {KS}/crowdpose "
    f"--boxes {KS}/crowdpose/test_crowdpose_det_AP_40.json":
        Run(check=_check_metric("AP", 0.2, num_images=2)),
    f"kanpose eval ochuman --ann {KS}/ochuman/test_ochuman.json --images {KS}/ochuman":
        Run(check=_check_metric("AP", 0.1, num_images=3, benchmark="ochuman")),
    # ---- train and label
    "kanpose train --model amfacpose-r18-256x192 --train-ann train.json --train-images train2017/ --val-ann val.json "
    "--val-images val2017/ --device cuda": Run(TRAIN_BUDGET, needs="cuda", check=_check_train),
    "kanpose train --resume auto": Run("--epochs 2", requires=("runs/train/exp*/state/last.pt",), setup=SMALL_TRAIN,
                                       check=_check_resumed),
    "kanpose train --model amfacpose-r34 --train-ann coco/annotations/person_keypoints_train2017.json --train-images "
    "coco/train2017 --val-ann coco/annotations/person_keypoints_val2017.json --val-images coco/val2017 --device cuda "
    "--amp bf16": Run(TRAIN_BUDGET, needs="cuda", check=_check_train),
    "kanpose train --model amfacpose-r18-128x96 --train-ann coco/annotations/person_keypoints_train2017.json "
    "--train-images coco/train2017 --train-ann lspet/joints.mat --train-images lspet/images --train-ratio 1 "
    "--train-ratio 0.5": Run(TRAIN_BUDGET, check=_check_train),
    "torchrun --nproc-per-node 8 -m kanpose_cli train --model vitpose-s ...":
        NotRun("arguments elided in the doc (`...`); DDP training is tested in tests/test_distributed.py"),
    "kanpose train --model kanfpn-s4 --init hub ...":
        NotRun("arguments elided in the doc (`...`); --init hub is tested in tests/test_init.py"),
    "kanpose train --model amfacpose-r18-128x96 --init shipped --batch 2 --project runs/hands --train-ann "
    "../shared/data/keypoint-sets/onehand10k/test_onehand10k.json --train-images "
    "../shared/data/keypoint-sets/onehand10k": Run(TRAIN_BUDGET, check=_check_train_keypoints(21, "runs/hands")),
    "kanpose eval coco --ann ../shared/data/keypoint-sets/onehand10k/test_onehand10k.json --images "
    "../shared/data/keypoint-sets/onehand10k --weights runs/hands/exp1/weights/last.safetensors":
        Run(requires=("runs/hands/exp1/weights/last.safetensors",), check=_check_eval_hands),
    "kanpose predict ../shared/data/keypoint-sets/onehand10k/9.jpg --detector none --weights "
    "runs/hands/exp1/weights/last.safetensors":
        Run(requires=("runs/hands/exp1/weights/last.safetensors",), check=_check_predict_hand),
    "kanpose train --data hands/data.yaml --model amfacpose-r18-128x96 --init shipped --batch 2":
        Run(TRAIN_BUDGET, check=_check_train_keypoints(21)),
    "kanpose train --model amfacpose-r18-128x96 --train-ann lspet/joints.mat --train-images lspet/images "
    "--keypoint-set lsp14": Run(TRAIN_BUDGET, check=_check_train_keypoints(14)),
    # docs/keypoint-sets.md: the native LSP-14 model (all of LSP-Extended, not in ../shared/data)
    "python tools/build_lsp14_set.py --range 1-9000 --out data/lsp14/lspet-1-9000.json": NotRun(LSPET_FULL),
    "kanpose train --model amfacpose-r18-128x96 --keypoint-set lsp14 --init shipped --lr 1e-3 --epochs 4 "
    "--train-ann data/lsp14/lspet-1-9000.json --train-images data/lspet-full/images": NotRun(LSPET_FULL),
    "kanpose eval lsp --data data/lspet-full --range 9001-10000 --weights runs/train/exp1/weights/last.safetensors":
        NotRun(LSPET_FULL),
    "kanpose eval lsp --data data/lspet-full --range 9001-10000": NotRun(LSPET_FULL),
    "kanpose eval lsp --data data/lspet-full --range 9001-10000 --model yolo:yolo11n-pose.pt --boxes detector":
        NotRun(LSPET_FULL),
    "kanpose label unlabelled/ --teacher yolo:yolo11n-pose.pt --out pseudo.json": Run(check=_check_label),
    "kanpose label lspet/images --fill lspet/joints.mat --teacher yolo:yolo11n-pose.pt --out lspet_filled.json":
        Run(check=_check_fill),
    "kanpose label lspet/images --check-flips lspet/joints.mat --teacher yolo:yolo11n-pose.pt --out lspet_clean.json":
        Run(check=_check_flips),
    "kanpose train --model amfacpose-r18-128x96 --init shipped "
    "--train-ann train.json --train-images train2017/ --val-ann val.json --val-images val2017/ --device cuda":
        Run(TRAIN_BUDGET, needs="cuda", check=_check_train),
    "kanpose train --model amfacpose-r18-128x96 --init shipped --train-ann train.json --train-images train2017/ "
    "--epochs 2 --device cuda": Run(TRAIN_BUDGET, needs="cuda", check=_check_train),
    # ---- bench and export
    "kanpose bench --device cpu --models amfacpose-r18-128x96 --onnxruntime":
        Run("--warmup 0 --iters 3 --max-time 0 --max-images 2 --batch 1", check=None),
    "kanpose export --weights weights/amfacpose-r18-128x96-coco-lsp.safetensors --decode -o amfacpose.onnx":
        Run(check=_check_file("amfacpose.onnx", 1_000_000)),
    "kanpose bench --device cpu --threads 2 --batch 1,8 --warmup 1 --iters 5 --max-time 4 --images "
    "../shared/data/coco-mini/val2017 --max-images 8 --models amfacpose-r18-128x96,amfacpose-r18-256x192,vitpose-s "
    "--onnxruntime --out bench/":
        Run(check=_check_bench("amfacpose-r18-128x96,amfacpose-r18-256x192,vitpose-s")),
    # the 2026-11-21 note times every registered model (vitpose-h at batch 8 alone takes many minutes on 2 cores):
    # the budget keeps two models, everything else as documented
    "kanpose bench --device cpu --threads 2 --batch 1,8 --warmup 1 --iters 5 --max-time 4 --images "
    "../shared/data/coco-mini/val2017 --max-images 8 --out bench/":
        Run("--models amfacpose-r18-128x96,vitpose-s", check=_check_bench("amfacpose-r18-128x96,vitpose-s")),
    "kanpose bench --device cpu --models amfacpose-r18,vitpose-s --batch 1,8 --out bench/":
        Run("--warmup 0 --iters 3 --max-time 0 --max-images 2", check=_check_bench("amfacpose-r18,vitpose-s")),
    "kanpose bench --device cpu --models 'amfacpose-*' --plain --no-e2e":
        Run("--warmup 0 --iters 3 --max-time 0 --batch 1"),
    "python benchmarks/e2e_vs_peer.py ../shared/data/coco-mini/val2017 --backend auto --backend torch":
        Run("--rounds 1"),
    "python benchmarks/box_gap.py ../shared/data/coco-mini": Run(),
    "kanpose export --model vitpose-b --weights vitpose-b.pth --decode -o vitpose-b.onnx":
        Run(check=_check_file("vitpose-b.onnx", 300_000_000)),
}


# ------------------------------------------------------------------------------------------------ fixtures
class WorkDir:
    """One doc file's work folder (cwd), HOME, and the commands already run there."""

    def __init__(self, root: Path, vitpose_b: Callable[[], Path]):
        self.root, self.work, self.home = root, root / "work", root / "home"
        self.work.mkdir(parents=True)
        self.home.mkdir()
        self.ran: set[int] = set()
        self._vitpose_b = vitpose_b
        (root / "shared").mkdir()
        (root / "shared" / "data").symlink_to(SHARED_DATA)
        self._place_files()

    def _place_files(self) -> None:
        import cv2
        import numpy as np

        w = self.work
        bus = ASSETS / "bus.jpg"
        for name in ("photo.jpg", "img.jpg", "bus.jpg"):
            shutil.copy(bus, w / name)
        for folder in ("photos", "unlabelled"):
            (w / folder).mkdir()
            for name in ("bus.jpg", "zidane.jpg"):
                shutil.copy(ASSETS / name, w / folder / name)
        image = cv2.imread(str(bus))
        (w / "crops").mkdir()
        for i, (x1, y1, x2, y2) in enumerate([(40, 390, 260, 920), (210, 390, 360, 880)]):  # two people of bus.jpg
            cv2.imwrite(str(w / "crops" / f"person{i}.jpg"), image[y1:y2, x1:x2])
        small = cv2.resize(image, (405, 540))
        writer = cv2.VideoWriter(str(w / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (405, 540))
        for t in range(4):
            writer.write(cv2.warpAffine(small, np.float32([[1, 0, 2 * t], [0, 1, 0]]), (405, 540)))
        writer.release()
        (w / "weights").symlink_to(REPO / "weights")
        (w / "benchmarks").symlink_to(REPO / "benchmarks")
        if (COCO_MINI / "annotations").is_dir():
            ann = COCO_MINI / "annotations"
            (w / "train.json").symlink_to(ann / "person_keypoints_train2017.json")
            (w / "val.json").symlink_to(ann / "person_keypoints_val2017.json")
            (w / "train2017").symlink_to(COCO_MINI / "train2017")
            (w / "val2017").symlink_to(COCO_MINI / "val2017")
            (w / "coco").symlink_to(COCO_MINI)
            shutil.copy(COCO_MINI / "val2017" / "000000000139.jpg", w / "000000000139.jpg")
            instances = _json(ann / "instances_val2017.json")
            dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
                    for a in instances["annotations"] if a["category_id"] == 1 and not a.get("iscrowd")]
            (w / "dets.json").write_text(json.dumps(dets))
        hands = SHARED_DATA / "keypoint-sets" / "onehand10k" / "test_onehand10k.json"
        if hands.is_file():  # the OneHand10K sample written out as an ultralytics YOLO-pose dataset (hands/data.yaml)
            from test_datasets_any_k import write_yolo_dataset

            names = _json(hands)["categories"][0]["keypoints"]
            write_yolo_dataset(hands, hands.parent, w / "hands", kpt_names=names, name="hand")
        lspet = SHARED_DATA / "lspet"
        if (lspet / "joints.mat").is_file():
            import scipy.io

            (w / "lspet" / "images").mkdir(parents=True)
            joints = scipy.io.loadmat(lspet / "joints.mat")["joints"]
            scipy.io.savemat(w / "lspet" / "joints.mat", {"joints": joints[:, :, :8]})
            for i in range(1, 9):
                shutil.copy(lspet / "images" / f"im{i:05d}.jpg", w / "lspet" / "images" / f"im{i:05d}.jpg")

    def prepare(self, command: str) -> None:
        if "vitpose-b.pth" in command and not (self.work / "vitpose-b.pth").exists():
            (self.work / "vitpose-b.pth").symlink_to(self._vitpose_b())


@pytest.fixture(scope="module")
def vitpose_b_pth(tmp_path_factory):
    """A random ViTPose-B saved in the official mmpose layout (``backbone.*``, ``keypoint_head.*``), made on first
    use (360 MB)."""
    made: list[Path] = []

    def make() -> Path:
        if not made:
            import torch

            from kanpose_cli import create_model

            torch.manual_seed(0)
            sd = create_model("vitpose-b").net.state_dict()
            path = tmp_path_factory.mktemp("vitpose-b") / "vitpose-b.pth"
            torch.save({"state_dict": {("keypoint_head." + k[5:] if k.startswith("head.") else k): v
                                       for k, v in sd.items()}, "meta": {"epoch": 210}}, path)
            made.append(path)
        return made[0]
    return make


@pytest.fixture(scope="module")
def work_dirs(tmp_path_factory, vitpose_b_pth):
    dirs: dict[str, WorkDir] = {}

    def get(doc: str) -> WorkDir:
        if doc not in dirs:
            dirs[doc] = WorkDir(tmp_path_factory.mktemp(re.sub(r"\W", "_", doc)), vitpose_b_pth)
        return dirs[doc]
    return get


# ------------------------------------------------------------------------------------------------ running
def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _needs_data(command: str) -> bool:
    return bool(re.search(r"\.\./shared/data|\b(train|val)\.json\b|\b(train|val)2017/|\bcoco/|\blspet/|\bhands/|"
                          r"dets\.json|000000000139", command))


def _run(wd: WorkDir, command: str, entry: Run) -> subprocess.CompletedProcess:
    wd.prepare(command)
    env = fresh_user_env(wd.home)
    env["KANPOSE_OFFLINE"] = "1"
    env["COLUMNS"] = "160"
    env["PATH"] = os.pathsep.join([env["PATH"], str(_console_scripts(wd.root / "bin"))])
    line = f"{command} {entry.budget}".strip()
    return subprocess.run(["bash", "-c", line], cwd=REPO if entry.cwd_repo else wd.work, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


# console scripts that ``pip install`` puts next to the interpreter: name -> the interpreter arguments that run it
CONSOLE_SCRIPTS = {"torchrun": "-m torch.distributed.run", "ruff": "-m ruff",
                   "yolo": "-c 'import sys; from ultralytics.cfg import entrypoint; sys.exit(entrypoint())'"}


def _console_scripts(folder: Path) -> Path:
    """``folder`` with a script for each of CONSOLE_SCRIPTS that is not next to this interpreter (a venv that
    borrows its packages from another environment), run by this interpreter."""
    folder.mkdir(exist_ok=True)
    for name, call in CONSOLE_SCRIPTS.items():
        if not (Path(sys.executable).parent / name).exists() and not (folder / name).exists():
            (folder / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" {call} "$@"\n')
            (folder / name).chmod(0o755)
    return folder


def _missing(wd: WorkDir, patterns: tuple[str, ...]) -> list[str]:
    return [p for p in patterns if not list(wd.work.glob(p))]


def _satisfy(wd: WorkDir, doc: DocCommand, entry: Run, all_commands: list[DocCommand]) -> None:
    """Run the file's earlier commands (that have not run) in order until ``entry.requires`` exist, else setup."""
    for earlier in all_commands:
        if not _missing(wd, entry.requires):
            return
        if earlier.file != doc.file or earlier.line >= doc.line or earlier.line in wd.ran:
            continue
        other = COMMANDS.get(earlier.command)
        if not isinstance(other, Run) or other.requires or other.cwd_repo:
            continue
        if other.needs == "hub" or (other.needs == "cuda" and not _cuda()):
            continue  # cannot make anything here
        wd.ran.add(earlier.line)
        proc = _run(wd, earlier.command, other)
        assert proc.returncode == 0, f"{earlier.file}:{earlier.line}: {earlier.command}\n{proc.stderr[-2000:]}"
    if _missing(wd, entry.requires) and entry.setup:
        proc = _run(wd, entry.setup, Run())
        assert proc.returncode == 0, f"setup {entry.setup}\n{proc.stderr[-2000:]}"
    assert not _missing(wd, entry.requires), f"{doc.command}: nothing made {_missing(wd, entry.requires)}"


ALL = doc_commands()


def _params():
    for doc in ALL:
        entry = COMMANDS.get(doc.command)
        marks = [pytest.mark.slow] if isinstance(entry, Run) and entry.slow else []
        yield pytest.param(doc, marks=marks, id=f"{doc.file}:{doc.line}")


def test_every_doc_command_is_in_the_table():
    documented = {d.command for d in ALL}
    missing = [f"{d.file}:{d.line}: {d.command}" for d in ALL if d.command not in COMMANDS]
    stale = [c for c in COMMANDS if c not in documented]
    assert not missing, "documented commands with no entry in COMMANDS:\n" + "\n".join(missing)
    assert not stale, "COMMANDS entries no longer in the docs:\n" + "\n".join(stale)


def test_extraction_joins_continuations_and_drops_comments():
    readme = [d for d in ALL if d.file == "README.md"]
    train = [d for d in readme if d.command.startswith("kanpose train --model")]
    assert train and train[0].command.endswith("--val-ann val.json --val-images val2017/ --device cuda")
    assert "#" not in train[0].command and "runs/train/exp1/weights/best.safetensors" in train[0].context
    assert len(ALL) >= 50 and all(d.command and not d.command.startswith("#") for d in ALL)


@pytest.mark.parametrize("doc", [d for d in ALL if isinstance(COMMANDS.get(d.command), Run)
                                 and COMMANDS[d.command].needs], ids=lambda d: f"{d.file}:{d.line}")
def test_expected_failures_are_announced(doc):
    """A command that cannot succeed without a GPU or a download says so within a few lines."""
    entry = COMMANDS[doc.command]
    pattern = NEEDS[entry.needs][2]
    assert re.search(pattern, doc.context), (
        f"{doc.file}:{doc.line}: `{doc.command}` needs {entry.needs} but the text near it does not say so "
        f"({pattern!r}): {doc.context!r}")


@pytest.mark.parametrize("doc", list(_params()))
def test_doc_command(doc, work_dirs):
    entry = COMMANDS.get(doc.command)
    if entry is None:
        pytest.fail(f"{doc.file}:{doc.line}: no COMMANDS entry for `{doc.command}`")
    if isinstance(entry, NotRun):
        pytest.skip(f"not run: {entry.reason}")
    if _needs_data(doc.command) and not (COCO_MINI / "annotations" / "person_keypoints_val2017.json").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set KANPOSE_SHARED_DATA)")
    wd = work_dirs(doc.file)
    if entry.requires:
        _satisfy(wd, doc, entry, ALL)
    wd.ran.add(doc.line)
    proc = _run(wd, doc.command, entry)
    where = f"{doc.file}:{doc.line}: {doc.command} {entry.budget}".strip()
    output = proc.stdout + proc.stderr
    expect_fail = entry.needs == "hub" or (entry.needs == "cuda" and not _cuda())
    if expect_fail and doc.command.startswith("torchrun"):
        # torchrun reports its failed workers with a traceback of its own (ChildFailedError); the workers' own
        # output must still be kanpose's one-line error, with no traceback through kanpose's code
        code, message, announce = NEEDS[entry.needs]
        assert re.search(announce, doc.context), f"{where}: exits non-zero here, and the docs do not say why"
        assert proc.returncode != 0 and re.search(rf"error: .*{message}", proc.stderr), f"{where}\n{output[-3000:]}"
        assert not re.search(r'File ".*kanpose_cli', output), f"{where}\n{output[-3000:]}"
        return
    assert "Traceback" not in output, f"{where}\n{output[-3000:]}"
    if not expect_fail:
        assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{output[-3000:]}"
        if entry.check:
            entry.check(wd.work, proc)
        return
    code, message, announce = NEEDS[entry.needs]
    assert re.search(announce, doc.context), f"{where}: exits {code} here, and the docs do not say why"
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code, f"{where}: exit {proc.returncode}, expected {code}\n{output[-3000:]}"
    assert len(errors) == 1 and errors[0].startswith("error: ") and re.search(message, errors[0]), \
        f"{where}: expected one error line\n{proc.stderr[-3000:]}"


if __name__ == "__main__":  # list the commands and how each is run
    for d in ALL:
        print(f"{d.file}:{d.line}: {d.command}  ->  {COMMANDS.get(d.command)}", file=sys.stdout)

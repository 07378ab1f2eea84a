"""End to end against the one-stage peer: whole processes on a folder of images, timed interleaved.

Runs, ``--rounds`` times in turn, ``kanpose predict DIR --no-save --no-save-json`` once per ``--backend`` and
``yolo pose predict model=yolo11n-pose.pt source=DIR save=False`` (the peer; it must run verbose: with
``verbose=False`` ultralytics' CLI returns without predicting), and prints images/s of each process (start-up
included, as a user sees it) and kanpose's ratio to the peer in the same round. Issue 14's target: ratio ≥ 0.9.

    python benchmarks/e2e_vs_peer.py ../shared/data/coco-mini/val2017 --rounds 2 --backend auto --backend torch

Threads: both tools get ``--threads`` (OMP_NUM_THREADS and torch's own setting via the environment).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def _timed(cmd: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path, help="folder of images")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backend", action="append", help="kanpose --backend values (default: auto)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    args.images = args.images.resolve()  # the processes run in a temporary folder
    n = sum(1 for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if n == 0:
        sys.exit(f"no images in {args.images}")
    backends = args.backend or ["auto"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    yolo = shutil.which("yolo") or sys.exit("the ultralytics `yolo` command is not on PATH")
    from kanpose_cli.core.detect.yolo import resolve_detector_weights  # the offline copy of yolo11n-pose.pt

    peer_weights = str(resolve_detector_weights("yolo11n-pose.pt"))
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: the onnxruntime export is cached on the first run, file caches fill
        for b in backends:
            _timed([sys.executable, "-m", "kanpose_cli", "predict", str(args.images), "--no-save", "--no-save-json",
                    "--backend", b, "--save-dir", tmp], env, tmp)
        print(f"{n} images, {args.threads} threads, {args.rounds} rounds")
        for r in range(args.rounds):
            peer = _timed([yolo, "pose", "predict", f"model={peer_weights}", f"source={args.images}", "save=False"],
                          env, tmp)
            row = [f"round {r + 1}: peer {n / peer:.2f} img/s ({peer:.1f} s)"]
            for b in backends:
                t = _timed([sys.executable, "-m", "kanpose_cli", "predict", str(args.images), "--no-save",
                            "--no-save-json", "--backend", b, "--save-dir", tmp], env, tmp)
                row.append(f"kanpose --backend {b} {n / t:.2f} img/s ({t:.1f} s, ratio {peer / t:.2f})")
            print(" · ".join(row), flush=True)


if __name__ == "__main__":
    main()

"""How long ``kanpose models`` takes on a fresh machine: an empty HOME and an empty kanpose cache.

Each repetition runs the installed ``kanpose`` console script in a subprocess (stdout to a pipe, as in
``kanpose models > models.txt``) with ``HOME``, ``XDG_CACHE_HOME`` and ``KANPOSE_HOME`` pointing into a new empty
temporary folder, and measures the wall-clock time from start to exit (Python start-up, the imports of torch,
torchvision and timm, the registry and the table) and the CPU time the child used (user + system: what the wall
time would be on an idle machine, a fairer figure on a loaded one). It checks that the command exited 0 and printed
every registered model, and reports whether it wrote a params/MACs cache (it should not: the figures ship with
the package).

    python benchmarks/models_cold_start.py [--repeat 3] [--format table|json|csv] [--threads 2]

Target (issue 31): under 10 s on 2 CPU cores. ``--threads`` limits the child to that many cores with
``taskset`` where available (Linux), to measure a 2-core machine on a bigger one. The machine's load average is
printed with the result: on a shared, loaded machine the times are longer and vary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def kanpose_command() -> list[str]:
    exe = Path(sys.executable).parent / "kanpose"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("kanpose")
    return [found] if found else [sys.executable, "-m", "kanpose_cli"]


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(fmt: str, threads: int | None) -> tuple[float, float, bool, str]:
    """Wall seconds and CPU seconds of one cold run, whether a MAC cache was written, and stdout."""
    with tempfile.TemporaryDirectory(prefix="kanpose-cold-") as home:
        env = {k: v for k, v in os.environ.items() if k not in ("KANPOSE_HOME", "XDG_CACHE_HOME", "COLUMNS")}
        env.update(HOME=home, XDG_CACHE_HOME=str(Path(home) / ".cache"), KANPOSE_HOME=str(Path(home) / "kanpose"))
        cmd = [*kanpose_command(), "models", "--format", fmt]
        if threads and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(str(i) for i in range(threads)), *cmd]
        cpu0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        if proc.returncode != 0:
            sys.exit(f"kanpose models failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        cached = any(p.name == "model_complexity.json" for p in Path(home).rglob("*"))
        return seconds, cpu, cached, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="cold runs (each with a new empty HOME)")
    ap.add_argument("--format", default="table", choices=("table", "json", "csv"))
    ap.add_argument("--threads", type=int, default=None, help="pin the child to this many CPU cores (taskset)")
    args = ap.parse_args()

    from kanpose_cli.core.models import list_models

    names = list_models()
    times, cpus = [], []
    for i in range(args.repeat):
        seconds, cpu, cached, out = one_run(args.format, args.threads)
        missing = [n for n in names if n not in out]
        if missing:
            sys.exit(f"kanpose models left out {', '.join(missing)}")
        times.append(seconds)
        cpus.append(cpu)
        print(f"run {i + 1}: {seconds:.2f} s wall, {cpu:.2f} s CPU"
              f"{'  (wrote a params/MACs cache: something was counted)' if cached else ''}", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = args.threads or os.cpu_count()
    print(f"kanpose models --format {args.format}, empty HOME and cache, {len(names)} models, {cores} cores, "
          f"load average {load:.1f}: median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
          f"max {max(times):.2f} s wall; CPU median {statistics.median(cpus):.2f} s (target < 10 s on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

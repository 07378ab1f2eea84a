"""Regenerate (or check) ``kanpose_cli/core/models/complexity.json``: params and MACs of every registered model,
which ``kanpose models`` shows without building any model.

Usage (maintainers; a few minutes on 2 CPU cores, the big ViTs dominate)::

    python tools/model_complexity.py            # recount every model, rewrite the file
    python tools/model_complexity.py --check    # recount, compare with the file, exit 1 on any difference
    python tools/model_complexity.py vitpose-s amfacpose-r18   # only these (others kept as they are)

Run it after changing a model's architecture or config, or the counting rule (then bump ``MAC_RULE`` in
``kanpose_cli/core/models/info.py``). ``tests/test_models_info.py`` recounts a few entries and checks every entry's
config key, so a stale file fails the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kanpose_cli.core.models import list_models  # noqa: E402
from kanpose_cli.core.models.info import MAC_RULE, SHIPPED_FILE, compute_complexity, config_key  # noqa: E402

TARGET = REPO / "kanpose_cli" / "core" / "models" / SHIPPED_FILE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="only these models (default: every registered model)")
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = ap.parse_args()
    old = json.loads(TARGET.read_text())["models"] if TARGET.is_file() else {}
    names = args.names or list_models()
    new = {n: e for n, e in old.items() if n in list_models()} if args.names else {}
    bad = 0
    for name in names:
        t0 = time.perf_counter()
        params, macs = compute_complexity(name)
        entry = {"key": config_key(name), "params": params, "macs": macs}
        same = old.get(name) == entry
        bad += not same
        print(f"{name:28s} params {params:>11,d}  MACs {macs:>15,d}  {time.perf_counter() - t0:5.1f} s"
              f"{'' if same else '  (changed)' if name in old else '  (new)'}", flush=True)
        new[name] = entry
    if args.check:
        print("all entries match" if not bad else f"{bad} entries differ from {TARGET.name}")
        return int(bad > 0)
    order = list_models()
    data = {"rule": MAC_RULE, "note": "params and MACs per model; regenerate with tools/model_complexity.py",
            "models": {n: new[n] for n in order if n in new}}
    TARGET.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {TARGET.relative_to(REPO)} ({len(data['models'])} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write LSP-Extended people as a COCO-style keypoint file on the native LSP-14 skeleton, for training an ``lsp14``
model (issue 33: a real skeleton that is not COCO), with the people whose left and right are swapped re-oriented.

    python tools/build_lsp14_set.py --range 1-9000 --out data/lsp14/lspet-1-9000.json

Reads ``data/lspet-full/joints.mat`` (all 10,000 LSP-Extended images, extracted by ``tools/build_training_set.sh``)
and that script's left/right report ``data/training-set/lspet-full.flips.json`` (people whose arms and/or legs fit the
YOLO11n-pose teacher far better with left and right exchanged; ``kanpose label --check-flips``). Each listed limb
group is re-oriented on the LSP-14 joints (arms: joints 7-12, legs: 1-6, 1-based as in the LSP README).

Output: one image entry per LSP-Extended image of the range, one annotation per person (``bbox`` = the extent of the
labelled joints enlarged by ``BOX_MARGIN``, as the LSP reader does), ``categories[0]`` = the ``lsp14`` set (names and
1-based skeleton, COCO convention). Images are referenced by file name (``im00001.jpg``): pass
``--train-images data/lspet-full/images``. Images outside the range are never read, so a held-out block (e.g.
9001-10000) stays unseen by training. Nothing under ``../shared`` or a tracked path is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanpose_cli.core.data.lsp import joints_box, read_lsp_joints  # noqa: E402
from kanpose_cli.core.keypoints import LSP14  # noqa: E402

GROUPS = {"legs": range(0, 6), "arms": range(6, 12)}  # 0-based LSP-14 joints of each limb group


def reorient(kp: np.ndarray, groups: list[str]) -> np.ndarray:
    """(14, 3) LSP-14 joints with left and right exchanged within each named limb group."""
    out = kp.copy()
    flip = np.asarray(LSP14.flip_index)
    for g in groups:
        idx = np.asarray(list(GROUPS[g]))
        out[idx] = kp[flip[idx]]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--joints", default="data/lspet-full/joints.mat")
    ap.add_argument("--images", default="data/lspet-full/images")
    ap.add_argument("--flips", default="data/training-set/lspet-full.flips.json",
                    help="left/right report of `kanpose label --check-flips` ('' = no re-orientation)")
    ap.add_argument("--range", default="1-9000", help="1-based inclusive image numbers, A-B")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        first, last = (int(v) for v in args.range.split("-"))
    except ValueError:
        print(f"error: --range must be A-B (1-based image numbers), got {args.range!r}", file=sys.stderr)
        return 2
    from PIL import Image

    joints = read_lsp_joints(args.joints)
    swapped = {}
    if args.flips:
        report = json.loads(Path(args.flips).read_text())
        swapped = {int(p["image_id"]): list(p["swapped"]) for p in report["swapped"]}
    images, anns, reoriented = [], [], 0
    for n in range(first, min(last, len(joints)) + 1):
        path = Path(args.images) / f"im{n:05d}.jpg"
        with Image.open(path) as im:
            w, h = im.size
        kp = joints[n - 1].copy()
        outside = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] > w - 1) | (kp[:, 1] > h - 1)
        kp[outside] = 0.0
        if n in swapped:
            kp = reorient(kp, swapped[n])
            reoriented += 1
        images.append({"id": n, "file_name": path.name, "width": w, "height": h})
        box = joints_box(kp, w, h)
        if box is None:
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        anns.append({"id": n, "image_id": n, "category_id": 1, "iscrowd": 0,
                     "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                     "area": round((x2 - x1) * (y2 - y1), 2), "num_keypoints": int((kp[:, 2] > 0).sum()),
                     "keypoints": [round(float(v), 2) for v in kp.reshape(-1)]})
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(LSP14.names),
           "skeleton": [[a + 1, b + 1] for a, b in LSP14.skeleton]}
    out = {"info": {"description": f"LSP-Extended images {first}-{last} on the LSP-14 skeleton, "
                                   f"{reoriented} people re-oriented (left/right)",
                    "source": "tools/build_lsp14_set.py"},
           "licenses": [], "images": images, "annotations": anns, "categories": [cat]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".partial")
    tmp.write_text(json.dumps(out))
    tmp.replace(args.out)
    print(f"{args.out}: {len(images)} images, {len(anns)} people, {reoriented} re-oriented")
    return 0


if __name__ == "__main__":
    from kanpose_cli.core.errors import KanposeError

    try:
        sys.exit(main())
    except (KanposeError, OSError, KeyError, ValueError) as exc:  # missing joints.mat / image / report, bad report
        print(f"error: {type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else f"error: {exc}", file=sys.stderr)
        sys.exit(2)

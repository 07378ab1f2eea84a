"""Left/right label check of a training set against a teacher, and the cleaned annotation file.

Some datasets label left and right from the viewer's side for part of their people (LSP-Extended does: about one
person in twelve, ``../shared/data/README.md``), which teaches a model to confuse them. This check runs a
person-centric COCO-trained teacher (default YOLO11n-pose) over the images and compares, for each labelled person,
the limb joints as labelled and with left and right exchanged.

The rule (:func:`flip_verdict`), per limb group, arms = shoulders, elbows, wrists and legs = hips, knees, ankles
(COCO-17 indices 5–10 and 11–16; LSP-14 reaches them through the declared LSP14 → COCO-17 mapping):

1. The usable joints of a group are the joints ``k`` whose label and whose mirror partner's label (``flip_index``)
   are both present (v > 0), and which the matched teacher person scores ≥ ``conf_thr`` (default 0.5), together
   with their partner. They come in pairs.
2. The group is **clear** when it has at least ``min_pairs`` (default 2) usable pairs, i.e. ≥ 4 of its 6 joints.
3. ``oks_labelled`` is the OKS (:mod:`kanpose_cli.core.evaluation.oks`, COCO sigmas, the person's box area as the
   scale) of the teacher's joints against the labels over the usable joints; ``oks_swapped`` the same with each
   joint compared to its partner's label.
4. A clear group is **swapped** when ``oks_swapped ≥ oks_labelled + margin`` (default margin 0.3): the exchanged
   labelling fits the teacher far better. (A side view, where left and right nearly coincide, gives two similar
   values and is never flagged; a frontal person labelled from the viewer's side gives e.g. 0.85 against 0.2.)

A person is clear when one of its groups is, swapped when one of its groups is. Re-orienting exchanges left and
right of the swapped groups only (the label of each joint of the group becomes its partner's); every other joint is
kept. The teacher person is matched as in the fill-in (:func:`~kanpose_cli.core.tasks.labeler.fill_missing_keypoints`)
but orientation-blind: the teacher person with the highest OKS over the person's labelled joints, as labelled or
mirrored, at least ``match_oks``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kanpose_cli.core.evaluation.oks import keypoint_similarity, object_keypoint_similarity
from kanpose_cli.core.keypoints import COCO17, KeypointSet
from kanpose_cli.core.tasks.labeler import coco_categories, teach, teacher_name

# COCO-17 limb groups: shoulders, elbows, wrists / hips, knees, ankles (each closed under the flip index)
LIMB_GROUPS = {"arms": (5, 6, 7, 8, 9, 10), "legs": (11, 12, 13, 14, 15, 16)}
DEFAULT_MARGIN = 0.3
DEFAULT_CONF = 0.5
DEFAULT_MIN_PAIRS = 2


@dataclass
class GroupVerdict:
    """One limb group's comparison: ``joints`` usable joints, OKS as labelled / swapped (0 when none usable)."""

    joints: int
    oks_labelled: float
    oks_swapped: float
    clear: bool
    swapped: bool


@dataclass
class FlipVerdict:
    """A person's verdict: ``groups`` maps ``arms`` / ``legs`` to their :class:`GroupVerdict`."""

    groups: dict[str, GroupVerdict]

    @property
    def clear(self) -> bool:
        return any(g.clear for g in self.groups.values())

    @property
    def swapped(self) -> bool:
        return any(g.swapped for g in self.groups.values())

    @property
    def swapped_groups(self) -> list[str]:
        return [name for name, g in self.groups.items() if g.swapped]


def flip_verdict(labels: np.ndarray, teacher_xy: np.ndarray, teacher_scores: np.ndarray, area: float,
                 kset: KeypointSet = COCO17, conf_thr: float = DEFAULT_CONF, min_pairs: int = DEFAULT_MIN_PAIRS,
                 margin: float = DEFAULT_MARGIN) -> FlipVerdict:
    """Compare one person's limb labels with the matched teacher person, as labelled and left/right swapped.

    Args:
        labels: (K, 3) ``x, y, v`` labelled keypoints on ``kset`` (COCO-17), image pixels, x before y; v > 0
            labelled. teacher_xy: (K, 2) the teacher's keypoints, same pixels. teacher_scores: (K,) in [0, 1].
        area: the person's scale in pixels² (box area) for OKS. kset: must be COCO-17 (the limb groups are its).
        conf_thr, min_pairs, margin: the rule of the module docstring.

    Returns:
        :class:`FlipVerdict` with one :class:`GroupVerdict` per limb group.

    Raises:
        ValueError: a keypoint set other than COCO-17, or arrays of the wrong shape.
    """
    if kset.name != COCO17.name:
        raise ValueError(f"the left/right check compares COCO-17 limb joints; got keypoint set {kset.name!r}")
    labels = np.asarray(labels, dtype=np.float64)
    t_xy = np.asarray(teacher_xy, dtype=np.float64)
    t_sc = np.asarray(teacher_scores, dtype=np.float64)
    K = kset.num_keypoints
    if labels.shape != (K, 3) or t_xy.shape != (K, 2) or t_sc.shape != (K,):
        raise ValueError(f"expected labels ({K}, 3), teacher_xy ({K}, 2), teacher_scores ({K},); got "
                         f"{labels.shape}, {t_xy.shape}, {t_sc.shape}")
    flip = np.asarray(kset.flip_index)
    sigmas = kset.sigmas_array()
    ok = (labels[:, 2] > 0) & (t_sc >= conf_thr)
    groups = {}
    for name, idx in LIMB_GROUPS.items():
        idx = np.asarray(idx)
        use = idx[ok[idx] & ok[flip[idx]]]
        n = len(use)
        if n == 0:
            groups[name] = GroupVerdict(0, 0.0, 0.0, False, False)
            continue
        lab = float(keypoint_similarity(t_xy[use], labels[use, :2], area, sigmas[use]).mean())
        swp = float(keypoint_similarity(t_xy[use], labels[flip[use], :2], area, sigmas[use]).mean())
        clear = n >= 2 * min_pairs
        groups[name] = GroupVerdict(n, round(lab, 4), round(swp, 4), clear, clear and swp >= lab + margin)
    return FlipVerdict(groups)


def reorient(labels: np.ndarray, groups: list[str], kset: KeypointSet = COCO17) -> np.ndarray:
    """``labels`` (K, 3) with left and right exchanged within the named limb ``groups`` (each joint takes its
    mirror partner's ``x, y, v``); other joints unchanged. Returns a new array."""
    out = np.asarray(labels, dtype=np.float64).copy()
    flip = np.asarray(kset.flip_index)
    for name in groups:
        idx = np.asarray(LIMB_GROUPS[name])
        out[idx] = np.asarray(labels, dtype=np.float64)[flip[idx]]
    return out


@dataclass
class PersonCheck:
    """The check of one labelled person: ``keypoints`` (K, 3) as written (re-oriented and/or filled),
    ``verdict`` (None when no teacher person matched or the image was unreadable), ``match_oks``, ``filled``
    (0-based joints added by the teacher fill-in), ``image_read``."""

    instance: object
    keypoints: np.ndarray
    verdict: FlipVerdict | None
    match_oks: float
    filled: list[int] = field(default_factory=list)
    image_read: bool = True


@dataclass
class FlipSummary:
    """Counts of one check: images read / skipped (unreadable), persons checked (in readable images), matched to a
    teacher person, clear, swapped (any group), per group clear and swapped, dropped, and joints filled."""

    images: int = 0
    skipped: int = 0
    checked: int = 0
    matched: int = 0
    clear: int = 0
    swapped: int = 0
    arms_clear: int = 0
    arms_swapped: int = 0
    legs_clear: int = 0
    legs_swapped: int = 0
    dropped: int = 0
    filled: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def check_flips(instances: list, teacher, *, conf_thr: float = DEFAULT_CONF, min_pairs: int = DEFAULT_MIN_PAIRS,
                margin: float = DEFAULT_MARGIN, match_oks: float = 0.5, fill: bool = False, kpt_thr: float = 0.5,
                on_image: Callable | None = None) -> tuple[list[PersonCheck], FlipSummary]:
    """Run the teacher once per image of ``instances`` and check every person (module docstring).

    Args:
        instances: :class:`~kanpose_cli.core.data.instances.Instance` list on COCO-17 (e.g. from
            :func:`kanpose_cli.core.data.training_sets.load_source`), image paths readable.
        teacher: as :func:`~kanpose_cli.core.tasks.labeler.label_images` (its ``keypoints`` must be COCO-17).
        fill: also fill the joints a person lacks from its matched teacher person where the teacher scores
            ≥ ``kpt_thr`` (the fill-in of ``kanpose label --fill``, after re-orientation; same teacher pass).
        on_image: ``fn(frame, n_swapped or None)`` after each image (None when it could not be read).

    Returns:
        ``(checks in instance order, summary)``; ``summary.dropped`` stays 0 (dropping is the writer's choice).

    Raises:
        UsageError: a teacher whose keypoint set is not COCO-17.
    """
    from kanpose_cli.core.data.sources import read_frames
    from kanpose_cli.core.errors import UsageError

    kset = getattr(teacher, "keypoints", COCO17)
    if kset.name != COCO17.name:
        raise UsageError(f"the left/right check needs a COCO-17 teacher; this one predicts {kset.name}")
    sigmas, flip = kset.sigmas_array(), np.asarray(kset.flip_index)
    by_path: dict[str, list[int]] = {}
    for n, inst in enumerate(instances):
        by_path.setdefault(inst.image_path, []).append(n)


    checks: list[PersonCheck | None] = [None] * len(instances)
    summary = FlipSummary()
    for frame, out in teach(read_frames(by_path), teacher):
        people = by_path[str(frame.path)]
        if out is None:
            summary.skipped += 1
            for n in people:
                checks[n] = PersonCheck(instances[n], instances[n].keypoints.copy(), None, 0.0, image_read=False)
            if on_image:
                on_image(frame, None)
            continue
        summary.images += 1
        _, _, t_kpts, t_scores = out
        t_kpts = np.asarray(t_kpts, dtype=np.float64).reshape(-1, kset.num_keypoints, 2)
        t_scores = np.asarray(t_scores, dtype=np.float64).reshape(-1, kset.num_keypoints)
        n_swapped = 0
        for n in people:
            inst = instances[n]
            kp = inst.keypoints.copy()
            x1, y1, x2, y2 = (float(v) for v in inst.box)
            area = max(1.0, (x2 - x1) * (y2 - y1))
            lab = kp[:, 2] > 0
            sims = np.maximum(object_keypoint_similarity(t_kpts, kp[None, :, :2], area, sigmas, lab[None]),
                              object_keypoint_similarity(t_kpts, kp[None, flip, :2], area, sigmas, lab[flip][None]))
            best = int(np.argmax(sims)) if len(sims) else -1
            summary.checked += 1
            if best < 0 or sims[best] < match_oks:
                checks[n] = PersonCheck(inst, kp, None, float(sims[best]) if best >= 0 else 0.0)
                continue
            summary.matched += 1
            verdict = flip_verdict(kp, t_kpts[best], t_scores[best], area, kset, conf_thr, min_pairs, margin)
            if verdict.swapped:
                kp = reorient(kp, verdict.swapped_groups, kset)
                n_swapped += 1
            filled: list[int] = []
            if fill:
                for k in np.flatnonzero((kp[:, 2] <= 0) & (t_scores[best] >= kpt_thr)):
                    kp[k] = (t_kpts[best, k, 0], t_kpts[best, k, 1], 2.0)
                    filled.append(int(k))
            summary.filled += len(filled)
            summary.clear += verdict.clear
            summary.swapped += verdict.swapped
            for g in LIMB_GROUPS:
                setattr(summary, f"{g}_clear", getattr(summary, f"{g}_clear") + verdict.groups[g].clear)
                setattr(summary, f"{g}_swapped", getattr(summary, f"{g}_swapped") + verdict.groups[g].swapped)
            checks[n] = PersonCheck(inst, kp, verdict, float(sims[best]), filled)
        if on_image:
            on_image(frame, n_swapped)
    return [c for c in checks if c is not None], summary


def _check_fields(c: PersonCheck) -> dict:
    """The ``flip_check`` entry written into each annotation."""
    if c.verdict is None:
        return {"matched": False, "match_oks": round(c.match_oks, 4)}
    return {"matched": True, "match_oks": round(c.match_oks, 4), "clear": c.verdict.clear,
            "swapped": c.verdict.swapped_groups,
            **{g: [v.joints, v.oks_labelled, v.oks_swapped] for g, v in c.verdict.groups.items()}}


def _flat(kp: np.ndarray) -> list:
    return [round(float(v), 2) if j % 3 < 2 else int(v) for j, v in enumerate(kp.reshape(-1))]


def cleaned_coco(checks: list[PersonCheck], ann_format: str, ann_file: str | Path, images_root: str | Path,
                 drop: bool = False, kset: KeypointSet = COCO17, info: dict | None = None) -> tuple[dict, int]:
    """The cleaned annotation file as a COCO keypoint dict, and the number of people dropped.

    ``coco`` input: the input file with every field kept; the annotations of checked persons get their
    re-oriented (and filled) ``keypoints``, ``num_keypoints``, a ``flip_check`` entry (match OKS, clear, swapped
    groups, per group ``[usable joints, OKS as labelled, OKS swapped]``) and ``filled`` when joints were filled;
    with ``drop`` the swapped persons' annotations are removed instead. ``lsp`` / ``mpii`` input: one annotation
    per kept person on ``kset`` (e.g. COCO-17, the mapped joints; LSP's neck and head top are not COCO joints),
    ``image_id`` = ``id`` = LSP column + 1 (MPII: ``id`` = entry + 1, ``image_id`` numbers the distinct images),
    ``file_name`` relative to ``images_root``, ``bbox`` the training box (LSP: the joints box, MPII: mmpose's)
    (xywh, inclusive pixels as :func:`~kanpose_cli.core.data.coco.gt_person_box` reads it), ``area`` its area.
    Either loads with ``kanpose train --train-ann OUT --train-images images_root``.
    """
    from kanpose_cli.core.data.coco import read_coco_json

    by_key = {(int(c.instance.image_id), int(c.instance.ann_id)): c for c in checks}
    dropped = 0
    if ann_format == "coco":
        coco = read_coco_json(ann_file)
        anns = []
        for a in coco["annotations"]:
            c = by_key.get((int(a["image_id"]), int(a.get("id", -1))))
            if c is None:
                anns.append(a)
                continue
            if drop and c.verdict is not None and c.verdict.swapped:
                dropped += 1
                continue
            a = dict(a, keypoints=_flat(c.keypoints), num_keypoints=int((c.keypoints[:, 2] > 0).sum()),
                     flip_check=_check_fields(c))
            if c.filled:
                a["filled"] = c.filled
            anns.append(a)
        coco = dict(coco, annotations=anns)
        if info:
            coco["info"] = {**(coco.get("info") or {}), **info}
        return coco, dropped
    images, anns = {}, []
    for c in checks:
        if drop and c.verdict is not None and c.verdict.swapped:
            dropped += 1
            continue
        inst = c.instance
        try:
            rel = str(Path(inst.image_path).relative_to(Path(images_root)))
        except ValueError:
            rel = Path(inst.image_path).name
        images.setdefault(int(inst.image_id), {"id": int(inst.image_id), "file_name": rel,
                                               "width": int(inst.width), "height": int(inst.height)})
        x1, y1, x2, y2 = (float(v) for v in inst.box)
        a = {"id": int(inst.ann_id), "image_id": int(inst.image_id), "category_id": 1,
             "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1 + 1, 2), round(y2 - y1 + 1, 2)],
             "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0,
             "num_keypoints": int((c.keypoints[:, 2] > 0).sum()), "keypoints": _flat(c.keypoints),
             "flip_check": _check_fields(c)}
        if c.filled:
            a["filled"] = c.filled
        anns.append(a)
    coco = {"info": {"description": f"kanpose left/right check of {Path(ann_file).name}", **(info or {})},
            "licenses": [], "images": list(images.values()), "annotations": anns, "categories": coco_categories(kset)}
    return coco, dropped


def flip_report(checks: list[PersonCheck], summary: FlipSummary, teacher, settings: dict) -> dict:
    """The JSON report: settings, counts and one row per swapped person (image, ann id, groups, OKS values)."""
    rows = [{"image": c.instance.image_path, "image_id": int(c.instance.image_id), "ann_id": int(c.instance.ann_id),
             **_check_fields(c)} for c in checks if c.verdict is not None and c.verdict.swapped]
    return {"teacher": teacher_name(teacher), "settings": settings, "counts": summary.to_dict(), "swapped": rows}

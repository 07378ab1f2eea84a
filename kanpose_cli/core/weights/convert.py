"""Foreign weights: turn official ViTPose (mmpose 0.x), ViTPose+ (mixture of experts) and Hugging Face
``VitPoseForPoseEstimation`` checkpoints into this repository's keys, and load them with a clear error when they do
not fit.

Converters are registered by name in :data:`CONVERTERS` (a :class:`~kanpose_cli.core.registry.Registry`); a model
spec names its converter (:attr:`ModelSpec.converter`). Signature: ``fn(state_dict, dataset=0) -> (state_dict,
report)``. The report is a dict:

- ``format``: detected source format (``mmpose-vitpose``, ``hf-vitpose``, ``native``, ``unknown``);
- ``unused``: source keys that could not be mapped (never silently dropped: they make the load fail);
- ``skipped``: source keys dropped on purpose, each with its reason in ``reasons`` (``skipped_reason`` holds the
  first reason, e.g. the ViTPose patch embedding when loading ViTPose-S weights into a KAN-FPN model, whose stem
  replaces it);
- ``allow_missing``: prefixes of *our* keys that the source is not expected to provide (e.g. ``stem.``);
- ``merged``: one line when mixture-of-experts MLPs were merged (empty otherwise).

:func:`load_foreign_weights` adds ``missing`` (our keys left at their initial values, all under ``allow_missing``)
and ``loaded`` (number of tensors loaded).

ViTPose+ (Xu et al., "ViTPose++: Vision Transformer for Generic Body Pose Estimation", TPAMI 2023): every MLP is
``fc1`` (shared) -> GELU -> ``[fc2 (shared, D − P outputs) ; experts[d] (dataset d's P outputs)]`` concatenated
along the features, as in the official ``vit_moe.py`` and transformers' ``VitPoseBackboneMoeMLP``. For one dataset
``d`` that is exactly a plain MLP whose ``fc2`` weight is the row-stack ``[fc2.weight ; experts[d].weight]`` (and the
same for the bias), so :func:`merge_vitpose_plus_experts` turns ViTPose+ into plain ViTPose without any change in
the outputs. Dataset order of the ViTPose+ checkpoints: :data:`VITPOSE_PLUS_DATASETS` (0 = COCO). The published
checkpoints carry only the COCO keypoint head, so only dataset 0 is accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.registry import Registry
from kanpose_cli.core.weights.checkpoint import read_state_dict

VITPOSE_PLUS_DATASETS = ("coco", "aic", "mpii", "ap10k", "apt36k", "wholebody")

# Hugging Face VitPose -> ours (backbone + heads). q/k/v are fused separately.
_HF_BACKBONE = [
    (r"^backbone\.embeddings\.patch_embeddings\.projection\.(weight|bias)$", r"backbone.patch_embed.proj.\1"),
    (r"^backbone\.embeddings\.position_embeddings$", r"backbone.pos_embed"),
    (r"^backbone\.encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$", r"backbone.blocks.\1.norm1.\2"),
    (r"^backbone\.encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$", r"backbone.blocks.\1.norm2.\2"),
    (r"^backbone\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$", r"backbone.blocks.\1.attn.proj.\2"),
    (r"^backbone\.encoder\.layer\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$", r"backbone.blocks.\1.mlp.\2.\3"),
    (r"^backbone\.layernorm\.(weight|bias)$", r"backbone.last_norm.\1"),
]
_HF_CLASSIC_HEAD = [
    (r"^head\.deconv1\.weight$", "head.deconv_layers.0.weight"),
    (r"^head\.batchnorm1\.(.+)$", r"head.deconv_layers.1.\1"),
    (r"^head\.deconv2\.weight$", "head.deconv_layers.3.weight"),
    (r"^head\.batchnorm2\.(.+)$", r"head.deconv_layers.4.\1"),
    (r"^head\.conv\.(weight|bias)$", r"head.final_layer.\1"),
]
_HF_QKV = re.compile(r"^backbone\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$")
_EXPERT = re.compile(r"^(.+\.mlp)\.experts\.(\d+)\.(weight|bias)$")
# Keys of multi-dataset checkpoints that plain ViTPose has no place for.
_EXTRA = [
    (re.compile(r"^associate_keypoint_heads\."), "keypoint heads of the other ViTPose+ datasets (COCO head kept)"),
    (re.compile(r"^backbone\.cls_token$"), "class token, unused by ViTPose"),
]

CONVERTERS: Registry = Registry("weight converter")


def unwrap_checkpoint(obj) -> dict[str, torch.Tensor]:
    """Plain ``{name: tensor}`` from a loaded checkpoint: unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` /
    ``{"module": ...}`` and strips a DataParallel ``module.`` prefix. Raises WeightsError if no tensors are found."""
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError("checkpoint holds no state dict (expected a dict of tensors or {'state_dict': ...})")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def new_report(fmt: str) -> dict:
    """An empty converter report (module docstring) for source format ``fmt``."""
    return {"format": fmt, "unused": [], "skipped": [], "skipped_reason": "", "reasons": {}, "numel": {},
            "allow_missing": [], "merged": ""}


def _skip(report: dict, keys, reason: str, sd: dict | None = None, numel: dict | None = None) -> None:
    """Record ``keys`` as skipped for ``reason`` (with their element counts, from ``sd`` or ``numel``)."""
    for k in keys:
        report["skipped"].append(k)
        report["reasons"][k] = reason
        if sd is not None and k in sd:
            report["numel"][k] = sd[k].numel()
        elif numel is not None and k in numel:
            report["numel"][k] = numel[k]
    if keys and not report["skipped_reason"]:
        report["skipped_reason"] = reason


def dataset_index(dataset: int | str) -> int:
    """ViTPose+ dataset index from an index or a name of :data:`VITPOSE_PLUS_DATASETS` (case-insensitive).

    Raises:
        UsageError: unknown name or negative index.
    """
    if isinstance(dataset, str):
        text = dataset.strip().lower()
        if text.isdigit():
            return int(text)
        if text in VITPOSE_PLUS_DATASETS:
            return VITPOSE_PLUS_DATASETS.index(text)
        raise UsageError(f"unknown ViTPose+ dataset {dataset!r}; the datasets are, in order: "
                         f"{', '.join(f'{i} {n}' for i, n in enumerate(VITPOSE_PLUS_DATASETS))}")
    if int(dataset) < 0:
        raise UsageError(f"ViTPose+ dataset index must be >= 0, got {dataset}")
    return int(dataset)


def _dataset_name(index: int) -> str:
    return VITPOSE_PLUS_DATASETS[index] if index < len(VITPOSE_PLUS_DATASETS) else f"dataset {index}"


def require_coco(dataset: int | str) -> int:
    """The dataset index if it is 0 (COCO).

    Raises:
        UsageError: any other dataset: the published ViTPose+ checkpoints carry only the COCO keypoint head
            (17 keypoints); another dataset's expert under it gives a model for neither.
    """
    index = dataset_index(dataset)
    if index != 0:
        raise UsageError(f"ViTPose+ dataset {index} ({_dataset_name(index)}) refused: the checkpoint's keypoint head "
                         f"is the COCO head (17 keypoints), so only dataset 0 (coco) gives a working model")
    return index


def merge_vitpose_plus_experts(sd: dict, dataset: int | str = 0) -> tuple[dict, dict]:
    """ViTPose+ mixture-of-experts MLPs -> plain MLPs for one dataset, exactly (module docstring).

    Works on any key layout whose MoE MLPs are ``<prefix>.mlp.fc2.{weight,bias}`` (shape (D − P, hidden), (D − P,))
    plus ``<prefix>.mlp.experts.<i>.{weight,bias}`` ((P, hidden), (P,)): the official checkpoints
    (``backbone.blocks.N.mlp``) and transformers' (``backbone.encoder.layer.N.mlp``). A state dict without experts
    is returned unchanged.

    Args:
        sd: the state dict. dataset: index or name (:data:`VITPOSE_PLUS_DATASETS`); only 0 (COCO) is accepted.

    Returns:
        ``(state dict with merged fc2 and no expert keys, report)``; the report's ``skipped`` lists the other
        datasets' expert tensors and ``merged`` says what was merged.

    Raises:
        UsageError: ``dataset`` is not COCO (the checkpoint's keypoint head is COCO's 17-keypoint head; another
            dataset's expert under it would give a model for neither).
        WeightsError: ``dataset`` beyond the checkpoint's experts, or an MoE MLP without its shared ``fc2``, or
            expert shapes that do not fit it.
    """
    report = new_report("")
    experts: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
    for k, v in sd.items():
        m = _EXPERT.match(k)
        if m:
            experts.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = v
    if not experts:
        return dict(sd), report
    index = dataset_index(dataset)
    n_experts = max(len(e) for e in experts.values())
    if index >= n_experts:
        raise WeightsError(f"ViTPose+ dataset index {index} is out of range: the checkpoint has {n_experts} experts")
    require_coco(index)
    out = {k: v for k, v in sd.items() if not _EXPERT.match(k)}
    for prefix, parts in sorted(experts.items()):
        chosen = parts.get(index, {})
        for kind in ("weight", "bias"):
            shared = out.get(f"{prefix}.fc2.{kind}")
            if shared is None or kind not in chosen:
                raise WeightsError(f"ViTPose+ MLP {prefix} has experts but no shared fc2.{kind} "
                                   f"(or expert {index} lacks its {kind})")
            if shared.shape[1:] != chosen[kind].shape[1:]:
                raise WeightsError(f"ViTPose+ MLP {prefix}: expert {index} {kind} {tuple(chosen[kind].shape)} does "
                                   f"not fit fc2 {tuple(shared.shape)}")
            out[f"{prefix}.fc2.{kind}"] = torch.cat([shared, chosen[kind]], 0)
        others = sorted(f"{prefix}.experts.{i}.{kind}" for i, p in parts.items() if i != index for kind in p)
        _skip(report, others, "experts of the other ViTPose+ datasets (only COCO's is merged)", sd)
    report["merged"] = (f"ViTPose+ mixture of experts: shared + expert {index} ({_dataset_name(index)}) merged into "
                        f"one MLP in {len(experts)} blocks")
    return out, report


def detect_vitpose_format(sd: dict) -> str:
    """``mmpose-vitpose`` | ``hf-vitpose`` | ``native`` | ``unknown`` from the key names."""
    keys = list(sd)
    if any(k.startswith("keypoint_head.") for k in keys) or (
        any(k.startswith("backbone.blocks.") for k in keys) and not any(k.startswith("head.") for k in keys)
    ):
        return "mmpose-vitpose"
    if any(k.startswith(("backbone.embeddings.", "backbone.encoder.layer.")) for k in keys):
        return "hf-vitpose"
    if any(k.startswith("backbone.") for k in keys) and any(k.startswith("head.") for k in keys):
        return "native"
    return "unknown"


def _from_mmpose(sd: dict, rep: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[k] = v
        elif k.startswith("keypoint_head."):
            out["head." + k[len("keypoint_head."):]] = v
        else:
            rep["unused"].append(k)
    return out


def _from_hf(sd: dict, rep: dict) -> dict:
    out = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    simple = "head.conv.weight" in sd and sd["head.conv.weight"].shape[-1] > 1 and "head.deconv1.weight" not in sd
    rules = _HF_BACKBONE + ([(r"^head\.conv\.(weight|bias)$", r"head.final_layer.\1")] if simple else _HF_CLASSIC_HEAD)
    for k, v in sd.items():
        m = _HF_QKV.match(k)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = v
            continue
        for pat, rep_ in rules:
            if re.match(pat, k):
                out[re.sub(pat, rep_, k)] = v
                break
        else:
            rep["unused"].append(k)
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            rep["unused"] += [f"backbone.encoder.layer.{layer}.attention.attention.{p}.{kind}" for p in parts]
            continue
        out[f"backbone.blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


@CONVERTERS.register("vitpose")
def convert_vitpose(sd: dict, dataset: int | str = 0) -> tuple[dict, dict]:
    """ViTPose checkpoint -> our ViTPose keys (``backbone.*``, ``head.*``) and a report (module docstring).

    Sources: official mmpose-0.x keys (``backbone.*`` / ``keypoint_head.*``), Hugging Face
    ``VitPoseForPoseEstimation`` keys, or ours; each of them plain or ViTPose+ (mixture of experts, merged for
    ``dataset`` by :func:`merge_vitpose_plus_experts`). Hugging Face's separate query/key/value projections are
    concatenated into the fused ``qkv`` (q, k, v order); its ``deconv1/batchnorm1/deconv2/batchnorm2/conv`` map to
    ``deconv_layers.0/1/3/4`` and ``final_layer``. The other ViTPose+ datasets' keypoint heads and a class token
    are skipped (reported).

    Raises:
        UsageError, WeightsError: see :func:`merge_vitpose_plus_experts`.
    """
    sd, merged = merge_vitpose_plus_experts(unwrap_checkpoint(sd), dataset)
    fmt = detect_vitpose_format(sd)
    rep = new_report(fmt)
    rep["merged"] = merged["merged"]
    _skip(rep, merged["skipped"], merged["skipped_reason"], numel=merged["numel"])
    for pattern, reason in _EXTRA:
        extra = sorted(k for k in sd if pattern.match(k))
        _skip(rep, extra, reason, sd)
        sd = {k: v for k, v in sd.items() if k not in extra}
    if fmt == "mmpose-vitpose":
        return _from_mmpose(sd, rep), rep
    if fmt == "hf-vitpose":
        return _from_hf(sd, rep), rep
    if fmt == "native":
        return dict(sd), rep
    rep["unused"] = sorted(sd)
    return {}, rep


@CONVERTERS.register("vitpose-hybrid")
def convert_vitpose_to_hybrid(sd: dict, dataset: int | str = 0) -> tuple[dict, dict]:
    """ViTPose weights -> a model whose ViT takes tokens from its own stem (KAN-FPN-Stem family, stages 1–6).

    Same mapping as :func:`convert_vitpose`; the ViTPose patch embedding is dropped (reported under ``skipped``)
    and our ``stem.*`` keys are allowed to stay at their initial values. Native checkpoints of the hybrid model
    (with ``stem.*`` keys) pass through unchanged.
    """
    sd = unwrap_checkpoint(sd)
    if any(k.startswith("stem.") for k in sd) and detect_vitpose_format(sd) == "native":
        return dict(sd), new_report("native")
    out, rep = convert_vitpose(sd, dataset)
    patch = sorted(k for k in out if k.startswith("backbone.patch_embed."))
    _skip(rep, patch, "the KAN-FPN/CNN stem replaces ViTPose's patch embedding", out)
    for k in patch:
        del out[k]
    if patch:
        rep["skipped_reason"] = rep["reasons"][patch[0]]
    rep["allow_missing"] = ["stem."]
    return out, rep


def convert_state_dict(model, sd: dict, dataset: int | str = 0) -> tuple[dict, dict]:
    """``sd`` in ``model.net``'s keys through the model's converter (``model.spec.converter``; none: the keys are
    taken as they are, after unwrapping)."""
    name = model.spec.converter
    if name is None:
        return unwrap_checkpoint(sd), new_report("native")
    return CONVERTERS.get(name)(sd, dataset=dataset)


def _examples(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_foreign_weights(model, path, dataset: int | str = 0) -> dict:
    """Load an official/Hugging Face/own checkpoint into ``model.net`` through the spec's converter; every tensor
    of ``model.net`` must be provided except the converter's ``allow_missing`` parts.

    Args:
        model: a :class:`~kanpose_cli.core.models.registry.PoseModel`.
        path: ``.pth``/``.pt``/``.bin`` (read with ``torch.load(weights_only=True)``) or ``.safetensors``.
        dataset: ViTPose+ dataset whose expert is merged (0 = COCO, the only one accepted).

    Returns:
        The converter's report plus ``missing`` (our keys not provided, all under ``allow_missing``) and
        ``loaded`` (number of tensors copied).

    Raises:
        WeightsError: unreadable file, or keys/shapes that do not fit (one line naming a few of them).
        UsageError: a ViTPose+ dataset other than COCO.
    """
    path = Path(path)
    new, report = convert_state_dict(model, read_state_dict(path), dataset)
    target = model.net.state_dict()
    allow = tuple(report.get("allow_missing", ()))
    missing = [k for k in target if k not in new]
    bad_missing = [k for k in missing if not k.startswith(allow) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in new if k not in target]
    mismatched = [f"{k} {tuple(new[k].shape)} vs {tuple(target[k].shape)}"
                  for k in new if k in target and new[k].shape != target[k].shape]
    unused = list(report.get("unused", [])) + unexpected
    if bad_missing or unused or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es) ({_examples(mismatched)})")
        if bad_missing:
            parts.append(f"{len(bad_missing)} missing key(s) ({_examples(bad_missing)})")
        if unused:
            parts.append(f"{len(unused)} unused key(s) ({_examples(unused)})")
        raise WeightsError(f"{path.name} ({report.get('format', '?')}) does not fit {model.name}: " + "; ".join(parts))
    model.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in new.items()}, strict=False)
    model.weights_label = path.name
    report = dict(report)
    report["missing"] = missing
    report["loaded"] = len(new)
    return report

"""Foreign weights: turn official ViTPose (mmpose 0.x) and Hugging Face ``VitPoseForPoseEstimation`` checkpoints
into this repository's keys, and load them with a clear error when they do not fit.

Converters have the :attr:`ModelSpec.convert_state_dict` signature ``fn(state_dict) -> (state_dict, report)``.
The report is a dict:

- ``format``: detected source format (``mmpose-vitpose``, ``hf-vitpose``, ``native``, ``unknown``);
- ``unused``: source keys that could not be mapped (never silently dropped: they make the load fail);
- ``skipped``: source keys dropped on purpose, with the reason in ``skipped_reason`` (e.g. the ViTPose patch
  embedding when loading ViTPose-S weights into a KAN-FPN model, whose stem replaces it);
- ``allow_missing``: prefixes of *our* keys that the source is not expected to provide (e.g. ``stem.``).

:func:`load_foreign_weights` adds ``missing`` (our keys left at their initial values, all under
``allow_missing``) and ``loaded`` (number of tensors loaded).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from kanpose_cli.core.errors import WeightsError

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


def _report(fmt: str) -> dict:
    return {"format": fmt, "unused": [], "skipped": [], "skipped_reason": "", "allow_missing": []}


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


def _from_mmpose(sd: dict) -> tuple[dict, dict]:
    out, rep = {}, _report("mmpose-vitpose")
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[k] = v
        elif k.startswith("keypoint_head."):
            out["head." + k[len("keypoint_head."):]] = v
        else:
            rep["unused"].append(k)
    return out, rep


def _from_hf(sd: dict) -> tuple[dict, dict]:
    out, rep = {}, _report("hf-vitpose")
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
    return out, rep


def convert_vitpose(sd: dict) -> tuple[dict, dict]:
    """ViTPose checkpoint (official mmpose-0.x keys ``backbone.*`` / ``keypoint_head.*``, Hugging Face
    ``VitPoseForPoseEstimation`` keys, or ours) -> our ViTPose keys (``backbone.*``, ``head.*``) and a report.

    Hugging Face's separate query/key/value projections are concatenated into the fused ``qkv`` (q, k, v order);
    its ``deconv1/batchnorm1/deconv2/batchnorm2/conv`` map to ``deconv_layers.0/1/3/4`` and ``final_layer``.
    Mixture-of-experts (ViTPose++) keys are not supported and are reported as unused.
    """
    sd = unwrap_checkpoint(sd)
    fmt = detect_vitpose_format(sd)
    if fmt == "mmpose-vitpose":
        return _from_mmpose(sd)
    if fmt == "hf-vitpose":
        return _from_hf(sd)
    if fmt == "native":
        return dict(sd), _report("native")
    rep = _report("unknown")
    rep["unused"] = sorted(sd)
    return {}, rep


def convert_vitpose_to_hybrid(sd: dict) -> tuple[dict, dict]:
    """ViTPose weights -> a model whose ViT takes tokens from its own stem (KAN-FPN-Stem family, stages 1–6).

    Same mapping as :func:`convert_vitpose`; the ViTPose patch embedding is dropped (reported under ``skipped``)
    and our ``stem.*`` keys are allowed to stay at their initial values. Native checkpoints of the hybrid model
    (with ``stem.*`` keys) pass through unchanged.
    """
    sd = unwrap_checkpoint(sd)
    if any(k.startswith("stem.") for k in sd) and detect_vitpose_format(sd) == "native":
        return dict(sd), _report("native")
    out, rep = convert_vitpose(sd)
    rep["skipped"] = sorted(k for k in out if k.startswith("backbone.patch_embed."))
    for k in rep["skipped"]:
        del out[k]
    if rep["skipped"]:
        rep["skipped_reason"] = "the KAN-FPN/CNN stem replaces ViTPose's patch embedding"
    rep["allow_missing"] = ["stem."]
    return out, rep


def _read(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if suffix in (".pth", ".pt", ".bin", ".ckpt"):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt file, pickled code objects refused by weights_only, ...
        raise WeightsError(f"cannot read weights {path.name}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    raise WeightsError(f"unsupported weights file type {suffix!r} (use .pth, .pt, .bin or .safetensors)")


def _examples(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_foreign_weights(model, path) -> dict:
    """Load an official/Hugging Face/own checkpoint into ``model.net`` through the spec's converter.

    Args:
        model: a :class:`~kanpose_cli.core.models.registry.PoseModel`.
        path: ``.pth``/``.pt``/``.bin`` (read with ``torch.load(weights_only=True)``) or ``.safetensors``.

    Returns:
        The converter's report plus ``missing`` (our keys not provided, all under ``allow_missing``) and
        ``loaded`` (number of tensors copied).

    Raises:
        WeightsError: unreadable file, or keys/shapes that do not fit (one line naming a few of them).
    """
    path = Path(path)
    sd = unwrap_checkpoint(_read(path))
    convert = model.spec.convert_state_dict
    new, report = convert(sd) if convert is not None else (sd, _report("native"))
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
    model.net.load_state_dict(new, strict=False)
    model.weights_label = path.name
    report = dict(report)
    report["missing"] = missing
    report["loaded"] = len(new)
    return report

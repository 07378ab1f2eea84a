"""Turning ``--model`` / ``--weights`` into a ready :class:`PoseModel` (:func:`load_pose_model`), and
``kanpose train --init`` into partly initialised weights with a report (:func:`init_weights`)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.models.registry import PoseModel, canonical_model_name, create_model, get_spec, shipped_weights
from kanpose_cli.core.paths import cache_dir, shipped_weights_dir
from kanpose_cli.core.weights.card import has_model_card, read_model_card
from kanpose_cli.core.weights.checkpoint import load_checkpoint, read_state_dict
from kanpose_cli.core.weights.convert import convert_state_dict, load_foreign_weights, unwrap_checkpoint
from kanpose_cli.core.weights.hub import HF_SCHEME, fetch_converted, is_hub_weights, resolve_hub_weights

DEFAULT_MODEL = "amfacpose-r18-128x96"
RANDOM = "random"
RANDOM_LABEL = "RANDOM WEIGHTS (untrained)"
SHIPPED = "shipped"


def shipped_files() -> list[Path]:
    """The ``.safetensors`` files shipped with kanpose (:func:`~kanpose_cli.core.paths.shipped_weights_dir`) and
    those placed in ``<cache>/weights``, sorted by name (the shipped folder first when a name is in both)."""
    seen, out = set(), []
    for folder in (shipped_weights_dir(), cache_dir() / "weights"):
        for f in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            if f.name not in seen:
                seen.add(f.name)
                out.append(f)
    return out


def resolve_weights_path(weights: str, model: str | None = None, what: str = "weights file") -> Path:
    """The local file meant by a ``--weights`` / ``--init`` value.

    In order: an existing file (``~`` expanded); ``shipped`` (the shipped weights of ``model``, default
    :data:`DEFAULT_MODEL`); the name of a shipped file, with or without ``.safetensors``
    (``amfacpose-r18-128x96-coco-lsp``); a registered model name that has shipped weights
    (``amfacpose-r18-128x96``). Names are matched case-insensitively; a value with a folder in it is only a path.

    Args:
        weights: the option's value. model: the ``--model`` given, or None. what: how errors name the value
            (``init weights``).

    Returns:
        The file's path.

    Raises:
        WeightsError: nothing matches (one line naming the shipped files), or ``model`` has no shipped weights.
    """
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    key = weights.strip()
    shipped = ", ".join(f.stem for f in shipped_files()) or "none on this machine"
    if key.lower() == SHIPPED:
        name = model or DEFAULT_MODEL
        found = shipped_weights(name)
        if found is None:
            raise WeightsError(f"model {name!r} has no shipped weights (shipped: {shipped}); give a file or a "
                               f"shipped file's name")
        return found
    if "/" not in key and os.sep not in key:
        lower = key.lower()
        for f in shipped_files():
            if lower in (f.name.lower(), f.stem.lower()):
                return f
        try:
            found = shipped_weights(key)
        except UsageError:  # not a model name either
            found = None
        if found is not None:
            return found
    raise WeightsError(f"{what} not found: {path} (shipped weights, by name or 'shipped': {shipped})")


def resolve_init(init: str, model: str | None = None) -> str:
    """``kanpose train --init`` as saved in the config: hub values unchanged, anything else the absolute path of
    the file :func:`resolve_weights_path` finds (``shipped``, a shipped file's or a model's name, a path).

    Raises:
        WeightsError: no such file and no shipped weights of that name.
    """
    if is_hub_weights(init):
        return init
    return str(resolve_weights_path(init, model, "init weights").resolve())


def load_pose_model(model: str | None, weights: str | None, device: torch.device | str = "cpu") -> PoseModel:
    """Resolve the pose model: the one entry point from ``--model``/``--weights`` to a model on ``device``.

    Args:
        model: registry name, or None (the checkpoint's model if ``weights`` is a kanpose checkpoint or ONNX file;
            for ``hf://`` the model that lists the repository; else :data:`DEFAULT_MODEL`).
        weights: None or ``"shipped"`` (the model's shipped weights; also a shipped file's name, see
            :func:`resolve_weights_path`); ``"random"`` (random initialisation, labelled as such);
            ``"hub"`` / ``"hub:TAG"`` (the model's published weights, downloaded once into the kanpose cache and
            converted, see :mod:`kanpose_cli.core.weights.hub`); ``"hf://OWNER/REPO[@REV][/FILE]"``; a kanpose
            ``.safetensors`` checkpoint; an exported ``.onnx`` file (run by onnxruntime) or TorchScript file
            (``kanpose export --format torchscript``, run as traced); or an official/foreign
            checkpoint the model's converter understands (``.pth``, ``.bin``, ``.safetensors``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        :class:`PoseModel` in eval mode with ``weights_label`` set (file name, ``hf://`` URI or the random label).

    Raises:
        WeightsError: no trained weights for the model and none given; unreadable, missing or mismatched file;
            offline with hub weights missing from the cache; a failed download.
        UsageError: unknown model name, ``hub`` without ``--model``, a model without published weights, a
            ViTPose+ dataset other than COCO.
        DeviceError: ONNX on CUDA without a CUDA execution provider.
    """
    if model is not None:
        model = canonical_model_name(model)  # case-insensitive: VitPose-B -> vitpose-b
    if weights is None or (weights.strip().lower() == SHIPPED and not Path(weights).is_file()):
        name = model or DEFAULT_MODEL
        path = shipped_weights(name)
        if path is None:
            if get_spec(name).published:
                raise WeightsError(
                    f"model {name!r} has no trained weights yet on this machine; pass --weights hub (its published "
                    f"weights, downloaded once; see `kanpose models {name}`), --weights FILE or --weights random")
            raise WeightsError(
                f"model {name!r} has no trained weights yet; pass --weights FILE (a kanpose .safetensors "
                f"checkpoint or an official checkpoint) or --weights random (untrained, for tests and benchmarks)")
        return load_checkpoint(path, expected_model=name, device=device)
    if weights == RANDOM:
        m = create_model(model or DEFAULT_MODEL)
        m.weights_label = RANDOM_LABEL
        return m.to(device)
    if is_hub_weights(weights):
        name, ref = resolve_hub_weights(model, weights)
        m = load_checkpoint(fetch_converted(name, ref), expected_model=name, device=device)
        m.weights_label = ref.uri
        return m
    path = resolve_weights_path(weights, model)
    if path.suffix.lower() == ".onnx":  # exported model run by onnxruntime (kanpose export)
        from kanpose_cli.core.weights.onnx import load_onnx_model

        return load_onnx_model(path, expected_model=model, device=device)
    from kanpose_cli.core.weights.torchscript import is_kanpose_torchscript, load_torchscript_model

    if is_kanpose_torchscript(path):  # kanpose export --format torchscript: card inside, no --model needed
        return load_torchscript_model(path, expected_model=model, device=device)
    if path.suffix.lower() == ".safetensors" and has_model_card(path):
        return load_checkpoint(path, expected_model=model, device=device)
    return _load_foreign(model, path, device)


def _load_foreign(model: str | None, path: Path, device) -> PoseModel:
    """Official checkpoints (ViTPose repo, Hugging Face) through the family's converter."""
    if model is None:
        raise WeightsError(f"{path.name} is not a kanpose checkpoint; say which model it is with --model")
    if get_spec(model).converter is None:
        raise WeightsError(f"{path.name} is not a kanpose checkpoint and {model} has no converter for foreign weights")
    m = create_model(model)
    load_foreign_weights(m, path)
    m.weights_label = path.name
    return m.to(device)


# ------------------------------------------------------------------------------------------------ --init
@dataclass(frozen=True)
class InitRow:
    """One line of an :class:`InitReport`: a part of the network (a module two levels down, ``stem.fpn``,
    ``backbone.blocks``) and what happened to its tensors (parameters and buffers).

    Attributes:
        part: module path. kind: its class (``FPNP2``; a ModuleList counted per class, ``3 × Identity + 1 ×
            SCRM``; ``parameter``; ``-`` if the target has no such part). status: ``loaded``, ``skipped`` (in the
            checkpoint, not used) or ``new`` (left at its initial values). tensors: number of tensors
            (``num_batches_tracked`` excluded); params: number of parameter values (buffers such as BN statistics
            not counted). reason: why skipped / new.
    """

    part: str
    kind: str
    status: str
    tensors: int
    params: int
    reason: str = ""


@dataclass
class InitReport:
    """What :func:`init_weights` did. ``source``: the weights' label; ``format``: detected source format; ``rows``:
    :class:`InitRow` per part and status; ``merged``: the ViTPose+ merge line (or empty); ``loaded``, ``skipped``,
    ``new``: tensor counts."""

    source: str
    format: str
    rows: list[InitRow] = field(default_factory=list)
    merged: str = ""

    def count(self, status: str) -> int:
        """Number of tensors with ``status``."""
        return sum(r.tensors for r in self.rows if r.status == status)

    @property
    def loaded(self) -> int:
        """Number of tensors taken from the checkpoint."""
        return self.count("loaded")

    @property
    def skipped(self) -> int:
        """Number of checkpoint tensors not used (with a reason in the report rows)."""
        return self.count("skipped")

    @property
    def new(self) -> int:
        """Number of model tensors the checkpoint did not provide (left at their fresh initialisation)."""
        return self.count("new")

    def summary(self) -> str:
        """One line: ``init from X: 152 tensors loaded (21.9 M params), 2 skipped, 412 new``."""
        params = sum(r.params for r in self.rows if r.status == "loaded")
        return (f"init from {self.source} ({self.format}): {self.loaded} tensors loaded ({params / 1e6:.2f} M "
                f"params), {self.skipped} skipped, {self.new} new")

    def to_dict(self) -> dict:
        """JSON-able form (saved in the run's provenance)."""
        return {"source": self.source, "format": self.format, "merged": self.merged, "loaded": self.loaded,
                "skipped": self.skipped, "new": self.new,
                "rows": [r.__dict__ for r in self.rows]}


def _part(key: str) -> str:
    """``stem.fpn.laterals.0.conv.weight`` -> ``stem.fpn``: the module two levels down (or the parameter)."""
    return ".".join(key.split(".")[:2])


def _kind(net: torch.nn.Module, part: str) -> str:
    try:
        mod = net.get_submodule(part)
    except AttributeError:
        return "parameter" if part in dict(net.named_parameters()) or part in dict(net.named_buffers()) else "-"
    if isinstance(mod, torch.nn.ModuleList) and len(mod):
        counts = Counter(type(m).__name__ for m in mod)  # first-seen order; a mixed list names every class
        return " + ".join(f"{n} × {name}" for name, n in counts.items())
    return type(mod).__name__


def _resized_tensors(net: torch.nn.Module, new: dict, target: dict, loaded: dict) -> dict[str, tuple]:
    """Checkpoint tensors whose shapes differ from the model's, resized by the module that owns them when it knows
    how (a ``resize_state`` method, e.g. :meth:`~kanpose_cli.core.models.heads.simcc.SimCCMLPHead.resize_state`
    for weights trained at another input size): ``{full name: (tensor, reason)}``, only tensors that then fit."""
    differ = {k for k in new if k in target and k not in loaded}
    out: dict[str, tuple] = {}
    if not differ:
        return out
    for prefix, module in net.named_modules():
        if not hasattr(module, "resize_state") or not prefix:
            continue
        head = prefix + "."
        if not any(k.startswith(head) for k in differ):
            continue
        sub = {k[len(head):]: v for k, v in new.items() if k.startswith(head)}
        for name, (tensor, reason) in module.resize_state(sub).items():
            full = head + name
            if full in target and tuple(tensor.shape) == tuple(target[full].shape) and full not in loaded:
                out[full] = (tensor, reason)
    return out


def init_weights(model: PoseModel, weights: str, dataset: int | str = 0) -> InitReport:
    """Initialise the parts of ``model.net`` that a checkpoint has; everything else keeps its initial values.

    Each tensor of the (converted) checkpoint is loaded when ``model.net`` has a tensor of that name and shape;
    otherwise it is skipped with a reason, unless the module that owns it can resize it (a SimCC head's MLP trained
    at another input size: its rows say ``resized``, see :meth:`~kanpose_cli.core.models.heads.simcc.SimCCMLPHead.
    resize_state`). ViTPose weights into ``kanfpn-s1…s6`` load the ViT blocks and the head,
    skip the patch embedding (the stem replaces it), and leave the stem, CBAM and KAGN parts new.

    Args:
        model: the model to initialise (random weights).
        weights: a local checkpoint (kanpose ``.safetensors``, official/Hugging Face ``.pth``/``.bin``/
            ``.safetensors``), ``shipped`` or a shipped file's name (:func:`resolve_weights_path`),
            ``hub``/``hub:TAG`` (the model's published weights, or those of its ``init_from``
            model: ``vitpose-s`` for KAN-FPN) or ``hf://...``.
        dataset: ViTPose+ dataset whose expert is merged (0 = COCO, the only one accepted).

    Returns:
        :class:`InitReport`.

    Raises:
        WeightsError: missing/unreadable file, a failed download, or no tensor that fits.
        UsageError: an ONNX file; ``hub`` for a model with neither published weights nor ``init_from``.
    """
    spec = model.spec
    if is_hub_weights(weights):
        if weights.startswith(HF_SCHEME):
            try:
                source_model, ref = resolve_hub_weights(None, weights)
            except UsageError:  # a repository no model lists: convert straight into this model
                source_model, ref = resolve_hub_weights(spec.name, weights)
        else:
            source_model = spec.name if spec.published or not spec.init_from else spec.init_from
            source_model, ref = resolve_hub_weights(source_model, weights)
        path, label = fetch_converted(source_model, ref), ref.uri
    else:
        path = resolve_weights_path(weights, spec.name, "init weights")
        label = path.name
    if path.suffix.lower() == ".onnx":
        raise UsageError(f"--init needs a checkpoint (.safetensors, .pth, .bin), not an ONNX file: {path.name}")
    state = read_state_dict(path)
    card = None
    if path.suffix.lower() == ".safetensors":
        try:
            card = read_model_card(path)
        except WeightsError:
            card = None
    if card is not None:  # a kanpose checkpoint: PoseModel keys ``net.*``
        state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    new, rep = convert_state_dict(model, unwrap_checkpoint(state), dataset)
    fmt = f"kanpose {card.model}" if card is not None else rep.get("format", "?")
    target = model.net.state_dict()
    loaded = {k: v for k, v in new.items() if k in target and tuple(v.shape) == tuple(target[k].shape)}
    resized = _resized_tensors(model.net, new, target, loaded)
    loaded.update({k: v for k, (v, _) in resized.items()})
    if not loaded:
        raise WeightsError(f"none of the {len(new)} tensors of {label} fit {model.name} "
                           f"(e.g. {', '.join(list(new)[:3]) or 'none'})")
    model.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in loaded.items()},
                              strict=False)
    groups: dict[tuple[str, str, str], list[int]] = {}
    buffers = {k for k, _ in model.net.named_buffers()}

    def add(key: str, status: str, numel: int, reason: str = "") -> None:
        if key.endswith("num_batches_tracked"):
            return
        entry = groups.setdefault((_part(key), status, reason), [0, 0])
        entry[0] += 1
        entry[1] += 0 if key in buffers else numel  # parameters only (BN statistics are tensors, not parameters)

    allow = tuple(rep.get("allow_missing", ()))
    for k, v in target.items():
        if k in loaded:
            add(k, "loaded", v.numel(), resized[k][1] if k in resized else "")
        else:
            why = "not in the checkpoint" if k not in new else \
                f"checkpoint shape {tuple(new[k].shape)} differs"
            add(k, "new", v.numel(), f"new in {model.name}" if k.startswith(allow) and k not in new else why)
    for k, v in new.items():
        if k not in target:
            add(k, "skipped", v.numel(), rep.get("reasons", {}).get(k) or f"{model.name} has no such tensor")
        elif k not in loaded:  # same name, another shape (e.g. a COCO-17 head into a model with another K)
            add(k, "skipped", v.numel(), f"shape {tuple(v.shape)} differs from the model's {tuple(target[k].shape)}")
    for k in rep.get("skipped", []):
        if k not in new:
            add(k, "skipped", rep.get("numel", {}).get(k, 0), rep["reasons"].get(k, "dropped by the converter"))
    for k in rep.get("unused", []):
        v = state.get(k)
        add(k, "skipped", v.numel() if isinstance(v, torch.Tensor) else 0, "not understood by the converter")
    order = {p: i for i, p in enumerate(dict.fromkeys(_part(k) for k in target))}
    status_order = {"loaded": 0, "new": 1, "skipped": 2}
    rows = [InitRow(part, _kind(model.net, part), status, n, p, reason)
            for (part, status, reason), (n, p) in groups.items()]
    rows.sort(key=lambda r: (order.get(r.part, len(order)), status_order[r.status], r.reason))
    model.weights_label = f"init {label}"
    return InitReport(label, fmt, rows, rep.get("merged", ""))

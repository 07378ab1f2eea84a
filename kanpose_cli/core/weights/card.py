"""The model card: the one record that says what a kanpose weights file holds, read the same way from a
``.safetensors`` checkpoint and an exported ``.onnx`` file.

Both formats carry the same JSON under the metadata key ``"kanpose"`` (safetensors header metadata; ONNX
``metadata_props``): :meth:`PoseModel.meta` (model name, family, full config, input size, keypoint set and names,
codec and loss settings, mean/std, UDP flag) plus ``kanpose_version``, ``provenance`` (checkpoints: where the weights
come from) or the I/O contract of an export (``decode``, ``output_names``, ``weights`` ...; see
:mod:`kanpose_cli.core.export.exporter`). Reading never unpickles anything.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kanpose_cli import __version__
from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.keypoints import KeypointSet, get_keypoint_set

META_KEY = "kanpose"


@dataclass(frozen=True)
class ModelCard:
    """What a kanpose weights file holds (module docstring).

    Attributes:
        model: registered model name. family: its family.
        config: the family config as a dict (the fields of the model's config dataclass).
        input_size: ``(H, W)`` pixels. keypoint_set, keypoint_names: the keypoints, in output order.
        codec, loss: codec and loss settings (``{"type": ..., ...}``). mean, std: RGB normalisation in [0, 1] units.
        udp: crops use the UDP affine.
        kanpose_version: version that wrote the file. provenance: free-form facts about the weights (checkpoints).
        decode: ONNX files only: the graph outputs decoded ``(keypoints, scores)`` instead of raw outputs.
        output_names: ONNX files only: the graph's output names.
        format: ``safetensors``, ``onnx`` or ``torchscript``. path: the file it was read from.
        meta: the full JSON dict, for fields this record does not name.
    """

    model: str
    family: str = ""
    config: dict = field(default_factory=dict)
    input_size: tuple[int, int] = (0, 0)
    keypoint_set: str = "coco17"
    keypoint_names: tuple[str, ...] = ()
    codec: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    udp: bool = True
    kanpose_version: str = ""
    provenance: dict = field(default_factory=dict)
    decode: bool = False
    output_names: tuple[str, ...] = ()
    format: str = "safetensors"
    path: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_meta(cls, meta: dict, fmt: str, path: str | Path = "") -> "ModelCard":
        """Build a card from the stored JSON dict.

        Raises:
            WeightsError: the dict names no model.
        """
        if not isinstance(meta, dict) or not meta.get("model"):
            raise WeightsError(f"{path}: kanpose metadata without a model name")
        return cls(
            model=str(meta["model"]), family=str(meta.get("family", "")), config=dict(meta.get("config") or {}),
            input_size=tuple(int(v) for v in meta.get("input_size", (0, 0))),
            keypoint_set=str(meta.get("keypoint_set", "coco17")),
            keypoint_names=tuple(meta.get("keypoint_names") or ()), codec=dict(meta.get("codec") or {}),
            loss=dict(meta.get("loss") or {}), mean=tuple(meta.get("mean") or ()), std=tuple(meta.get("std") or ()),
            udp=bool(meta.get("udp", True)), kanpose_version=str(meta.get("kanpose_version", "")),
            provenance=dict(meta.get("provenance") or {}), decode=bool(meta.get("decode", False)),
            output_names=tuple(meta.get("output_names") or ()), format=fmt, path=str(path), meta=dict(meta))


    def keypoints(self) -> KeypointSet:
        """The keypoint set of the file: the full definition stored under ``"keypoints"`` (files written
        since keypoint sets became data, any skeleton), else the built-in set named by ``keypoint_set`` (older
        COCO-17 files).

        Raises:
            WeightsError: a malformed stored definition, or an unknown set name without a definition.
        """
        stored = self.meta.get("keypoints")
        if stored is not None:
            try:
                return KeypointSet.from_dict(stored, where=f"{Path(self.path).name or 'weights'}: keypoints")
            except ValueError as exc:
                raise WeightsError(str(exc)) from None
        try:
            return get_keypoint_set(self.keypoint_set)
        except KeyError as exc:
            raise WeightsError(f"{Path(self.path).name}: {exc.args[0]}") from None


def checkpoint_meta(model, provenance: dict | None = None) -> dict:
    """The card JSON of a checkpoint of ``model`` (a :class:`PoseModel`): its ``meta()`` plus the kanpose version
    and ``provenance``."""
    meta = model.meta()
    meta["kanpose_version"] = __version__
    meta["provenance"] = dict(provenance or {})
    return meta


def _raw_safetensors(path: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from None


def _raw_onnx(path: Path) -> str | None:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, OSError ...
        raise WeightsError(f"{path} is not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    return {p.key: p.value for p in proto.metadata_props}.get(META_KEY)


def read_model_card(path: str | Path) -> ModelCard:
    """The :class:`ModelCard` of a kanpose ``.safetensors`` checkpoint, exported ``.onnx`` file or exported
    TorchScript file (``.pt``/``.ts``: the archive's ``extra/kanpose.json``, read from the zip without loading it).

    Args:
        path: the file; its suffix picks the format (``.onnx``; ``.pt``/``.ts`` TorchScript; else safetensors).

    Raises:
        WeightsError: missing file, unreadable file, a file without kanpose metadata (a plain safetensors file, an
            ONNX graph not written by ``kanpose export``), or corrupt metadata. One line each.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    fmt = "onnx" if suffix == ".onnx" else "torchscript" if suffix in (".pt", ".ts") else "safetensors"
    if fmt == "torchscript":
        raw = torchscript_card_json(path)
    else:
        raw = _raw_onnx(path) if fmt == "onnx" else _raw_safetensors(path)
    if raw is None:
        if fmt == "torchscript":
            raise WeightsError(f"{path} has no kanpose metadata (not a TorchScript file written by `kanpose export`)")
        if fmt == "onnx":
            raise WeightsError(f"{path} has no kanpose metadata (export it with `kanpose export`)")
        raise WeightsError(f"{path} is a safetensors file without kanpose metadata (not a kanpose checkpoint)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: corrupt kanpose metadata") from None
    return ModelCard.from_meta(meta, fmt, path)


def read_checkpoint_meta(path: str | Path) -> dict:
    """The metadata dict of a kanpose checkpoint (:func:`read_model_card` ``.meta``); same errors."""
    return read_model_card(path).meta


def read_onnx_meta(path: str | Path) -> dict:
    """The ``kanpose`` metadata dict of an exported ONNX file (:func:`read_model_card` ``.meta``); same errors."""
    return read_model_card(path).meta


def has_model_card(path: str | Path) -> bool:
    """True if ``path`` is a readable kanpose checkpoint/ONNX file with a model card (never raises)."""
    try:
        read_model_card(path)
    except WeightsError:
        return False
    return True


TORCHSCRIPT_EXTRA_FILE = f"{META_KEY}.json"  # the extra file name kanpose export passes to torch.jit.save


def torchscript_card_json(path: str | Path) -> str | None:
    """The ``kanpose.json`` extra file of a TorchScript archive as text, or None when ``path`` is not a zip archive
    or has no such file (a plain ``torch.save`` checkpoint, another program's TorchScript). Never raises for a
    readable file; nothing in the archive is deserialised."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                parts = name.split("/")
                if len(parts) >= 3 and parts[-2] == "extra" and parts[-1] == TORCHSCRIPT_EXTRA_FILE:
                    return z.read(name).decode("utf-8")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return None
    return None

"""Published weights by name: ``--weights hub[:TAG]`` and ``--weights hf://OWNER/REPO[@REV][/FILE][?dataset=D]``.

What happens, once per (model, repository, revision, file, dataset):

1. **Reuse**: the converted kanpose checkpoint ``<cache>/weights/hub/<model>/<OWNER>--<REPO>@<REV>[...].safetensors``
   exists -> it is loaded; nothing touches the network (also offline).
2. **Source file**: a copy the user placed at ``<cache>/hub/<OWNER>/<REPO>/<REV>/<FILE>`` is used as it is (offline
   installs; checked against the registry's SHA-256 when one is known). Otherwise the file is downloaded with
   ``huggingface_hub`` into a temporary folder inside the cache, its size and SHA-256 are checked (the registry's
   value, else the hub's LFS SHA-256), it is converted, and the temporary folder is removed whatever happens
   (an error or Ctrl-C in the middle of a download leaves no file behind; a folder left by a killed process is
   named ``.tmp-*`` and swept after a day).
3. **Convert once**: the source goes through the model's converter (ViTPose+ experts merged for the chosen dataset,
   Hugging Face keys renamed), must fit the model exactly (:func:`load_foreign_weights`), and is saved atomically as
   a kanpose checkpoint whose card records the source (URI, resolved commit, file, SHA-256, licence, reported AP).

``KANPOSE_OFFLINE=1`` or the hub's own ``HF_HUB_OFFLINE=1`` forbid step 2's download: a missing file is then a
one-line :class:`WeightsError` naming the URL to fetch and the path to put it at.

The network is reached only through :func:`_hub_file_info` and :func:`_hub_download` (tests replace these two).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.models.registry import PublishedWeights, find_published, get_published, get_spec
from kanpose_cli.core.paths import cache_dir
from kanpose_cli.core.weights.convert import require_coco

HF_SCHEME = "hf://"
HUB = "hub"
DEFAULT_FILE = "model.safetensors"
DEFAULT_REVISION = "main"
OFFLINE_VARIABLES = ("KANPOSE_OFFLINE", "HF_HUB_OFFLINE")
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 24 * 3600
_TRUE = ("1", "true", "yes", "on")
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class HubRef:
    """One file of a Hugging Face Hub repository, and the ViTPose+ dataset whose expert is merged.

    Attributes:
        repo: ``OWNER/NAME``. revision: branch, tag or commit. file: path inside the repository.
        dataset: ViTPose+ dataset (index or name; 0 = COCO). sha256: expected SHA-256 when known.
        published: the registry entry this file comes from, if any.
    """

    repo: str
    revision: str = DEFAULT_REVISION
    file: str = DEFAULT_FILE
    dataset: int | str = 0
    sha256: str | None = None
    published: PublishedWeights | None = None

    @property
    def uri(self) -> str:
        """``hf://OWNER/NAME@REV`` (plus ``/FILE`` and ``?dataset=`` when not the defaults)."""
        tail = "" if self.file == DEFAULT_FILE else f"/{self.file}"
        ds = "" if str(self.dataset) in ("0", "coco") else f"?dataset={self.dataset}"
        return f"{HF_SCHEME}{self.repo}@{self.revision}{tail}{ds}"

    @property
    def url(self) -> str:
        """Where a browser or ``curl -L`` fetches the file."""
        return f"https://huggingface.co/{self.repo}/resolve/{self.revision}/{self.file}"

    def source_path(self) -> Path:
        """``<cache>/hub/OWNER/NAME/REV/FILE``: where a manually fetched copy is looked for."""
        return cache_dir() / "hub" / Path(*self.repo.split("/")) / _safe(self.revision) / Path(*self.file.split("/"))

    def converted_path(self, model: str) -> Path:
        """``<cache>/weights/hub/<model>/OWNER--NAME@REV[--FILE][--dsN].safetensors``: the converted checkpoint."""
        name = f"{self.repo.replace('/', '--')}@{_safe(self.revision)}"
        if self.file != DEFAULT_FILE:
            name += "--" + _safe(self.file.rsplit(".", 1)[0])
        if str(self.dataset) not in ("0", "coco"):
            name += f"--ds{_safe(str(self.dataset))}"
        return cache_dir() / "weights" / "hub" / model / f"{name}.safetensors"


@dataclass(frozen=True)
class HubFileInfo:
    """What the hub says about a file: the commit the revision resolves to, the file's SHA-256 (LFS files; None
    otherwise) and its size in bytes (None if unknown)."""

    commit: str
    sha256: str | None
    size: int | None


def _safe(text: str) -> str:
    return re.sub(r"[^\w.@+-]", "_", text)


def offline_variable() -> str | None:
    """The environment variable that forbids downloads (``KANPOSE_OFFLINE``, ``HF_HUB_OFFLINE``), or None."""
    for var in OFFLINE_VARIABLES:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return var
    return None


def is_hub_weights(weights: str | None) -> bool:
    """True for ``hub``, ``hub:TAG`` and ``hf://...`` (the names :func:`resolve_hub_weights` takes)."""
    return isinstance(weights, str) and (weights == HUB or weights.startswith(HUB + ":")
                                         or weights.startswith(HF_SCHEME))


def parse_hf_uri(text: str) -> HubRef:
    """``hf://OWNER/NAME[@REV][/FILE][?dataset=D]`` -> :class:`HubRef` (REV without ``/``; FILE defaults to
    ``model.safetensors``; D an index or name of :data:`~kanpose_cli.core.weights.convert.VITPOSE_PLUS_DATASETS`).

    Raises:
        UsageError: not of that form.
    """
    if not text.startswith(HF_SCHEME):
        raise UsageError(f"not a hub URI: {text!r} (expected hf://OWNER/NAME[@REV][/FILE])")
    body, _, query = text[len(HF_SCHEME):].partition("?")
    dataset: int | str = 0
    if query:
        key, _, value = query.partition("=")
        if key != "dataset" or not value:
            raise UsageError(f"{text!r}: the only query is ?dataset=NAME_OR_INDEX")
        dataset = int(value) if value.isdigit() else value
    parts = body.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError(f"{text!r} is not hf://OWNER/NAME[@REV][/FILE]")
    name, at, revision = parts[1].partition("@")
    repo = f"{parts[0]}/{name}"
    if not _REPO.match(repo) or (at and not revision):
        raise UsageError(f"{text!r}: bad repository or revision (expected hf://OWNER/NAME[@REV][/FILE])")
    file = "/".join(parts[2:]) or DEFAULT_FILE
    return HubRef(repo, revision or DEFAULT_REVISION, file, dataset)


def resolve_hub_weights(model: str | None, weights: str) -> tuple[str, HubRef]:
    """Which model and which hub file ``--model``/``--weights`` name.

    Args:
        model: ``--model`` (None: for ``hf://``, the registered model that lists the repository).
        weights: ``hub`` (the model's default published weights), ``hub:TAG`` or ``hf://...``.

    Returns:
        ``(model name, HubRef)``.

    Raises:
        UsageError: ``hub`` without ``--model``, a model without published weights, an unknown tag, a malformed
            URI, or an ``hf://`` repository that no model lists while ``--model`` is missing.
    """
    if weights.startswith(HF_SCHEME):
        ref = parse_hf_uri(weights)
        require_coco(ref.dataset)  # before any download
        listed = find_published(ref.repo)
        if model is None:
            if not listed:
                raise UsageError(f"no registered model lists {ref.repo}; say which model it is with --model")
            model = listed[0][0]
        get_spec(model)
        entry = next((w for n, w in listed if n == model and w.revision == ref.revision and w.file == ref.file), None)
        if entry is not None:
            ref = HubRef(ref.repo, ref.revision, ref.file, ref.dataset, entry.sha256, entry)
        return model, ref
    if model is None:
        raise UsageError(f"--weights {weights} needs --model (models with published weights: "
                         f"{', '.join(_models_with_published())})")
    tag = weights.partition(":")[2] or None
    entry = get_published(model, tag)
    return model, HubRef(entry.repo, entry.revision, entry.file, 0, entry.sha256, entry)


def _models_with_published() -> list[str]:
    from kanpose_cli.core.models.registry import MODELS

    return MODELS.names(where=lambda s: bool(s.published))


def fetch_converted(model: str, ref: HubRef) -> Path:
    """The converted kanpose checkpoint of ``ref`` for ``model``: reused if present, else made from a local or
    downloaded source file (module docstring).

    Returns:
        Path of the ``.safetensors`` checkpoint in the kanpose cache.

    Raises:
        WeightsError: offline and no source file (the message names the URL and the path to put it at); the hub
            does not have the repository/revision/file; a network error; size or SHA-256 mismatch; a source that
            does not fit ``model``.
        UsageError: a ViTPose+ dataset other than COCO.
    """
    converted = ref.converted_path(model)
    if converted.is_file():
        return converted
    local = ref.source_path()
    if local.is_file():
        digest = sha256_file(local)
        if ref.sha256 and digest != ref.sha256:
            raise WeightsError(f"{local} does not match the published SHA-256 of {ref.uri} ({digest[:12]}… vs "
                               f"{ref.sha256[:12]}…); delete it and fetch {ref.url} again")
        return _convert(model, ref, local, {"commit": None, "sha256": digest,
                                            "verified": "registry sha256" if ref.sha256 else "not verified"})
    var = offline_variable()
    if var is not None:
        raise WeightsError(f"{var}={os.environ[var]} forbids downloads and {ref.uri} is not in the kanpose cache: "
                           f"fetch {ref.url} and put it at {local}")
    root = cache_dir() / "hub"
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stale(root)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    try:
        info = _call_hub(ref, local, _hub_file_info, ref)
        path = Path(_call_hub(ref, local, _hub_download, ref, info.commit, tmp))
        digest = sha256_file(path)
        size = path.stat().st_size
        if info.size is not None and size != info.size:
            raise WeightsError(f"download of {ref.uri} is incomplete ({size} of {info.size} bytes); try again")
        expected = ref.sha256 or info.sha256
        if expected and digest != expected:
            raise WeightsError(f"download of {ref.uri} failed the SHA-256 check ({digest[:12]}… vs {expected[:12]}…)")
        verified = "registry sha256" if ref.sha256 else ("hub sha256" if info.sha256 else "not verified")
        return _convert(model, ref, path, {"commit": info.commit, "sha256": digest, "verified": verified})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(model: str, ref: HubRef, source: Path, facts: dict) -> Path:
    from kanpose_cli.core.models.registry import create_model
    from kanpose_cli.core.weights.checkpoint import save_checkpoint
    from kanpose_cli.core.weights.convert import load_foreign_weights

    net = create_model(model)
    report = load_foreign_weights(net, source, dataset=ref.dataset)
    entry = ref.published
    provenance = {
        "source": ref.uri, "repo": ref.repo, "revision": ref.revision, "commit": facts.get("commit"),
        "file": ref.file, "sha256": facts.get("sha256"), "sha256_check": facts.get("verified"),
        "source_format": report.get("format"), "converted": report.get("merged") or "keys renamed",
        "dataset": str(ref.dataset),
        "license": entry.license if entry else None, "reported_coco_ap": entry.ap if entry else None,
        "trained_on": entry.trained_on if entry else None,
    }
    return save_checkpoint(net, ref.converted_path(model), provenance)


def _call_hub(ref: HubRef, local: Path, fn, *args):
    """Call a hub function, turning its errors into one-line WeightsErrors (KeyboardInterrupt passes through)."""
    try:
        return fn(*args)
    except ImportError:
        raise WeightsError(f"downloading {ref.uri} needs huggingface_hub (pip install huggingface_hub), or fetch "
                           f"{ref.url} and put it at {local}") from None
    except (WeightsError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub, httpx and OS errors all become one line
        kind = type(exc).__name__
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        if "RepositoryNotFound" in kind or "GatedRepo" in kind:
            raise WeightsError(f"{ref.repo} is not on the Hugging Face Hub (or needs a login): {first}") from None
        if "RevisionNotFound" in kind:
            raise WeightsError(f"{ref.repo} has no revision {ref.revision!r}") from None
        if "EntryNotFound" in kind and "Local" not in kind:
            raise WeightsError(f"{ref.repo}@{ref.revision} has no file {ref.file!r}") from None
        raise WeightsError(f"cannot download {ref.url} ({kind}: {first}); check the network, or fetch it and put it "
                           f"at {local}") from None


def _hub_file_info(ref: HubRef) -> HubFileInfo:
    """Ask the hub which commit ``ref.revision`` is and the file's SHA-256 and size (one HEAD request)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(ref.repo, ref.file, revision=ref.revision))
    etag = (meta.etag or "").strip('"').lower()
    sha = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    return HubFileInfo(commit=meta.commit_hash or ref.revision, sha256=sha, size=meta.size)


def _hub_download(ref: HubRef, commit: str, folder: Path) -> Path:
    """Download the file at ``commit`` into ``folder`` (huggingface_hub keeps its own partial files there too)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(ref.repo, ref.file, revision=commit, local_dir=str(folder)))


def _sweep_stale(root: Path) -> None:
    """Remove ``.tmp-*`` folders older than a day (left by a killed download)."""
    now = time.time()
    for p in root.glob(TMP_PREFIX + "*"):
        try:
            if now - p.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()

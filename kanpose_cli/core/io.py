"""File output primitives shared by every command: atomic writes and numbered run folders.

- :func:`atomic_path` / :func:`atomic_write`: write to a temp file in the target's folder, then ``os.replace`` it
  onto the target, so a kill or an error never leaves half a file (the temp file is removed on failure).
- :func:`write_json_atomic`, :func:`write_text_atomic`: the two formats most callers need.
- :func:`next_run_dir`: the run folder ``parent/<prefix>N`` (``runs/predict/exp3``), created **lazily**: nothing
  exists on disk until the first output is written into it, so a run that produces nothing leaves no folder.
- :func:`unique_stem`: output file stems made unique within one run.
- :func:`check_writable`: fail before any work when an output folder cannot be written.

This module is the bottom of ``kanpose_cli.core``: it imports no other kanpose module.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

TMP_PREFIX = ".tmp-"
_UMASK: list[int] = []


def _file_mode() -> int:
    """Mode of a new file under the process umask (``mkstemp`` makes 0600 files; outputs should not be)."""
    if not _UMASK:
        mask = os.umask(0)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, fsync: bool = False) -> Iterator[Path]:
    """Context manager yielding a temp path to write ``path`` through; on success it replaces ``path`` atomically.

    The temp file sits in the same folder as ``path`` (created if missing), so ``os.replace`` is a rename on one
    file system. If the block raises, the temp file is removed and ``path`` is left as it was.

    Args:
        path: the final file.
        suffix: the temp file's suffix; default ``path``'s own (writers such as ``cv2.imwrite`` pick the format
            from it).
        fsync: flush the written file to disk before the rename (for checkpoints that must survive a power cut).

    Yields:
        The temp path (an empty file already exists there; writers may overwrite it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix if suffix is None else suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: str | Path, write_fn: Callable[[Path], object], suffix: str | None = None,
                 fsync: bool = False) -> Path:
    """Call ``write_fn(tmp_path)`` and move the result onto ``path`` atomically (see :func:`atomic_path`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path, suffix=suffix, fsync=fsync) as tmp:
        write_fn(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=fsync)


def write_json_atomic(path: str | Path, data, indent: int | None = 1, **dumps_kwargs) -> Path:
    """Write ``data`` as JSON to ``path`` atomically; returns ``path``. Extra keywords go to :func:`json.dumps`."""
    return write_text_atomic(path, json.dumps(data, indent=indent, **dumps_kwargs))


def read_json_file(path: str | Path, kind: str):
    """Parse the JSON file ``path`` (user input: ``~`` expanded); ``kind`` names it in errors ("annotation file").

    Raises:
        InputError: the file is missing, unreadable or not JSON; the one-line message names the file.
    """
    from kanpose_cli.core.errors import InputError

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{kind} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {kind} {path}: {exc}") from None


class RunDir(os.PathLike):
    """The numbered folder of one run, ``parent/<prefix>N``, created only when something is written into it.

    Until then nothing exists on disk. The folder is created (and its number ``N`` claimed with an atomic
    ``mkdir``, so two runs started together never share one) the first time it is used as a path:
    ``os.fspath(run_dir)``, ``Path(run_dir)``, :meth:`create`, or turning a child ``run_dir / "a.json"`` into a
    path. ``str(run_dir)`` does *not* create it: before creation it shows the folder the run would get.

    Attributes:
        parent: the folder holding the numbered run folders. prefix: ``exp`` in ``exp1``.
    """

    def __init__(self, parent: str | Path, prefix: str = "exp"):
        self.parent, self.prefix = Path(parent), prefix
        self._path: Path | None = None

    @property
    def created(self) -> bool:
        """True once the folder exists (something was written, or :meth:`create` was called)."""
        return self._path is not None

    def _next_free(self) -> Path:
        n = 1
        while (self.parent / f"{self.prefix}{n}").exists():
            n += 1
        return self.parent / f"{self.prefix}{n}"

    def create(self) -> Path:
        """Create the folder (first call: the smallest free ``N ≥ 1``) and return its path; idempotent."""
        if self._path is None:
            self.parent.mkdir(parents=True, exist_ok=True)
            n = 1
            while True:
                candidate = self.parent / f"{self.prefix}{n}"
                try:
                    candidate.mkdir()
                    break
                except FileExistsError:
                    n += 1
            self._path = candidate
        return self._path

    def __fspath__(self) -> str:
        return str(self.create())

    def __truediv__(self, name: str | os.PathLike) -> "RunPath":
        return RunPath(self, (name,))

    def __str__(self) -> str:
        return str(self._path if self._path is not None else self._next_free())

    def __repr__(self) -> str:
        return f"RunDir({str(self)!r}, created={self.created})"


class RunPath(os.PathLike):
    """A path inside a :class:`RunDir` that creates the run folder only when it is used as a path
    (``os.fspath``, ``Path(...)``, ``open(...)``). ``str()`` shows it without creating anything."""

    def __init__(self, run_dir: RunDir, parts: tuple):
        self.run_dir, self.parts = run_dir, tuple(parts)

    @property
    def name(self) -> str:
        """The last component, like :attr:`pathlib.Path.name`."""
        return Path(*map(str, self.parts)).name

    def __fspath__(self) -> str:
        return str(self.run_dir.create().joinpath(*self.parts))

    def __truediv__(self, name: str | os.PathLike) -> "RunPath":
        return RunPath(self.run_dir, self.parts + (name,))

    def __str__(self) -> str:
        return str(Path(str(self.run_dir)).joinpath(*self.parts))

    def __repr__(self) -> str:
        return f"RunPath({str(self)!r})"


def next_run_dir(parent: str | Path, prefix: str = "exp") -> RunDir:
    """The next run folder ``parent/<prefix>N`` (smallest free ``N ≥ 1``, ultralytics-style), not yet created.

    The folder appears on disk with the first file written into it (see :class:`RunDir`); a run that writes
    nothing leaves nothing behind.
    """
    return RunDir(parent, prefix)


PROBE_PREFIX = ".kanpose-write-probe-"


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """Make sure files can be created in ``folder`` (or, where it does not exist yet, in the folders that would
    hold it), before a command does any work, without creating anything.

    The nearest existing folder on the way to ``folder`` gets a probe file (created with ``mkstemp``, removed at
    once): permissions, read-only file systems and root alike are covered, as the real write would see them.

    Args:
        folder: the folder outputs will go into (created later, lazily). what: how the message names it
            (``--save-dir``).

    Returns:
        ``folder`` as a :class:`~pathlib.Path` (``~`` expanded).

    Raises:
        OutputError: a file is in the way, or the nearest existing folder is not writable (one line, exit 3).
    """
    from kanpose_cli.core.errors import OutputError

    folder = Path(folder).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write to {what} {folder}: {existing} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"cannot write to {what} {folder}: {reason} ({existing}); choose another folder") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return folder


def unique_stem(path: str, used: set[str]) -> str:
    """File stem for outputs of ``path``, made unique within a run (``a.jpg`` and ``a.png`` -> ``a``, ``a_1``)."""
    stem = Path(path).stem or "frame"
    candidate, n = stem, 1
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return candidate

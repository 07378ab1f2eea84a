"""One generic name -> object registry, used for pose models, keypoint codecs, losses and weight converters.

timm-style: an explicit table filled by ``register`` calls when the defining modules are imported; nothing is
scanned or downloaded. Names are looked up ignoring case when that is unambiguous (``VitPose-B`` finds
``vitpose-b``). Looking up an unknown name is a :class:`~kanpose_cli.core.errors.UsageError` (exit code 2) that names
the closest registered names (:func:`close_matches`, case-insensitive), so a typo on the command line or in a config
file is one clear line.

Name filters (:meth:`Registry.names`): a pattern with a shell wildcard (``*``, ``?``, ``[``) is matched against the
whole name with :func:`fnmatch.fnmatchcase` (``vitpose-*``); a pattern without one matches every name that contains
it (``r18`` matches ``amfacpose-r18-256x192``); both ignore case.

This module sits at the bottom of ``kanpose_cli.core`` next to :mod:`~kanpose_cli.core.errors`, which is the only
kanpose module it imports.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from kanpose_cli.core.errors import UsageError

T = TypeVar("T")

WILDCARDS = "*?["


def close_matches(word: str, names, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``names`` closest to ``word``, ignoring case: names equal to it but for case first, then
    :func:`difflib.get_close_matches` on the lower-cased names (best first). Returns the names as spelt in
    ``names``; ``[]`` when none is close (ratio below ``cutoff``)."""
    by_lower: dict[str, list[str]] = {}
    for name in names:
        by_lower.setdefault(str(name).lower(), []).append(name)
    key = str(word).lower()
    out = list(by_lower.get(key, []))
    for match in difflib.get_close_matches(key, list(by_lower), n=n, cutoff=cutoff):
        out += [m for m in by_lower[match] if m not in out]
    return out[:n]


def name_matches(name: str, pattern: str | None) -> bool:
    """True if ``name`` passes the filter ``pattern`` (module docstring), ignoring case; None or ``""`` matches
    everything."""
    if not pattern:
        return True
    if any(c in pattern for c in WILDCARDS):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


class Registry(Generic[T]):
    """An ordered table ``name -> object`` of one kind (``"model"``, ``"codec"``, ``"loss"``, ...).

    Supports ``name in registry``, ``registry[name]`` (same as :meth:`get`), iteration over the names in
    registration order and ``len``.

    Args:
        kind: what the entries are, used in messages (``unknown codec 'heatmp'``).
        hint: appended to unknown-name errors when no close match exists (``Run `kanpose models` for the list.``);
            default: the list of registered names.
    """

    def __init__(self, kind: str, hint: str | None = None):
        self.kind, self.hint = kind, hint
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None):
        """Add ``obj`` under ``name`` and return it; without ``obj``, return a decorator that does so.

        Raises:
            ValueError: ``name`` is already taken (a programming error, not a user error).
        """
        def add(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = value
            return value

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (for tests and plug-ins that register temporary entries).

        Raises:
            UsageError: unknown name.
        """
        value = self.get(name)
        del self._entries[name]
        return value

    def resolve(self, name: str) -> str:
        """The registered spelling of ``name``: ``name`` itself if registered, else the one name that equals it
        ignoring case (``VitPose-B`` -> ``vitpose-b``).

        Raises:
            UsageError: unknown name (or several names differing only in case); the message lists up to 3 close
                matches (or :attr:`hint`).
        """
        if isinstance(name, str):
            if name in self._entries:
                return name
            same = [n for n in self._entries if n.lower() == name.lower()]
            if len(same) == 1:
                return same[0]
        raise UsageError(self.unknown_message(name))

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (case-insensitive when unambiguous, see :meth:`resolve`).

        Raises:
            UsageError: unknown name; the message lists up to 3 close matches (or :attr:`hint`).
        """
        return self._entries[self.resolve(name)]

    def unknown_message(self, name) -> str:
        """``unknown <kind> 'name'. Did you mean: a, b?`` (or the hint / the known names); close matches ignore
        case."""
        close = close_matches(str(name), list(self._entries), n=3)
        if close:
            hint = f" Did you mean: {', '.join(close)}?"
        elif self.hint:
            hint = f" {self.hint}"
        else:
            hint = f" Known: {', '.join(sorted(self._entries)) or '(none)'}."
        return f"unknown {self.kind} {name!r}.{hint}"

    def names(self, pattern: str | None = None, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names in registration order that match ``pattern`` (see the module docstring) and, if given,
        whose entry satisfies ``where``."""
        return [n for n, v in self._entries.items() if name_matches(n, pattern) and (where is None or where(v))]

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        return list(self._entries.items())

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

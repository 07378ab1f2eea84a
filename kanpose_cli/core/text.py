"""Small helpers for the words of printed messages."""

from __future__ import annotations

_IRREGULAR = {"person": "persons", "box": "boxes", "match": "matches", "process": "processes",
              "mismatch": "mismatches", "entry": "entries", "index": "indices"}


def plural(count: int | float, word: str, many: str | None = None) -> str:
    """``"1 image"``, ``"2 images"``, ``"0 images"``: ``count`` then ``word`` in the number it needs.

    Args:
        count: how many (an int; a float is printed as given: ``1.5 epochs``).
        word: the singular (``image``, ``person``, ``box``).
        many: the plural when it is not ``word + "s"`` nor in the small table of this module (``persons``, ``boxes``,
            ``processes``, ...).
    """
    return f"{count} {word if count == 1 else many or _IRREGULAR.get(word, word + 's')}"


def ap_text(value: float | None, signed: bool = False) -> str:
    """An AP/AR figure as kanpose prints it everywhere (train, eval, eval compare, models): a fraction in [0, 1] with
    3 decimals, as pycocotools' own summary prints it (``0.311``); ``signed`` for a difference (``+0.012``).
    ``–`` for None or a negative value (pycocotools' -1 for "no ground truth in this range") unless ``signed``."""
    if value is None or (value < 0 and not signed):
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"

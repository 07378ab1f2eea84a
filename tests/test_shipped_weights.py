"""The shipped default checkpoint keeps the accuracy its model card states (a later change cannot break the weights
silently): COCO keypoint AP on coco-mini val2017, ground-truth boxes, flip test."""

from __future__ import annotations

import pytest

from kanpose_cli.core.models.registry import get_spec
from kanpose_cli.core.paths import shipped_weights_dir
from kanpose_cli.core.weights import DEFAULT_MODEL, load_checkpoint, read_model_card

TOLERANCE = 0.02  # AP may drop at most this much below the card's figure


def _shipped():
    name = get_spec(DEFAULT_MODEL).weights
    assert name, f"the default model {DEFAULT_MODEL} ships no weights"
    path = shipped_weights_dir() / name
    assert path.is_file(), path
    return path


# the card's results table: the row of each box source, by the start of its first cell
CARD_ROWS = {"gt": "ground-truth person boxes", "detector": "YOLO11n-pose person boxes"}
CARD_COLUMNS = ("AP", "AP50", "AP75", "AR")


def card_results_table(card_text: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The caption and the table under '## Results' in a model card: ``{first cell: {column: cell}}``."""
    section = card_text.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln.strip() for ln in section.strip().splitlines()]
    rows = [ln for ln in lines if ln.startswith("|")]
    caption = " ".join(lines[:lines.index(rows[0])])
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    header, body = cells[0], cells[2:]  # cells[1] is the |---| rule
    return caption, {r[0]: dict(zip(header[1:], r[1:])) for r in body}


def test_card_results_table_states_the_stored_accuracy():
    path = _shipped()
    acc = read_model_card(path).provenance["accuracy"]
    text = (path.parent / "README.md").read_text()
    assert path.name in text.split("\n## ", 1)[0]  # the card's title names the file
    caption, table = card_results_table(text)
    assert acc["flip"] is True and "flip test on" in caption, caption
    assert acc["dataset"] in caption, (acc["dataset"], caption)
    for boxes, label in CARD_ROWS.items():
        row = next((cells for first, cells in table.items() if first.startswith(label)), None)
        assert row is not None, f"the card's results table has no row for {label!r}: {list(table)}"
        for metric in CARD_COLUMNS:
            assert row.get(metric) == f"{acc[boxes][metric]:.3f}", (boxes, metric, row.get(metric), acc[boxes][metric])


@pytest.mark.slow
def test_shipped_checkpoint_keeps_its_stated_ap(coco_mini):
    from kanpose_cli.core.evaluation.evaluator import evaluate_model

    path = _shipped()
    stated = read_model_card(path).provenance["accuracy"]["gt"]["AP"]
    model = load_checkpoint(path, expected_model=DEFAULT_MODEL)
    metrics = evaluate_model(model, coco_mini / "annotations" / "person_keypoints_val2017.json",
                             coco_mini / "val2017", boxes="gt", flip=True)
    assert metrics["AP"] >= stated - TOLERANCE, (metrics["AP"], stated)
    assert metrics["AP"] <= stated + TOLERANCE, "the card understates the AP: update it with the new figure"

"""The shipped default checkpoint keeps the accuracy its model card states (a later change cannot break the weights
silently): COCO keypoint AP on coco-mini val2017, ground-truth boxes, flip test."""

from __future__ import annotations

import re

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


def test_card_states_the_accuracy_and_the_readme_quotes_it():
    path = _shipped()
    card = read_model_card(path)
    acc = card.provenance["accuracy"]
    assert acc["flip"] is True and "coco-mini val2017" in acc["dataset"]
    assert 0.0 <= acc["detector"]["AP"] <= 1.0
    readme = (path.parent / "README.md").read_text()
    assert path.name in readme
    # the human-readable card quotes the machine-readable figures (3 decimals)
    for boxes in ("gt", "detector"):
        assert re.search(rf"\b{acc[boxes]['AP']:.3f}\b", readme), (boxes, acc[boxes]["AP"])


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

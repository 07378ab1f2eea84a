"""`kanpose models` facts: the shipped params/MACs table (core/models/complexity.json) is exact and current, and
listing the models builds none of them."""

from __future__ import annotations

import json

import pytest

from kanpose_cli.core.models import info, list_models
from kanpose_cli.core.models.info import compute_complexity, config_key, model_complexity, shipped_complexity

# Quick to build and count on 2 CPU cores (a few seconds together); one per family where that is cheap.
RECOUNTED = ("amfacpose-r18-128x96", "amfacpose-r18", "flatpose-b", "vitpose-s")


def test_every_registered_model_has_a_current_shipped_entry():
    """A model added, or a config changed, without running tools/model_complexity.py fails here."""
    table = shipped_complexity()
    assert list(table) == list_models()
    stale = [n for n in list_models() if table[n]["key"] != config_key(n)]
    assert not stale, f"stale entries (run tools/model_complexity.py {' '.join(stale)})"
    for name, entry in table.items():
        assert isinstance(entry["params"], int) and entry["params"] > 1_000_000, name
        assert isinstance(entry["macs"], int) and entry["macs"] > 100_000_000, name


@pytest.mark.parametrize("name", RECOUNTED)
def test_shipped_figures_equal_a_fresh_count(name):
    entry = shipped_complexity()[name]
    assert compute_complexity(name) == (entry["params"], entry["macs"])


@pytest.mark.slow
def test_every_shipped_figure_equals_a_fresh_count():
    """All 29 models, the big ViTs included (minutes on 2 CPU cores)."""
    table = shipped_complexity()
    wrong = {n: compute_complexity(n) for n in list_models() if n not in RECOUNTED}
    wrong = {n: c for n, c in wrong.items() if c != (table[n]["params"], table[n]["macs"])}
    assert not wrong


def test_known_figures_of_the_shipped_model():
    """The figures the README and the model card print for the shipped model (1.93 M params, 0.37 GMACs)."""
    params, macs = shipped_complexity()["amfacpose-r18-128x96"]["params"], \
        shipped_complexity()["amfacpose-r18-128x96"]["macs"]
    assert f"{params / 1e6:.2f}" == "1.93" and f"{macs / 1e9:.2f}" == "0.37"


def test_listing_builds_no_model(monkeypatch, tmp_path):
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path))

    def no_build(*a, **k):
        raise AssertionError("kanpose models built a model")

    monkeypatch.setattr(info, "create_model", no_build)
    rows = info.model_rows()
    assert [r["model"] for r in rows] == list_models()
    table = shipped_complexity()
    assert all((r["params"], r["macs"]) == (table[r["model"]]["params"], table[r["model"]]["macs"]) for r in rows)
    assert not (tmp_path / "model_complexity.json").exists()  # nothing counted, nothing cached


def test_a_model_missing_from_the_table_is_counted_once_then_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path))
    name = "amfacpose-r18-128x96"
    expected = (shipped_complexity()[name]["params"], shipped_complexity()[name]["macs"])
    monkeypatch.setattr(info, "shipped_complexity", lambda: {})
    assert info.pending_complexity([name, "amfacpose-r18"]) == [name, "amfacpose-r18"]
    assert model_complexity(name) == expected
    cached = json.loads((tmp_path / "model_complexity.json").read_text())
    assert list(cached.values()) == [list(expected)]
    assert info.pending_complexity([name, "amfacpose-r18"]) == ["amfacpose-r18"]
    monkeypatch.setattr(info, "create_model", lambda *a, **k: pytest.fail("counted again"))
    assert model_complexity(name) == expected


def test_a_stale_entry_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path))
    name = "amfacpose-r18-128x96"
    entry = dict(shipped_complexity()[name])
    monkeypatch.setattr(info, "shipped_complexity", lambda: {name: {**entry, "key": "0" * 16, "macs": 1}})
    assert info.known_complexity(name) is None
    assert model_complexity(name) == (entry["params"], entry["macs"])


def test_published_ap_is_printed_as_a_fraction():
    row = info.model_rows("vitpose-b")[0]
    assert row["paper"]["ap"] == pytest.approx(0.758) and row["hub"][0]["ap"] == pytest.approx(0.758)
    assert info.hub_summary("vitpose-b") == "coco 0.758 · plus 0.770 · coco-aic-mpii 0.771"

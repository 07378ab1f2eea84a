"""Checkpoint save/load: metadata, round trip, and clear failures."""

import json

import pytest
import torch
from safetensors.torch import save_file

from kanpose_cli.core.weights.card import read_checkpoint_meta
from kanpose_cli.core.weights.checkpoint import load_checkpoint, save_checkpoint
from kanpose_cli.core.errors import WeightsError
from kanpose_cli.core.models import create_model


def test_round_trip_keeps_weights_config_and_outputs(tmp_path):
    m = create_model("amfacpose-r18-256x192", overrides={"head_hidden": 32})
    path = save_checkpoint(m, tmp_path / "m.safetensors", provenance={"data": "none"})
    meta = read_checkpoint_meta(path)
    assert meta["model"] == "amfacpose-r18-256x192" and meta["config"]["head_hidden"] == 32
    assert meta["input_size"] == [256, 192] and meta["keypoint_names"][0] == "nose"
    assert meta["codec"]["type"] == "simcc" and meta["provenance"] == {"data": "none"}
    loaded = load_checkpoint(path)
    x = torch.randn(1, 3, 256, 192)
    for a, b in zip(m(x), loaded(x)):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write leaves no temp file


def test_half_checkpoint_is_smaller_and_close(tmp_path):
    m = create_model("amfacpose-r18-256x192")
    full = save_checkpoint(m, tmp_path / "f.safetensors")
    half = save_checkpoint(m, tmp_path / "h.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = torch.randn(1, 3, 256, 192)
    assert (m(x)[0] - load_checkpoint(half)(x)[0]).abs().max() < 0.05


def test_failures_are_clear(tmp_path):
    m = create_model("amfacpose-r18-256x192")
    path = save_checkpoint(m, tmp_path / "m.safetensors")
    with pytest.raises(WeightsError, match="holds weights of 'amfacpose-r18-256x192', not 'amfacpose-r34'"):
        load_checkpoint(path, expected_model="amfacpose-r34")
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(WeightsError, match="without kanpose metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")
    # Same model name but a tensor of the wrong shape: the message names the key.
    state = {k: v for k, v in m.state_dict().items()}
    key = "net.head.mlp_x.2.weight"
    state[key] = torch.zeros(5, 5)
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"kanpose": json.dumps(m.meta())})
    with pytest.raises(WeightsError, match="shape mismatch.*net.head.mlp_x.2.weight"):
        load_checkpoint(tmp_path / "bad.safetensors")

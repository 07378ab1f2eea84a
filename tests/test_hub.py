"""Published weights by name (``--weights hub``, ``hf://``), offline.

A tiny random transformers ``VitPoseForPoseEstimation`` (plain, and ViTPose+ with 6 experts) is saved with
``save_pretrained`` into a temporary folder that stands in for the Hugging Face Hub: only the two functions that
talk to the network (``_hub_file_info``, ``_hub_download``) are replaced, so everything after the download call
(size and SHA-256 check, conversion, the MoE merge, the cached kanpose checkpoint, its reuse) runs as for a real
download. A tiny ViTPose variant registered for this module carries the published-weights entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kanpose_cli.cli.app import app
from kanpose_cli.core.errors import UsageError, WeightsError
from kanpose_cli.core.models.registry import MODELS, ModelSpec, PublishedWeights, register_model
from kanpose_cli.core.models.vitpose import HEATMAP_LOSS, ViTPose, ViTPoseConfig, heatmap_codec
from kanpose_cli.core.weights import hub as H
from kanpose_cli.core.weights import load_pose_model, read_model_card
from conftest import perturb_batchnorm

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()

TINY = "vitpose-tiny-test"
PLAIN_REPO, PLUS_REPO = "test-org/vitpose-tiny", "test-org/vitpose-plus-tiny"
HIDDEN, LAYERS, HEADS, EXPERTS, PART = 64, 2, 4, 6, 16
COMMIT = "0123456789abcdef" * 2 + "01234567"


@pytest.fixture(scope="module", autouse=True)
def tiny_model():
    """A registered tiny ViTPose (D 64, 2 blocks) whose published weights are the two test repositories."""
    spec = ModelSpec(
        name=TINY, family="vitpose", build=ViTPose,
        config=ViTPoseConfig(embed_dim=HIDDEN, depth=LAYERS, num_heads=HEADS, drop_path_rate=0.0),
        codec=heatmap_codec(), loss=HEATMAP_LOSS, description="tiny ViTPose for the hub tests", converter="vitpose",
        published=(PublishedWeights("plus", PLUS_REPO, ap=1.0, trained_on="test", note="MoE"),
                   PublishedWeights("coco", PLAIN_REPO, ap=2.0)))
    register_model(spec)
    yield spec
    MODELS.unregister(TINY)


def _hf_model(experts: int):
    backbone = transformers.VitPoseBackboneConfig(
        image_size=[256, 192], patch_size=[16, 16], hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, mlp_ratio=4, qkv_bias=True, layer_norm_eps=1e-6, out_indices=[LAYERS],
        num_experts=experts, part_features=PART if experts > 1 else 0)
    cfg = transformers.VitPoseConfig(backbone_config=backbone, use_simple_decoder=False, num_labels=17)
    torch.manual_seed(experts)
    model = transformers.VitPoseForPoseEstimation(cfg).eval()
    with torch.no_grad():  # non-trivial experts, BN statistics and head so the comparison means something
        for name, p in model.named_parameters():
            if "experts" in name:
                p.normal_(0, 0.05)
        perturb_batchnorm(model.head)
        model.head.conv.weight.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory):
    """``{repo: hf model}`` saved with ``save_pretrained`` under ``root/OWNER/NAME`` (the stand-in hub)."""
    root = tmp_path_factory.mktemp("hub")
    models = {PLAIN_REPO: _hf_model(1), PLUS_REPO: _hf_model(EXPERTS)}
    for repo, model in models.items():
        model.save_pretrained(root / repo)
        assert (root / repo / "model.safetensors").is_file()
    return root, models


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private kanpose cache with downloads allowed."""
    monkeypatch.setenv("KANPOSE_HOME", str(tmp_path / "home"))
    for var in H.OFFLINE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def fake_hub(hub_root, monkeypatch):
    """Replace the two network calls by reads from the stand-in folder; returns the list of downloads made."""
    root, _ = hub_root
    calls: list[str] = []

    def file_info(ref):
        src = root / ref.repo / ref.file
        if not src.is_file():
            raise FileNotFoundError(f"EntryNotFound {ref.repo}/{ref.file}")
        return H.HubFileInfo(COMMIT, H.sha256_file(src), src.stat().st_size)

    def download(ref, commit, folder):
        assert commit == COMMIT and Path(folder).is_dir()
        calls.append(ref.repo)
        dst = Path(folder) / ref.file
        shutil.copyfile(root / ref.repo / ref.file, dst)
        return dst

    monkeypatch.setattr(H, "_hub_file_info", file_info)
    monkeypatch.setattr(H, "_hub_download", download)
    return calls


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _compare(ours, hf, dataset_index=None) -> float:
    torch.manual_seed(3)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        kwargs = {} if dataset_index is None else {"dataset_index": torch.full((2,), dataset_index)}
        theirs = hf(pixel_values=x, **kwargs).heatmaps
        mine = ours(x)
    assert mine.shape == theirs.shape == (2, 17, 64, 48)
    assert theirs.abs().max() > 1e-3  # not a trivially tiny output
    return float((mine - theirs).abs().max())


# ---------------------------------------------------------------------------------------------- the hub path
def test_plain_vitpose_from_the_hub_matches_transformers(home, hub_root, fake_hub):
    model = load_pose_model(TINY, "hub:coco")
    diff = _compare(model, hub_root[1][PLAIN_REPO])
    print(f"\nplain ViTPose via hub: max |heatmaps - transformers| = {diff:.2e}")
    assert diff < 1e-4
    assert model.weights_label == f"hf://{PLAIN_REPO}@main" and fake_hub == [PLAIN_REPO]
    converted = H.HubRef(PLAIN_REPO).converted_path(TINY)
    card = read_model_card(converted)
    prov = card.provenance
    assert card.model == TINY and prov["commit"] == COMMIT and prov["sha256_check"] == "hub sha256"
    assert prov["sha256"] == H.sha256_file(hub_root[0] / PLAIN_REPO / "model.safetensors")
    assert prov["license"] == "Apache-2.0" and prov["reported_coco_ap"] == 2.0
    assert _files(home / "hub") == []  # the download itself is not kept, only the converted checkpoint


def test_vitpose_plus_experts_merge_exactly_for_coco(home, hub_root, fake_hub):
    """``--weights hub`` = the first entry, the ViTPose+ file: shared + expert 0 merged into one plain MLP."""
    model = load_pose_model(TINY, "hub")
    hf = hub_root[1][PLUS_REPO]
    diff = _compare(model, hf, dataset_index=0)
    print(f"\nViTPose+ (6 experts, dataset 0) via hub: max |heatmaps - transformers| = {diff:.2e}")
    assert diff < 1e-4
    assert _compare(model, hf, dataset_index=1) > 100 * max(diff, 1e-6)  # the experts really differ
    fc2 = model.net.backbone.blocks[0].mlp.fc2
    assert tuple(fc2.weight.shape) == (HIDDEN, HIDDEN * 4)
    card = read_model_card(H.HubRef(PLUS_REPO).converted_path(TINY))
    assert "expert 0 (coco) merged" in card.provenance["converted"]


def test_converted_file_is_reused_offline_without_network(home, fake_hub, monkeypatch):
    load_pose_model(TINY, "hub:coco")
    assert fake_hub == [PLAIN_REPO]

    def no_network(*args):
        raise AssertionError("network used")

    monkeypatch.setattr(H, "_hub_file_info", no_network)
    monkeypatch.setattr(H, "_hub_download", no_network)
    monkeypatch.setenv("KANPOSE_OFFLINE", "1")
    again = load_pose_model(TINY, f"hf://{PLAIN_REPO}")  # same file named by URI
    assert again.weights_label == f"hf://{PLAIN_REPO}@main"


@pytest.mark.parametrize("failure", ["interrupt", "sha256", "size"])
def test_interrupted_or_bad_download_leaves_no_file(home, hub_root, fake_hub, monkeypatch, failure):
    root, _ = hub_root
    good_info = H._hub_file_info

    def half_download(ref, commit, folder):
        data = (root / ref.repo / ref.file).read_bytes()
        dst = Path(folder) / ref.file
        dst.write_bytes(data[: len(data) // 2])  # a partial file, as a killed transfer leaves it
        if failure == "interrupt":
            raise KeyboardInterrupt
        return dst

    def bad_info(ref):
        info = good_info(ref)
        return H.HubFileInfo(info.commit, "0" * 64, info.size) if failure == "sha256" else info

    monkeypatch.setattr(H, "_hub_download", half_download if failure != "sha256" else H._hub_download)
    monkeypatch.setattr(H, "_hub_file_info", bad_info)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else WeightsError) as err:
        load_pose_model(TINY, "hub:coco")
    if failure != "interrupt":
        assert ("SHA-256" if failure == "sha256" else "incomplete") in str(err.value)
        assert "\n" not in str(err.value)
    assert _files(home) == [], "a failed download left files behind"
    assert not list((home / "hub").glob(".tmp-*"))


@pytest.mark.parametrize("var", H.OFFLINE_VARIABLES)
def test_offline_missing_file_is_a_one_line_error_and_a_placed_file_works(home, hub_root, monkeypatch, var):
    monkeypatch.setenv(var, "1")
    with pytest.raises(WeightsError) as err:
        load_pose_model(TINY, "hub:coco")
    msg = str(err.value)
    target = H.HubRef(PLAIN_REPO).source_path()
    assert "\n" not in msg and var in msg
    assert f"https://huggingface.co/{PLAIN_REPO}/resolve/main/model.safetensors" in msg and str(target) in msg
    assert _files(home) == []
    # do what the message says: the file is picked up, converted, and works offline
    target.parent.mkdir(parents=True)
    shutil.copyfile(hub_root[0] / PLAIN_REPO / "model.safetensors", target)
    model = load_pose_model(TINY, "hub:coco")
    assert _compare(model, hub_root[1][PLAIN_REPO]) < 1e-4
    assert read_model_card(H.HubRef(PLAIN_REPO).converted_path(TINY)).provenance["sha256_check"] == "not verified"


def test_cli_offline_error_and_refused_dataset_are_one_line(home, tmp_path, monkeypatch, fake_hub):
    import cv2
    import numpy as np

    img = tmp_path / "p.jpg"
    cv2.imwrite(str(img), np.full((64, 48, 3), 127, np.uint8))
    monkeypatch.setenv("KANPOSE_OFFLINE", "1")
    res = runner.invoke(app, ["predict", str(img), "--model", TINY, "--weights", "hub", "--detector", "none",
                              "--save-dir", str(tmp_path / "out")])
    assert res.exit_code == 3, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: KANPOSE_OFFLINE=1 forbids downloads"), res.stderr
    monkeypatch.delenv("KANPOSE_OFFLINE")
    res = runner.invoke(app, ["predict", str(img), "--model", TINY, "--weights", f"hf://{PLUS_REPO}?dataset=aic",
                              "--detector", "none", "--save-dir", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "dataset 1 (aic) refused" in lines[0], res.stderr
    res = runner.invoke(app, ["predict", str(img), "--model", TINY, "--weights", "hub", "--detector", "none",
                              "--no-save", "--save-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    data = json.loads(next((tmp_path / "out").rglob("p.json")).read_text())
    assert data["weights"] == f"hf://{PLUS_REPO}@main"


# ---------------------------------------------------------------------------------------------- naming
def test_hf_uri_parsing():
    ref = H.parse_hf_uri("hf://usyd-community/vitpose-plus-small")
    assert (ref.repo, ref.revision, ref.file, ref.dataset) == ("usyd-community/vitpose-plus-small", "main",
                                                               "model.safetensors", 0)
    ref = H.parse_hf_uri("hf://o/r@v1.0/sub/w.pth?dataset=coco")
    assert (ref.repo, ref.revision, ref.file, ref.dataset) == ("o/r", "v1.0", "sub/w.pth", "coco")
    assert ref.uri == "hf://o/r@v1.0/sub/w.pth" and ref.url == "https://huggingface.co/o/r/resolve/v1.0/sub/w.pth"
    for bad in ("hf://onlyowner", "hf://o/r@", "hf://o/r?foo=1", "hf:///r"):
        with pytest.raises(UsageError):
            H.parse_hf_uri(bad)


def test_published_weights_resolution_and_errors():
    assert H.resolve_hub_weights("vitpose-b", "hub")[1].repo == "usyd-community/vitpose-base"
    assert H.resolve_hub_weights("vitpose-b", "hub:plus")[1].repo == "usyd-community/vitpose-plus-base"
    name, ref = H.resolve_hub_weights(None, "hf://usyd-community/vitpose-plus-small")
    assert name == "vitpose-s" and ref.published is not None and ref.published.ap == 75.8
    with pytest.raises(UsageError, match="needs --model"):
        load_pose_model(None, "hub")
    with pytest.raises(UsageError, match="has no published weights.*vitpose-b"):
        load_pose_model("amfacpose-r18-256x192", "hub")
    with pytest.raises(UsageError, match="--init hub.*vitpose-s"):
        load_pose_model("kanfpn-s4", "hub")
    with pytest.raises(UsageError, match="Did you mean plus"):
        load_pose_model("vitpose-b", "hub:pluss")
    with pytest.raises(UsageError, match="no registered model lists"):
        load_pose_model(None, "hf://someone/something")


def test_models_command_lists_published_weights(home):
    res = runner.invoke(app, ["models", TINY, "--format", "json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert [w["tag"] for w in row["hub"]] == ["plus", "coco"]
    plus = row["hub"][0]
    assert plus["repo"] == PLUS_REPO and plus["uri"] == f"hf://{PLUS_REPO}@main" and plus["license"] == "Apache-2.0"
    assert set(plus) >= {"revision", "file", "sha256", "ap", "trained_on"}
    res = runner.invoke(app, ["models", TINY])
    assert res.exit_code == 0 and "plus 0.010 · coco 0.020" in res.stdout  # AP as a fraction


def test_init_from_hub_through_the_same_cache(home, hub_root, fake_hub):
    """``kanpose train --init hub`` on a model with published weights: the converted checkpoint is made once and
    every tensor loads."""
    from kanpose_cli.core.models.registry import create_model
    from kanpose_cli.core.weights import init_weights

    torch.manual_seed(5)
    model = create_model(TINY)
    report = init_weights(model, "hub")
    assert report.source == f"hf://{PLUS_REPO}@main" and report.new == 0 and report.skipped == 0
    assert report.loaded == len([k for k in model.net.state_dict() if not k.endswith("num_batches_tracked")])
    assert _compare(model, hub_root[1][PLUS_REPO], dataset_index=0) < 1e-4
    init_weights(create_model(TINY), "hub")
    assert fake_hub == [PLUS_REPO]  # downloaded and converted once

"""Progressive resizing: SimCC head weights trained at one input size, resized to start a model at another
(``SimCCMLPHead.resize_state``, used by ``--init``)."""

from __future__ import annotations

import pytest
import torch

from kanpose_cli.core.models import create_model
from kanpose_cli.core.models.heads.simcc import SimCCMLPHead
from kanpose_cli.core.weights import init_weights, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("mlp,embed", [(True, 1), (False, 2)])
def test_resized_head_reads_an_upsampled_map_as_the_old_head_read_the_old_map(mlp, embed):
    """A map constant per channel, upsampled ×2: the resized head's pre-activations equal the old ones (bilinear ×2
    keeps each weight's total), so its logits are exactly the old logits interpolated linearly along the bins (first
    and last bin kept)."""
    torch.manual_seed(0)
    small = SimCCMLPHead(8, (4, 3), 5, (12, 16), embed_dim=embed, mlp=mlp).eval()
    big = SimCCMLPHead(8, (8, 6), 5, (24, 32), embed_dim=embed, mlp=mlp).eval()
    resized = big.resize_state(small.state_dict())
    names = {"mlp_x.0.weight", "mlp_x.2.weight", "mlp_x.2.bias"} if mlp else {"mlp_x.weight", "mlp_x.bias"}
    assert names <= set(resized) and all(r.startswith("resized:") for _, r in resized.values())
    state = {**small.state_dict(), **{k: v for k, (v, _) in resized.items()}}
    big.load_state_dict(state)  # every shape fits
    x = torch.randn(2, 8, 1, 1).expand(2, 8, 4, 3)
    with torch.no_grad():
        sx, sy = small(x)
        bx, by = big(torch.nn.functional.interpolate(x, size=(8, 6), mode="bilinear", align_corners=False))
    for s, b in ((sx, bx), (sy, by)):
        torch.testing.assert_close(b[..., [0, -1]], s[..., [0, -1]], atol=1e-5, rtol=1e-5)
        n, m = s.shape[-1], b.shape[-1]
        want = torch.nn.functional.interpolate(s.reshape(-1, 1, n), size=m, mode="linear", align_corners=True)
        torch.testing.assert_close(b, want.reshape(b.shape), atol=1e-5, rtol=1e-5)


def test_resize_leaves_out_what_does_not_fit():
    head = SimCCMLPHead(8, (8, 6), 5, (24, 32))
    assert head.resize_state(head.state_dict()) == {}  # same size: nothing to resize
    other = SimCCMLPHead(8, (4, 3), 5, (12, 16), hidden=32)  # another hidden width: cannot be resized
    assert not any(k.endswith(".2.weight") for k in head.resize_state(other.state_dict()))
    assert head.resize_state({}) == {}


def test_init_256x192_from_128x96_loads_every_tensor(tmp_path):
    torch.manual_seed(1)
    small = create_model("amfacpose-r18-128x96")
    save_checkpoint(small, tmp_path / "small.safetensors")
    big = create_model("amfacpose-r18-256x192")
    report = init_weights(big, str(tmp_path / "small.safetensors"))
    assert report.count("skipped") == 0 and report.count("new") == 0
    reasons = {r.reason for r in report.rows if r.reason}
    assert {"resized: bins 192 -> 384", "resized: bins 256 -> 512", "resized: feature grid 32×24 -> 64×48"} == reasons
    # the resized tensors are the interpolated ones, not the random initial values
    w_small, w_big = small.net.head.mlp_x[2].bias, big.net.head.mlp_x[2].bias
    torch.testing.assert_close(w_big[[0, -1]], w_small[[0, -1]])
    sb, ss = big.net.state_dict(), small.net.state_dict()
    same = [k for k in ss if not k.startswith("head.mlp_")]
    assert len(same) > 150 and all(torch.equal(sb[k], ss[k]) for k in same)

"""MAC counting rule (kanpose_cli.core.models.complexity): attention is counted by kanpose's formula whatever the
torch version or SDPA kernel, and the same as explicit attention; convs and linears as m·n·k products."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kanpose_cli.core.models.complexity import MacCounter, attention_macs, count_macs

B, H, LQ, LK, D = 2, 4, 12, 20, 16
EXPECTED = 2 * B * H * LQ * LK * D  # Q·Kᵀ and A·V


def _qkv():
    torch.manual_seed(0)
    return torch.randn(B, H, LQ, D), torch.randn(B, H, LK, D), torch.randn(B, H, LK, D)


def _explicit(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(D)
    return (logits if mask is None else logits + mask).softmax(-1) @ v


@pytest.mark.parametrize("case", ["sdpa", "sdpa_float_mask", "sdpa_bool_mask", "sdpa_causal", "sdpa_dropout",
                                  "sdpa_kwargs", "explicit", "explicit_mask"])
@pytest.mark.parametrize("grad", [False, True])
def test_attention_counts_formula(case, grad):
    q, k, v = _qkv()
    q.requires_grad_(grad)
    mask = torch.randn(B, H, LQ, LK)
    calls = {
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "sdpa_float_mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        "sdpa_bool_mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask > 0),
        "sdpa_causal": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "sdpa_dropout": lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=0.5),  # math path on CPU
        "sdpa_kwargs": lambda: F.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=mask),
        "explicit": lambda: _explicit(q, k, v),
        "explicit_mask": lambda: _explicit(q, k, v, mask),
    }
    with MacCounter() as c:
        calls[case]()
    assert c.macs == EXPECTED == attention_macs(q.shape, k.shape, v.shape)


def test_conv_linear_and_nested_attention():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)  # 8·16·16 outputs × 3·3·3
            self.fc = nn.Linear(256, 32)  # 8 rows × 256·32

        def forward(self, x):
            t = self.fc(self.conv(x).flatten(2))  # (1, 8, 32)
            a = t.view(1, 2, 4, 32)
            return F.scaled_dot_product_attention(a, a, a, attn_mask=torch.zeros(4, 4))

    macs = 8 * 16 * 16 * 27 + 8 * 256 * 32 + 2 * 2 * 4 * 4 * 32  # biases not counted
    assert count_macs(Net(), (16, 16)) == macs
    with MacCounter() as c:
        assert c.macs == 0
    assert MacCounter().macs == 0

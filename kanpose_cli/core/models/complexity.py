"""Parameter and MAC counts.

MAC convention: one multiply-add = 1 MAC; "GMACs" = 1e9 MACs, which is what the papers call "GFLOPs" (mmcv/fvcore/
thop convention). Counted with PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on one input of
the model's size in fp32 on CPU. Attention is counted: the counter has formulas for
``scaled_dot_product_attention`` kernels (CPU flash and math paths included), i.e. the Q·Kᵀ and A·V products.
Element-wise ops (activations, norms, softmax, additions) are not counted, as in fvcore/thop.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    """Number of parameters (all, trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_macs(module: nn.Module, input_size: tuple[int, int], batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass at ``input_size`` ``(H, W)`` (see the module docstring).

    Returns:
        MACs per batch of ``batch`` images (int).
    """
    was_training = module.training
    module.eval()
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(batch, 3, int(input_size[0]), int(input_size[1]), device=device)
        counter = FlopCounterMode(display=False)
        with counter:
            module(x)
        return int(counter.get_total_flops()) // 2
    finally:
        module.train(was_training)

"""Parameter and MAC counts.

MAC convention: one multiply-add = 1 MAC; "GMACs" = 1e9 MACs, which is what the papers call "GFLOPs" (mmcv/fvcore/
thop convention). Counted on one input of the model's size in fp32 (on the model's device), with no gradients.

What is counted (the rule is kanpose's own, so a figure does not depend on the installed torch):

* convolutions (``aten.convolution`` and its variants, transposed included): ``N·C_out·H_out·W_out·C_in/g·k_h·k_w``;
* matrix products — ``aten.mm`` / ``addmm`` / ``bmm`` / ``baddbmm``, i.e. ``nn.Linear``, ``@`` / ``matmul``,
  ``einsum``: ``m·n·k`` per product (the bias of ``addmm`` is not counted).
  These two come from PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2), whose formulas for
  them are the same in every supported torch (checked on 2.14.1 and 2.15.0);
* attention through ``torch.nn.functional.scaled_dot_product_attention`` (SDPA): counted by :func:`attention_macs`
  at the Python call, whatever kernel torch picks (flash / efficient / math, any device) and whether torch has a
  formula for that kernel or not (torch 2.14 has none for the CPU flash kernel, 2.15 has one). Whatever the
  flop counter records inside the SDPA call is discarded, so nothing is counted twice. The mask / bias, the scale,
  dropout and the softmax are element-wise and not counted. Explicit attention (``softmax(Q@Kᵀ)@V``) is counted
  through its two matrix products, which gives the same figure as SDPA of the same shapes.

Not counted, as in fvcore/thop: element-wise ops (activations, norms, softmax, additions, scaling), pooling,
interpolation and ``grid_sample``, and any op torch's counter has no formula for.
"""

from __future__ import annotations

import math
from contextlib import ExitStack

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

_SDPA = F.scaled_dot_product_attention


def count_params(module: nn.Module) -> int:
    """Number of parameters (all, trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def attention_macs(q_shape, k_shape, v_shape) -> int:
    """MACs of ``softmax(Q·Kᵀ·s + mask)·V``: the Q·Kᵀ and A·V products only (Vaswani et al. 2017, Eq. 1).

    Args:
        q_shape: ``(..., Lq, E)``; the leading dims (batch, heads) are those of the output.
        k_shape: ``(..., Lk, E)``. v_shape: ``(..., Lk, Ev)``.

    Returns:
        ``prod(q_shape[:-2]) · Lq · Lk · (E + Ev)``, i.e. ``2·B·H·Lq·Lk·D`` for head dim ``D = E = Ev``.
    """
    *lead, lq, e = q_shape
    lk, ev = k_shape[-2], v_shape[-1]
    return math.prod(lead) * lq * lk * (e + ev)


class _AttentionRule(TorchFunctionMode):
    """Counts each SDPA call with :func:`attention_macs` and records the FLOPs ``flops`` counted inside it."""

    def __init__(self, flops: FlopCounterMode):
        super().__init__()
        self.flops, self.macs, self.discarded_flops = flops, 0, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not _SDPA:
            return func(*args, **kwargs)
        before = self.flops.get_total_flops()
        out = func(*args, **kwargs)
        self.discarded_flops += self.flops.get_total_flops() - before
        q, k, v = (kwargs[n] if n in kwargs else args[i] for i, n in enumerate(("query", "key", "value")))
        self.macs += attention_macs(q.shape, k.shape, v.shape)
        return out


class MacCounter:
    """Context manager counting the MACs of everything run inside it, by the rule of this module's docstring.

    Example::

        with MacCounter() as c:
            model(x)
        c.macs  # int
    """

    def __init__(self):
        self._stack: ExitStack | None = None
        self._flops: FlopCounterMode | None = None
        self._attn: _AttentionRule | None = None

    def __enter__(self) -> MacCounter:
        self._flops = FlopCounterMode(display=False)
        self._attn = _AttentionRule(self._flops)
        with ExitStack() as stack:
            stack.enter_context(self._flops)
            stack.enter_context(self._attn)  # innermost: sees SDPA before it reaches the flop counter's dispatch
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)

    @property
    def macs(self) -> int:
        """MACs counted so far (int; 0 before the context is entered)."""
        if self._flops is None:
            return 0
        return (self._flops.get_total_flops() - self._attn.discarded_flops) // 2 + self._attn.macs


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
        with MacCounter() as counter:
            module(x)
        return counter.macs
    finally:
        module.train(was_training)

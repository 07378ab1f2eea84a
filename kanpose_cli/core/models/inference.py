"""Inference preparation: a fused, eval-only copy of a network for predict / eval / label / bench.

:func:`prepare_for_inference` never touches the network it is given (training, checkpoints and export keep using
the original module); it returns an :class:`InferenceNet` that

1. **folds every BatchNorm into the convolution before it** (``torch.nn.utils.fusion.fuse_conv_bn_eval``:
   ``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β``, per output channel). This removes one full read + write
   of the activation per BN, which is what memory-bound depthwise-separable networks (AMFACPose) spend their time
   on. The pairs fused are found structurally: consecutive ``(conv, BN)`` children of every ``nn.Sequential``
   (the stem's CoordConv + BN, the DSC pointwise conv + BN, AFPN's lateral / fuse convs, ResNet downsample paths)
   and the named pairs of :data:`NAMED_PAIRS` (torchvision ``BasicBlock``/``Bottleneck`` ``conv_i``/``bn_i``,
   SCRM's depthwise spatial conv and its 1-D channel conv, RKAN's expand conv);
2. on CPU, **runs large batches in micro-batches** whose largest intermediate tensor stays under
   :data:`CPU_CHUNK_BYTES` (only when the whole batch's would exceed :data:`MMAP_CAP_BYTES`). glibc's ``malloc``
   serves blocks above its mmap threshold (at most 32 MiB) with fresh ``mmap`` pages that are zero-filled on
   first touch and unmapped again on ``free``: a batch of 8 AMFACPose-R34 crops (56–85 MiB activations)
   page-faulted ~936 000 times per forward pass (37 856 at batch 1) and ran about 2× slower per image than batch 1
   (docs/benchmarks.md, "AMFACPose batching"). Chunks keep every activation in malloc's reusable heap.
   The chunk is measured once, on the first sample of the first batch (largest tensor any op produces).

Outputs equal the plain network's up to float rounding (tests/test_inference.py: keypoints within 1e-3 px).
The result cannot be put back into training mode (``train()`` raises): train the original module.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

MMAP_CAP_BYTES = 32 * 2**20  # glibc's largest mmap threshold: bigger blocks are always fresh, page-faulted mmaps
CPU_CHUNK_BYTES = 12 * 2**20  # largest intermediate per CPU micro-batch (AMFACPose-R34 384×288: 10.6 MiB -> 1 crop)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_CONV = (nn.Conv1d, nn.Conv2d)

# (module class name, [(conv attribute, BN attribute), ...]) for modules whose forward applies BN(conv(x)) directly.
NAMED_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "BasicBlock": (("conv1", "bn1"), ("conv2", "bn2")),
    "Bottleneck": (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    "SCRM": (("spatial_conv", "spatial_bn"), ("channel_conv", "channel_bn")),
    "RKANBlock": (("expand", "bn"),),
}


class InferenceNet(nn.Module):
    """An eval-only network: ``net`` (already fused) run in micro-batches of at most ``chunk`` samples.

    Args:
        net: the prepared (fused) network; ``(B, ...) -> tensor | tuple/list/dict of tensors`` with batch first.
        chunk: micro-batch size, or None to run every batch whole (GPU, small-activation networks).
        fused: number of BatchNorms folded into convolutions (for logs and tests).
        sample_bytes: largest intermediate tensor of one sample; a batch whose largest tensor stays under
            :data:`MMAP_CAP_BYTES` runs whole even with a ``chunk`` (0: always split by ``chunk``).
        auto_chunk: measure ``sample_bytes`` and set ``chunk`` (⌊:data:`CPU_CHUNK_BYTES` ÷ sample_bytes⌋) on the
            first batch of more than one sample, by running its first sample alone under a dispatch mode (no
            extra forward pass; batch-1 calls never pay for it).

    Forward: the same inputs and outputs as ``net``; per-sample results do not depend on the chunking (eval-mode
    BN uses its running statistics).
    """

    def __init__(self, net: nn.Module, chunk: int | None = None, fused: int = 0, sample_bytes: int = 0,
                 auto_chunk: bool = False):
        super().__init__()
        self.net, self.chunk, self.fused, self.sample_bytes = net, chunk, fused, sample_bytes
        self.auto_chunk = auto_chunk
        super().train(False)

    def train(self, mode: bool = True):
        """Only ``train(False)`` / ``eval()`` are allowed.

        Raises:
            RuntimeError: ``mode`` True — the BatchNorms are folded away; train the original module instead.
        """
        if mode:
            raise RuntimeError("this is an inference copy (BatchNorm folded into the convolutions) and cannot be "
                               "trained; train the original network")
        return super().train(False)

    def forward(self, x: torch.Tensor):
        """Same inputs and outputs as the wrapped network ((B, 3, H, W) crops); on CPU a large batch runs in
        micro-batches (module docstring) and the outputs are concatenated along the batch dimension."""
        n = x.shape[0]
        if self.auto_chunk and n > 1:
            self.auto_chunk = False
            try:
                first, self.sample_bytes = _largest_activation(self.net, x[:1])
            except Exception:  # noqa: BLE001 - a network the dispatch mode cannot observe: run whole batches
                return self.net(x)
            self.chunk = max(1, CPU_CHUNK_BYTES // self.sample_bytes) if self.sample_bytes else None
            return _cat_outputs([first, self.forward(x[1:])])
        if self.chunk is None or n <= self.chunk or _fits_malloc_heap(n, self.sample_bytes):
            return self.net(x)
        return _cat_outputs([self.net(part) for part in x.split(self.chunk)])


def cpu_micro_batch(n: int, sample_bytes: int) -> int | None:
    """Micro-batch size for ``n`` samples on CPU whose largest intermediate is ``sample_bytes`` each (module
    docstring): None (run the batch whole) when ``sample_bytes`` is unknown (0) or the batch's largest tensor stays
    under :data:`MMAP_CAP_BYTES`, else ⌊:data:`CPU_CHUNK_BYTES` ÷ ``sample_bytes``⌋ (at least 1). Also used for
    onnxruntime sessions (:class:`~kanpose_cli.core.weights.onnx.OnnxNet`), where it was measured to help as well."""
    if not sample_bytes or _fits_malloc_heap(n, sample_bytes):
        return None
    return max(1, CPU_CHUNK_BYTES // sample_bytes)


def _fits_malloc_heap(n: int, sample_bytes: int) -> bool:
    """True when the largest intermediate of ``n`` samples (``sample_bytes`` each, known: > 0) stays under
    :data:`MMAP_CAP_BYTES`, i.e. the batch can run whole without fresh mmap pages (module docstring)."""
    return bool(sample_bytes) and n * sample_bytes <= MMAP_CAP_BYTES


def _cat_outputs(outs: list):
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs)
    if isinstance(first, dict):
        return {k: _cat_outputs([o[k] for o in outs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_cat_outputs(list(parts)) for parts in zip(*outs))
    raise TypeError(f"cannot concatenate network outputs of type {type(first).__name__}")


def _conv_of(module: nn.Module) -> tuple[nn.Module, str, nn.Conv2d] | None:
    """The convolution whose output ``module``'s output is: ``(parent, attribute, conv)`` or None.

    A plain Conv1d/Conv2d (parent None), a CoordConv2d (its ``conv``), or a Sequential ending in one (depthwise
    separable conv: the pointwise conv).
    """
    if isinstance(module, _CONV):
        return None, "", module
    inner = getattr(module, "conv", None)
    if type(module).__name__ == "CoordConv2d" and isinstance(inner, _CONV):
        return module, "conv", inner
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], _CONV):
        return module, str(len(module) - 1), module[-1]
    return None


def _try_fuse(owner: nn.Module, conv_name: str, bn_name: str) -> bool:
    """Fold ``owner.<bn_name>`` into the convolution at ``owner.<conv_name>``; replace the BN by Identity."""
    found = _conv_of(getattr(owner, conv_name))
    bn = getattr(owner, bn_name)
    if found is None or not isinstance(bn, _BN):
        return False
    parent, attr, conv = found
    if not (isinstance(bn, _BN) and bn.track_running_stats and bn.running_mean is not None
            and bn.num_features == conv.out_channels and conv.padding_mode == "zeros"):
        return False
    fused = fuse_conv_bn_eval(conv, bn)
    if parent is None:
        setattr(owner, conv_name, fused)
    else:
        setattr(parent, attr, fused)
    setattr(owner, bn_name, nn.Identity())
    return True


def fuse_conv_bn(net: nn.Module) -> int:
    """Fold BatchNorm into the preceding convolutions of ``net`` **in place** (``net`` must be in eval mode).

    Returns:
        How many BatchNorms were folded (each replaced by ``nn.Identity``).

    Raises:
        RuntimeError: ``net`` is in training mode (folding uses the running statistics).
    """
    if net.training:
        raise RuntimeError("fuse_conv_bn needs an eval-mode network (it folds the running statistics)")
    count = 0
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i + 1], _BN) and _try_fuse(module, str(i), str(i + 1)):
                    count += 1
        for name in (c.__name__ for c in type(module).__mro__):
            for conv_name, bn_name in NAMED_PAIRS.get(name, ()):
                if hasattr(module, conv_name) and hasattr(module, bn_name) and _try_fuse(module, conv_name, bn_name):
                    count += 1
    return count


def _largest_activation(net: nn.Module, example: torch.Tensor):
    """``(net(example), bytes of the largest tensor any operator produced)``, observed with a dispatch mode."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Largest(TorchDispatchMode):
        size = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    Largest.size = max(Largest.size, t.numel() * t.element_size())
            return out

    with torch.inference_mode(), Largest():
        out = net(example)
    return out, Largest.size


def largest_activation_bytes(net: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the largest tensor any operator produces in ``net(example)`` (e.g. 10.1 MiB for one
    AMFACPose-R34 crop at 384×288: the AFPN concatenation, 384 × 96 × 72 fp32)."""
    return _largest_activation(net, example)[1]


def prepare_for_inference(net: nn.Module, input_size: tuple[int, int] | None = None,
                          device: torch.device | str | None = None) -> nn.Module:
    """An eval-only, BN-folded copy of ``net`` (an :class:`InferenceNet`); ``net`` itself is left unchanged.

    Args:
        net: the network, (B, 3, H, W) -> outputs. Non-torch backends (an onnxruntime session wrapped as a module,
            ``net.backend != "torch"``) are returned as they are.
        input_size: (H, W) pixels of the network input (None: no micro-batching); the micro-batch size is
            measured on the first batch (:class:`InferenceNet` ``auto_chunk``).
        device: where it runs; micro-batching is used on CPU only (a GPU wants whole batches).

    Returns:
        :class:`InferenceNet` in eval mode with ``requires_grad`` off, on the same device and dtype as ``net``.
    """
    if getattr(net, "backend", "torch") != "torch":
        return net
    params = list(net.parameters())
    dtype = params[0].dtype if params else torch.float32
    work = copy.deepcopy(net).eval()
    if dtype in (torch.float16, torch.bfloat16):  # fold in fp32, then go back to the half type
        work.float()
    fused = fuse_conv_bn(work)
    work.to(dtype)
    for p in work.parameters():
        p.requires_grad_(False)
    dev = torch.device(device) if device is not None else (params[0].device if params else torch.device("cpu"))
    return InferenceNet(work, fused=fused, auto_chunk=dev.type == "cpu" and input_size is not None)

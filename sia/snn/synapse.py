"""One synapse group's input current, computed exactly.

Convolutions run as float32 when the worst-case partial sum is below 2^24 (every
partial sum is then an exactly representable integer, whatever the summation
order) and as float64 below 2^53; anything larger is refused.
"""

import torch
import torch.nn.functional as F

from sia import SiaError
from sia.program.bounds import input_max
from sia.program.format import Program, Synapse


def exact_dtype(program: Program, syn: Synapse) -> torch.dtype:
    w = torch.as_tensor(syn.weight).reshape(syn.weight.shape[0], -1).abs().sum(1).max()
    bound = int(w) * input_max(program, syn.source, syn.pool)
    if bound < 2 ** 24:
        return torch.float32
    if bound < 2 ** 53:
        return torch.float64
    raise SiaError(f"synapse from source {syn.source}: partial sums up to {bound} exceed 2^53")


def sum_pool(x: torch.Tensor, p: int) -> torch.Tensor:
    return x if p == 1 else F.avg_pool2d(x, p, divisor_override=1)


def synapse_current(syn: Synapse, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x: [N, C, H, W] source values (spikes or image) -> current [N, Cout, ...] in
    `dtype`, holding exact integers (the caller chose a dtype that keeps them exact)."""
    return apply_weights(syn, sum_pool(x.to(dtype), syn.pool), torch.as_tensor(syn.weight, dtype=dtype))


def apply_weights(syn: Synapse, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The group's operation on an already pooled source x with weights w (the program's
    integers, or sia.convert.finetune's differentiable copy of them)."""
    if syn.op == "conv":
        return F.conv2d(x, w, stride=syn.stride, padding=syn.padding)
    if syn.op == "dense":
        return F.linear(x.flatten(1), w)[:, :, None, None]
    return x * w[None, :, None, None]


def fanout_map(syn: Synapse, pooled_hw: tuple[int, int], out_channels: int) -> torch.Tensor:
    """Accumulates one event at each pooled source position causes (all output channels)."""
    h, w = pooled_hw
    if syn.op == "dense":
        return torch.full((h, w), float(out_channels))
    if syn.op == "identity":
        return torch.ones(h, w)
    # d(sum of a ones-kernel conv)/d(input) counts the outputs each input reaches
    with torch.enable_grad():
        x = torch.zeros(1, 1, h, w, requires_grad=True)
        k = torch.ones(1, 1, *syn.weight.shape[2:])
        F.conv2d(x, k, stride=syn.stride, padding=syn.padding).sum().backward()
    return x.grad[0, 0] * out_channels


def dense_macs(program: Program, syn: Synapse, out_shape) -> int:
    """Multiply-accumulates of the equivalent ANN layer for this synapse group."""
    co, ho, wo = out_shape
    c, h, w = program.pooled_shape(syn)
    if syn.op == "conv":
        kh, kw = syn.weight.shape[2:]
        return co * ho * wo * c * kh * kw
    if syn.op == "dense":
        return co * c * h * w
    return co * ho * wo

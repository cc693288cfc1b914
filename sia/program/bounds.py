"""Worst-case integer ranges of a layer: input current (accumulator) and membrane.

The converter declares bit-widths from these; validation refuses a program whose
declared widths could overflow, and backends refuse widths they cannot hold.
"""

import numpy as np

from sia import SiaError
from sia.program.format import IMAGE, Layer, Program, bits_signed

# the largest t_max widths are declared for: membrane_range iterates the worst case step
# by step, and no backend runs more than 256 steps
T_MAX_LIMIT = 4096


def input_max(program: Program, source: int, pool: int) -> int:
    """Largest magnitude one (pooled) input element can take."""
    per_element = (1 << program.input_bits) - 1 if source == IMAGE else 1
    return per_element * pool * pool


def current_range(program: Program, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel [min, max] of one timestep's input current (synapses + bias)."""
    lo = layer.bias.astype(np.int64).copy()
    hi = layer.bias.astype(np.int64).copy()
    for syn in layer.inputs:
        w = syn.weight.astype(np.int64).reshape(syn.weight.shape[0], -1)
        xmax = input_max(program, syn.source, syn.pool)
        # a signed source's (pooled) element lies in [-xmax, xmax], any other in [0, xmax]
        xmin = -xmax if syn.source != IMAGE and program.layers[syn.source].signed else 0
        hi += np.clip(w, 0, None).sum(axis=1) * xmax + np.clip(w, None, 0).sum(axis=1) * xmin
        lo += np.clip(w, None, 0).sum(axis=1) * xmax + np.clip(w, 0, None).sum(axis=1) * xmin
    return lo, hi


def membrane_range(program: Program, layer: Layer, t_max: int | None = None) -> tuple[int, int]:
    """[min, max] of V over all timesteps t <= t_max, before and after reset."""
    t_max = program.t_max if t_max is None else t_max
    if t_max > T_MAX_LIMIT:
        raise SiaError(f"t_max={t_max}: bit-widths are declared for at most {T_MAX_LIMIT} steps")
    i_lo, i_hi = current_range(program, layer)
    lo = hi = layer.v_init.astype(np.int64)
    vmin, vmax = lo.min(), hi.max()
    for _ in range(t_max):
        pre_lo, pre_hi = lo + i_lo, hi + i_hi
        vmin, vmax = min(vmin, pre_lo.min()), max(vmax, pre_hi.max())
        if layer.kind == "if":
            th = layer.threshold.astype(np.int64)
            # no fire: post = pre < th; fire: post = pre - th >= 0; a signed neuron's -1
            # spike (pre < 0): post = pre + th < th, and pre itself when it may not fire
            hi = np.where(pre_hi >= th, np.maximum(th - 1, pre_hi - th), pre_hi)
            lo = np.minimum(pre_lo, 0)
        else:
            lo, hi = pre_lo, pre_hi
    return int(vmin), int(vmax)


def required_bits(program: Program, layer: Layer) -> dict:
    i_lo, i_hi = current_range(program, layer)
    v_lo, v_hi = membrane_range(program, layer)
    th_hi = int(layer.threshold.max()) if layer.threshold is not None else 0
    return {
        "acc_bits": bits_signed(int(i_lo.min()), int(i_hi.max())),
        "v_bits": bits_signed(v_lo, max(v_hi, th_hi)),
        "current_range": [int(i_lo.min()), int(i_hi.max())],
        "membrane_range": [v_lo, v_hi],
    }


def declare_bits(program: Program, layer: Layer) -> Layer:
    """Set the layer's declared acc_bits / v_bits to exactly what its worst case needs
    (after its integers were set or changed)."""
    need = required_bits(program, layer)
    layer.acc_bits, layer.v_bits = need["acc_bits"], need["v_bits"]
    return layer

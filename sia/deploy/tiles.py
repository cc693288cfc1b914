"""How a program runs on SIA: one launch per (layer, tile of P output channels), and the
reference result of one launch computed with the golden simulator's own functions.

The host keeps every layer's output spike maps [T, C, H, W] (uint8 0/1) that a later layer
reads; a launch receives the full input maps of its layer's synapse groups and returns the
tile's output: spikes [T, P_tile, H, W] for an IF layer, the final membranes [P_tile, H, W]
(int64) for the integrator.
"""

from dataclasses import dataclass

import numpy as np
import torch

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.program.format import IMAGE, Layer, Program
from sia.snn.neuron import if_step, integrator_step, signed_if_step
from sia.snn.synapse import exact_dtype, synapse_current


@dataclass(frozen=True)
class Launch:
    layer: int          # layer index in the program
    tile: int           # tile index within the layer
    c0: int             # first output channel
    c1: int             # one past the last output channel

    @property
    def channels(self) -> int:
        return self.c1 - self.c0


def plan(program: Program, cfg: SIAConfig) -> list[Launch]:
    out = []
    for i, layer in enumerate(program.layers):
        C = layer.channels
        for k, c0 in enumerate(range(0, C, cfg.pes)):
            out.append(Launch(i, k, c0, min(C, c0 + cfg.pes)))
    return out


def tile_layer(layer: Layer, ln: Launch) -> Layer:
    """The layer restricted to the tile's output channels."""
    sl = slice(ln.c0, ln.c1)
    from sia.program.format import Synapse
    inputs = [Synapse(source=s.source, op=s.op, weight=s.weight[sl], weight_bits=s.weight_bits,
                      stride=s.stride, padding=s.padding, pool=s.pool) for s in layer.inputs]
    return Layer(name=layer.name, kind=layer.kind, shape=(ln.channels, *layer.shape[1:]),
                 bias=layer.bias[sl], v_init=layer.v_init[sl], v_bits=layer.v_bits,
                 acc_bits=layer.acc_bits, inputs=inputs,
                 threshold=None if layer.threshold is None else layer.threshold[sl],
                 signed=layer.signed)


def reference_launch(program: Program, ln: Launch, sources: dict[int, np.ndarray], T: int,
                     image: np.ndarray | None = None) -> np.ndarray:
    """Golden result of one launch for one image.

    sources: layer index -> spikes uint8 [T, C, H, W] (a signed layer's: int8, -1/0/1);
    image: uint8 [C, H, W]. Returns spikes uint8 [T, P, H, W] (IF; signed: int8) or
    final membranes int64 [P, H, W] (integrator).
    """
    layer = tile_layer(program.layers[ln.layer], ln)
    C, H, W = layer.shape
    varying = torch.zeros(T, C, H, W, dtype=torch.int64)
    constant = torch.as_tensor(layer.bias, dtype=torch.int64)[:, None, None].expand(C, H, W).clone()
    for syn in layer.inputs:
        dt = exact_dtype(program, syn)
        if syn.source == IMAGE:
            if image is None:
                raise SiaError(f"launch {ln}: the layer reads the image but none was given")
            constant += synapse_current(syn, torch.as_tensor(image)[None], dt)[0]
        else:
            varying += synapse_current(syn, torch.as_tensor(sources[syn.source]), dt)
    v = torch.as_tensor(layer.v_init, dtype=torch.int64)[:, None, None].expand(C, H, W).clone()
    if layer.kind == "if":
        theta = torch.as_tensor(layer.threshold, dtype=torch.int64)[:, None, None]
        out = np.empty((T, C, H, W), dtype=np.int8 if layer.signed else np.uint8)
        count = torch.zeros_like(v)
        for t in range(T):
            if layer.signed:
                v, s, count = signed_if_step(v, varying[t] + constant, theta, count)
            else:
                v, s = if_step(v, varying[t] + constant, theta)
            out[t] = s.numpy()
        return out
    for t in range(T):
        v = integrator_step(v, varying[t] + constant)
    return v.numpy().astype(np.int64)

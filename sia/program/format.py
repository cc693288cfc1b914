"""Program data model.

Program
  input_shape  (C, H, W) of the uint8 image, fed unchanged at every timestep
  levels       L of the QCFS ANN it came from (spike counts at T = L match it)
  timesteps    T the program is meant to run; bit-widths are declared for t <= t_max
  layers       ordered; layer i may read the image (source -1) or any layer j < i

Layer (one population of neurons, shape (C, H, W); dense layers have H = W = 1)
  kind         "if": integrate-and-fire, fire when V >= threshold, reset by subtraction
               "integrator": non-spiking, V accumulates; the class is argmax V (last layer)
  threshold    int[C] >= 1 (if-layers only)
  signed       if-layers only (format version 2): signed IF neurons that also emit a -1
               spike, taking back an earlier one, when V < 0 (docs/semantics.md); the
               golden simulator and fine-tuning run them, the SIA does not (yet)
  bias         int[C], added to V every timestep
  v_init       int[C], V at t = 0
  v_bits       declared signed membrane width; acc_bits: declared signed width of the
               per-timestep input current (sum of all synapse groups + bias)
  inputs       synapse groups, all accumulated into the same neurons

Synapse (a group of synapses from one source population)
  op           "conv": int weight [Cout, Cin, kh, kw] with stride/padding
               "dense": int weight [Cout, Cin*Hp*Wp] over the flattened (pooled) source
               "identity": int weight [C], channel c of the source -> channel c
  pool         p >= 1: the source is first sum-pooled over p x p windows (an average
               pool whose 1/p^2 the converter folded into the weights' unit)
  weight_bits  declared signed width of the weights
"""

from dataclasses import dataclass, field

import numpy as np


FORMAT_VERSION = 2          # written only by programs with signed layers; else 1
READ_VERSIONS = (1, 2)
IMAGE = -1
KINDS = ("if", "integrator")
OPS = ("conv", "dense", "identity")


def bits_signed(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi]."""
    lo, hi = int(min(lo, 0)), int(max(hi, 0))
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


def bits_unsigned(hi: int) -> int:
    return max(1, int(hi).bit_length())


@dataclass
class Synapse:
    source: int
    op: str
    weight: np.ndarray
    weight_bits: int
    stride: int = 1
    padding: int = 0
    pool: int = 1
    plane: int = 0      # the SIA's view only (sia/hw/planes.py), never in a file: 0 = the
                        # source's spikes; +1 / -1 = its +1 / -1 spikes (the -1 plane adds -w);
                        # 2 = a sign pair, both signs in one group

    @property
    def kernel(self) -> tuple[int, int]:
        return tuple(self.weight.shape[2:]) if self.op == "conv" else (1, 1)


@dataclass
class Layer:
    name: str
    kind: str
    shape: tuple[int, int, int]
    bias: np.ndarray
    v_init: np.ndarray
    v_bits: int
    acc_bits: int
    inputs: list[Synapse] = field(default_factory=list)
    threshold: np.ndarray | None = None
    signed: bool = False

    @property
    def channels(self) -> int:
        return self.shape[0]


@dataclass
class Program:
    name: str
    input_shape: tuple[int, int, int]
    levels: int
    timesteps: int
    t_max: int
    layers: list[Layer]
    num_classes: int
    meta: dict = field(default_factory=dict)
    input_bits: int = 8

    def source_shape(self, source: int) -> tuple[int, int, int]:
        return tuple(self.input_shape) if source == IMAGE else tuple(self.layers[source].shape)

    def pooled_shape(self, syn: Synapse) -> tuple[int, int, int]:
        c, h, w = self.source_shape(syn.source)
        return c, h // syn.pool, w // syn.pool

    @property
    def signed(self) -> bool:
        """Any layer with signed neurons (a version-2 program)."""
        return any(layer.signed for layer in self.layers)

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    def summary(self) -> str:
        n_w = sum(s.weight.size for layer in self.layers for s in layer.inputs)
        return (f"{self.name}: {len(self.layers)} layers, {n_w:,} weights, input "
                f"{'x'.join(map(str, self.input_shape))}, L={self.levels}, T={self.timesteps}")

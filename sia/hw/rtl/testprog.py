"""Small random SNN programs that exercise every RTL path (image conv, conv stride 1/2,
padding 0/1, 1x1, sum-pool, dense, identity shortcut, integrator), and the small builds
they run on. For tests and benchmarks/rtl_signed_sweep.py."""

import dataclasses

import numpy as np

from sia.hw.params import SIAConfig
from sia.program.bounds import required_bits
from sia.program.format import IMAGE, Layer, Program, Synapse
from sia.program.validate import conv_out, validate


# The small Verilator build the RTL tests share (one build from an empty cache, ~25 s on
# 2 cores): 8 PEs, 8x8 maps, 128 weight rows - enough for the trained digits network,
# whose 32-channel conv2 then takes four tiles - with pool hold, as the builds of the E /
# phase-pair co-simulations issue pooled positions.
SMALL_BUILD = SIAConfig(pes=8, max_width=8, max_height=8, max_channels_in=128,
                        max_timesteps=8, pool_hold=True)

# signed spikes (interface 1.9): the small build with 3-bit net counts (T <= 7 per image;
# one more Verilator build). Its buffers hold 8 maps of 8x8, so a layer reading two signed
# groups (four 0/1 planes) runs 2 steps per launch: signed programs at T = 6 run split
# launches (interface 1.10) too
SIGNED_BUILD = dataclasses.replace(SMALL_BUILD, signed_count_bits=3)

def _layer(prog_layers, name, kind, shape, inputs, rng, program):
    C = shape[0]
    layer = Layer(name=name, kind=kind, shape=shape,
                  bias=rng.integers(-8, 9, C).astype(np.int64),
                  v_init=rng.integers(0, 8, C).astype(np.int64), v_bits=32, acc_bits=32,
                  inputs=inputs,
                  threshold=None)
    if kind == "if":
        fan = max(1, sum(int(np.abs(s.weight.reshape(C, -1)).sum(1).mean()) for s in inputs))
        layer.threshold = np.maximum(1, rng.integers(fan // 6 + 1, fan // 2 + 2, C)).astype(np.int64)
    prog_layers.append(layer)
    need = required_bits(program, layer)
    layer.acc_bits, layer.v_bits = need["acc_bits"], need["v_bits"]
    return layer


def random_program(seed: int = 0, timesteps: int = 3, cin: int = 2, hw: int = 8,
                   chans=(5, 7), classes: int = 4, wbits: int = 4) -> Program:
    rng = np.random.default_rng(seed)
    p = Program(name=f"rtl_rand{seed}", input_shape=(cin, hw, hw), levels=timesteps,
                timesteps=timesteps, t_max=timesteps, layers=[], num_classes=classes)
    lim = (1 << (wbits - 1)) - 1

    def w(*shape):
        return rng.integers(-lim, lim + 1, shape).astype(np.int64)

    c1, c2 = chans
    L = p.layers
    # 0: image conv 3x3 pad 1
    _layer(L, "conv0", "if", (c1, hw, hw), [Synapse(IMAGE, "conv", w(c1, cin, 3, 3), 8, 1, 1)],
           rng, p)
    # 1: conv 3x3 stride 2 pad 1 + 1x1 stride 2 shortcut from image? (no: mixing) -> two spike groups
    h2 = conv_out(hw, 3, 2, 1)
    _layer(L, "conv1", "if", (c2, h2, h2),
           [Synapse(0, "conv", w(c2, c1, 3, 3), wbits, 2, 1),
            Synapse(0, "conv", w(c2, c1, 1, 1), wbits, 2, 0)], rng, p)
    # 2: conv 3x3 pad 1 + identity shortcut
    _layer(L, "conv2", "if", (c2, h2, h2),
           [Synapse(1, "conv", w(c2, c2, 3, 3), wbits, 1, 1),
            Synapse(1, "identity", w(c2), wbits)], rng, p)
    # 3: conv 3x3 pad 0 over pooled source (pool 2 of layer 0)
    h3 = conv_out(hw // 2, 3, 1, 0)
    _layer(L, "conv3", "if", (c1, h3, h3), [Synapse(0, "conv", w(c1, c1, 3, 3), wbits, 1, 0, 2)],
           rng, p)
    # 4: dense integrator over pooled layer 2 + layer 3
    ph = h2 // 2
    _layer(L, "fc", "integrator", (classes, 1, 1),
           [Synapse(2, "dense", w(classes, c2 * ph * ph), 8, pool=2),
            Synapse(3, "dense", w(classes, c1 * h3 * h3), 8)], rng, p)
    return validate(p)



def random_signed_program(seed: int = 0, timesteps: int = 6, **kw) -> Program:
    """`random_program` with signed IF neurons that often fire -1 (`sia.program.random.
    with_signed_neurons`)."""
    from sia.program.random import with_signed_neurons
    return with_signed_neurons(random_program(seed, timesteps=timesteps, **kw), seed)

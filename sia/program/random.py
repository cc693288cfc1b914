"""Random valid programs for property-based tests and RTL co-simulation.

`random_program(seed)` builds a small program that is hardware-legal for the SIAConfig
defaults by construction: kernels <= 3x3, stride <= 2, padding <= 1, maps <= 16x16,
few channels, weights within 8 bits, declared widths within 24 bits. It mixes conv,
dense and identity groups, sum-pools, strides, residual (two-group) layers reading
earlier layers, an image layer first and a dense integrator last. Thresholds are scaled
to the typical current so that layers actually spike.
"""

import numpy as np

from sia import SiaError
from sia.program.bounds import declare_bits
from sia.program.format import IMAGE, Layer, Program, Synapse
from sia.program.validate import conv_out, validate


def _rng(rng_or_seed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _conv_options(shape, out_hw=None, max_hw=16):
    """(pool, kernel, stride, padding) giving out_hw (or any size in 1..max_hw)."""
    _, h, w = shape
    opts = []
    for pool in (1, 2):
        if h % pool or w % pool:
            continue
        ph, pw = h // pool, w // pool
        for k in (1, 2, 3):
            for s in (1, 2):
                for pad in (0, 1):
                    if k > min(ph, pw) + 2 * pad:
                        continue
                    o = (conv_out(ph, k, s, pad), conv_out(pw, k, s, pad))
                    if min(o) >= 1 and max(o) <= max_hw and (out_hw is None or o == out_hw):
                        opts.append((pool, k, s, pad))
    return opts


def _weights(rng, shape, max_abs):
    return rng.integers(-max_abs, max_abs + 1, size=shape, dtype=np.int64)


def _group(rng, program_shape, source, cout, out_hw, max_abs, allow_dense=True):
    """One synapse group from `source` onto cout channels of size out_hw (None: choose)."""
    c, h, w = program_shape(source)
    choices = []
    if out_hw is not None and (c, h, w) == (cout, *out_hw):
        choices.append("identity")
    dense_pools = [p for p in (1, 2, 4) if h % p == 0 and w % p == 0 and c * h * w // p ** 2 <= 256]
    if allow_dense and out_hw in (None, (1, 1)) and dense_pools:
        choices.append("dense")
    convs = _conv_options((c, h, w), out_hw)
    if convs:
        choices.append("conv")
    if not choices:
        return None
    weight = {"conv": 4.0, "identity": 8.0, "dense": 1.0}   # keep most maps spatial
    pr = np.array([weight[c] for c in choices])
    op = choices[rng.choice(len(choices), p=pr / pr.sum())]
    if op == "identity":
        return Synapse(source, "identity", _weights(rng, (cout,), max_abs), 8)
    if op == "dense":
        pool = dense_pools[rng.integers(len(dense_pools))]
        feats = c * (h // pool) * (w // pool)
        return Synapse(source, "dense", _weights(rng, (cout, feats), max_abs), 8, pool=pool)
    pool, k, s, pad = convs[rng.integers(len(convs))]
    kh, kw = (k, k) if rng.random() < 0.8 else (k, rng.integers(1, k + 1))
    if (conv_out(h // pool, kh, s, pad), conv_out(w // pool, kw, s, pad)) != \
            (conv_out(h // pool, k, s, pad), conv_out(w // pool, k, s, pad)):
        kh = kw = k   # a non-square kernel must not change the output size
    return Synapse(source, "conv", _weights(rng, (cout, c, kh, kw), max_abs), 8,
                   stride=s, padding=pad, pool=pool)


def _out_shape(program_shape, syn: Synapse, cout):
    c, h, w = program_shape(syn.source)
    h, w = h // syn.pool, w // syn.pool
    if syn.op == "dense":
        return (cout, 1, 1)
    if syn.op == "identity":
        return (cout, h, w)
    kh, kw = syn.weight.shape[2:]
    return (cout, conv_out(h, kh, syn.stride, syn.padding), conv_out(w, kw, syn.stride, syn.padding))


def _neurons(rng, prog: Program, layer: Layer, rate: float = 0.3):
    """Threshold ~ a fraction of the typical |current|, so the layer spikes."""
    typical = np.zeros(layer.channels)
    for s in layer.inputs:
        x = 128.0 if s.source == IMAGE else rate
        wabs = np.abs(s.weight.reshape(s.weight.shape[0], -1)).sum(1)
        typical += wabs * x * s.pool ** 2 / (3.0 if s.op != "identity" else 1.0)
    th = np.maximum(1, (typical * rng.uniform(0.2, 0.8, layer.channels)).round()).astype(np.int64)
    layer.bias = rng.integers(-1, 2, layer.channels) * (th // 4)
    if layer.kind == "if":
        layer.threshold, layer.v_init = th, th // 2
    else:
        layer.v_init = np.zeros(layer.channels, dtype=np.int64)
    declare_bits(prog, layer)


class _Retry(Exception):
    pass


def random_program(rng_or_seed=0, *, max_layers: int = 5, max_channels: int = 6,
                   max_hw: int = 12, max_classes: int = 4, timesteps: int = 4,
                   max_weight: int = 7, max_image_weight: int = 15,
                   max_in_channels: int = 3) -> Program:
    """A random valid program; all limits are upper bounds (maps <= 16 keep it legal)."""
    if max_hw > 16 or max_channels > 128 or max_in_channels > 16 or max_layers < 2:
        raise SiaError("random_program: need max_hw <= 16, max_channels <= 128, "
                       "max_in_channels <= 16, max_layers >= 2")
    rng = _rng(rng_or_seed)
    for _ in range(100):   # a draw whose last map cannot reach 1x1 legally is redrawn
        try:
            return _draw(rng, max_layers, max_channels, max_hw, max_classes, timesteps,
                         max_weight, max_image_weight, max_in_channels)
        except _Retry:
            pass
    raise SiaError("random_program: no legal program in 100 draws; loosen the limits")


def _draw(rng, max_layers, max_channels, max_hw, max_classes, timesteps, max_weight,
          max_image_weight, max_in_channels) -> Program:
    cin = int(rng.integers(1, max_in_channels + 1))
    hw = (int(rng.integers(3, max_hw + 1)), int(rng.integers(3, max_hw + 1)))
    prog = Program(name="random", input_shape=(cin, *hw), levels=4, timesteps=timesteps,
                   t_max=timesteps, layers=[], num_classes=0)

    def shape_of(src):
        return prog.source_shape(src)

    n_hidden = int(rng.integers(1, max_layers))
    for i in range(n_hidden + 1):
        last = i == n_hidden
        cout = int(rng.integers(2, max_classes + 1)) if last else int(rng.integers(1, max_channels + 1))
        if 0 < i < n_hidden and rng.random() < 0.4:   # keep the width: residual chances
            cout = shape_of(i - 1)[0]
        src = IMAGE if i == 0 else i - 1
        main = _group(rng, shape_of, src, cout, (1, 1) if last else None,
                      max_image_weight if i == 0 else max_weight, allow_dense=i > 0)
        if main is None:
            raise _Retry
        groups = [main]
        out = _out_shape(shape_of, main, cout)
        same = [j for j in range(i) if shape_of(j)[1:] == out[1:] and shape_of(j)[0] == cout]
        if same and rng.random() < 0.6:     # a ResNet-style identity shortcut
            j = same[rng.integers(len(same))]
            groups.append(Synapse(j, "identity", _weights(rng, (cout,), max_weight), 8))
        elif i >= 1 and rng.random() < 0.4:   # a skip group from any earlier layer
            extra = _group(rng, shape_of, int(rng.integers(0, i)), cout, out[1:], max_weight)
            if extra is not None:
                groups.append(extra)
        layer = Layer(name=f"l{i}", kind="integrator" if last else "if", shape=out,
                      bias=np.zeros(cout, np.int64), v_init=np.zeros(cout, np.int64),
                      v_bits=1, acc_bits=1, inputs=groups)
        prog.layers.append(layer)
        _neurons(rng, prog, layer)
    prog.num_classes = prog.layers[-1].channels
    return validate(prog)


def with_signed_neurons(program: Program, seed: int = 0) -> Program:
    """The program with signed IF neurons, tuned so that -1 spikes are common (tests of
    every backend): each IF layer starts at twice its threshold (it fires +1 at once
    unless its current is below -theta) and its bias leans negative (its membranes then
    fall below 0 and take spikes back; image layers too, whose current is the same every
    step). Widths re-declared (`sia.convert.signed.signed_program`)."""
    import copy

    from sia.convert.signed import signed_program
    program = copy.deepcopy(program)
    rng = np.random.default_rng(seed + 1000)
    for layer in program.layers:
        if layer.kind == "if":
            th = layer.threshold
            layer.v_init = (2 * th).astype(np.int64)
            layer.bias = -rng.integers(0, th + 2).astype(np.int64)
    return signed_program(program)

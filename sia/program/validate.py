"""Validation of a Program: shapes, sources, ranges and declared bit-widths.

Every failure is a SiaError with one line naming the layer and the problem.
"""

import numpy as np

from sia import SiaError
from sia.program.bounds import T_MAX_LIMIT, required_bits
from sia.program.format import IMAGE, KINDS, OPS, READ_VERSIONS, Program, Synapse


def conv_out(size: int, k: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - k) // stride + 1


def _in_range(a: np.ndarray, bits: int) -> bool:
    lim = 1 << (bits - 1)
    return a.size == 0 or (int(a.min()) >= -lim and int(a.max()) <= lim - 1)


def _check_synapse(p: Program, i: int, j: int, s: Synapse, out_shape):
    where = f"layer {i} ({p.layers[i].name}) input {j}"
    if s.op not in OPS:
        raise SiaError(f"{where}: unknown op {s.op!r} (expected one of {', '.join(OPS)})")
    if not (s.source == IMAGE or 0 <= s.source < i):
        raise SiaError(f"{where}: source {s.source} must be -1 (image) or an earlier layer")
    if s.pool < 1 or s.stride < 1 or s.padding < 0:
        raise SiaError(f"{where}: pool/stride must be >= 1 and padding >= 0")
    c, h, w = p.source_shape(s.source)
    if h % s.pool or w % s.pool:
        raise SiaError(f"{where}: pool {s.pool} does not divide the source map {h}x{w}")
    c, h, w = p.pooled_shape(s)
    co, ho, wo = out_shape
    if not np.issubdtype(s.weight.dtype, np.integer):
        raise SiaError(f"{where}: weights must be integers, got {s.weight.dtype}")
    if s.op == "conv":
        if s.weight.ndim != 4 or s.weight.shape[:2] != (co, c):
            raise SiaError(f"{where}: conv weight shape {s.weight.shape} != ({co}, {c}, kh, kw)")
        kh, kw = s.weight.shape[2:]
        if (conv_out(h, kh, s.stride, s.padding), conv_out(w, kw, s.stride, s.padding)) != (ho, wo):
            raise SiaError(f"{where}: conv of {h}x{w} (k={kh}x{kw}, stride {s.stride}, padding "
                           f"{s.padding}) does not give the layer's {ho}x{wo}")
    elif s.op == "dense":
        if (ho, wo) != (1, 1) or s.weight.shape != (co, c * h * w):
            raise SiaError(f"{where}: dense weight shape {s.weight.shape} != ({co}, {c * h * w}) "
                           f"or layer is not Cx1x1")
    else:
        if (c, h, w) != tuple(out_shape) or s.weight.shape != (co,):
            raise SiaError(f"{where}: identity needs source {c}x{h}x{w} == layer shape "
                           f"and weight shape ({co},)")
    if not 2 <= s.weight_bits <= 32:
        raise SiaError(f"{where}: weight_bits={s.weight_bits} outside 2..32")
    if not _in_range(s.weight, s.weight_bits):
        raise SiaError(f"{where}: weights exceed the declared {s.weight_bits}-bit range")



def validate(p: Program) -> Program:
    if p.levels < 1 or p.timesteps < 1 or p.t_max < p.timesteps:
        raise SiaError(f"program {p.name}: need levels >= 1 and 1 <= timesteps <= t_max")
    if p.t_max > T_MAX_LIMIT:
        raise SiaError(f"program {p.name}: t_max={p.t_max}: bit-widths are declared for "
                       f"at most {T_MAX_LIMIT} steps")
    if len(p.input_shape) != 3 or min(p.input_shape) < 1 or p.input_bits != 8:
        raise SiaError(f"program {p.name}: input must be 8-bit C x H x W, got {p.input_shape}")
    if not p.layers:
        raise SiaError(f"program {p.name}: no layers")
    names = set()
    for i, layer in enumerate(p.layers):
        where = f"layer {i} ({layer.name})"
        if layer.name in names:
            raise SiaError(f"{where}: duplicate layer name")
        names.add(layer.name)
        if layer.kind not in KINDS:
            raise SiaError(f"{where}: unknown kind {layer.kind!r}")
        if layer.kind == "integrator" and i != len(p.layers) - 1:
            raise SiaError(f"{where}: only the last layer may be a non-spiking integrator")
        if i == len(p.layers) - 1 and layer.kind != "integrator":
            raise SiaError(f"{where}: the last layer must be an integrator (class = argmax V)")
        if len(layer.shape) != 3 or min(layer.shape) < 1:
            raise SiaError(f"{where}: bad shape {layer.shape}")
        co = layer.shape[0]
        arrays = {"bias": layer.bias, "v_init": layer.v_init}
        if layer.kind == "if":
            arrays["threshold"] = layer.threshold
        for key, a in arrays.items():
            if a is None or a.shape != (co,) or not np.issubdtype(a.dtype, np.integer):
                raise SiaError(f"{where}: {key} must be an integer vector of length {co}")
        if layer.kind == "if" and int(layer.threshold.min()) < 1:
            raise SiaError(f"{where}: thresholds must be >= 1")
        if layer.signed and layer.kind != "if":
            raise SiaError(f"{where}: only IF layers can have signed neurons")
        if not layer.inputs:
            raise SiaError(f"{where}: no inputs")
        for j, s in enumerate(layer.inputs):
            _check_synapse(p, i, j, s, layer.shape)
        for key in ("acc_bits", "v_bits"):   # stored as int64 (sia/program/io.py)
            if not 1 <= getattr(layer, key) <= 64:   # 1: a layer whose values are all 0 or -1
                raise SiaError(f"{where}: {key}={getattr(layer, key)} outside 1..64")
        need = required_bits(p, layer)
        for key in ("acc_bits", "v_bits"):
            if getattr(layer, key) < need[key]:
                raise SiaError(f"{where}: declared {key}={getattr(layer, key)} could overflow; "
                               f"worst case over t <= {p.t_max} needs {need[key]}")
    if p.output.channels != p.num_classes:
        raise SiaError(f"program {p.name}: last layer has {p.output.channels} neurons, "
                       f"num_classes is {p.num_classes}")
    return p


def check_version(version) -> None:
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise SiaError(f"program format version {version!r} is not supported "
                       f"(this sia reads versions {', '.join(map(str, READ_VERSIONS))})")

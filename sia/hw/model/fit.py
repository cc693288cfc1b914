"""Does a program fit the accelerator? One-line SiaErrors for anything the hardware
cannot hold (docs/architecture.md, "Parameters"): the model refuses exactly what the
RTL would, so a program that runs on the model runs on the board."""

import numpy as np

from sia import SiaError
from sia.hw.params import SIAConfig
from sia.hw.regmap import MAX_GROUPS
from sia.hw.planes import PAIR, check_signed, hardware_view, plane_weight
from sia.program.format import IMAGE, Layer, Program, bits_signed


def weight_rows(program: Program, layer: Layer) -> int:
    """Weight-memory rows per PE: C_in per conv group, C*Hp*Wp per dense group, 1 per
    identity; a -1 spike plane reads its +1 plane's rows (`sia.hw.planes`)."""
    rows = 0
    for s in layer.inputs:
        if s.plane < 0:
            continue
        c, h, w = program.pooled_shape(s)
        rows += {"conv": c, "dense": c * h * w, "identity": 1}[s.op]
    return rows


def is_image_layer(layer: Layer) -> bool:
    return layer.inputs[0].source == IMAGE


def membrane_words(shape, kind: str, image_input: bool) -> int:
    """Membrane words per bank a layer needs: one per output position; an image
    if-layer runs all T steps on one output row at a time, so it needs only one row.
    (Also applied to a program image's manifest, sia/deploy/image.py.)"""
    _, h, w = shape
    return w if image_input and kind == "if" else h * w


def membrane_positions(layer: Layer) -> int:
    return membrane_words(layer.shape, layer.kind, is_image_layer(layer))


def psum_bits(layer: Layer, program: Program) -> int:
    """Width the psum row buffer needs: synaptic sums only (the bias is added in the
    aggregation core), so a large bias cannot hide a wider partial sum."""
    from sia.program.bounds import input_max
    lo = hi = np.zeros(layer.channels, dtype=np.int64)
    for s in layer.inputs:
        w = plane_weight(s).astype(np.int64).reshape(s.weight.shape[0], -1)
        # a spike plane's pooled element is in [0, p^2] (`sia.hw.planes`)
        x = s.pool ** 2 if s.plane else input_max(program, s.source, s.pool)
        if s.plane == PAIR:   # a sign pair's events add w and -w
            w = np.concatenate([w, -w], 1)
        hi = hi + np.clip(w, 0, None).sum(1) * x
        lo = lo + np.clip(w, None, 0).sum(1) * x
    return bits_signed(int(lo.min()), int(hi.max()))


# what a user can do about a program that needs a bigger build than the parameter set
BIGGER = "; pass a parameter set that has room (--config FILE; configs/sia/resnet18.json fits ResNet-18)"


def check_membranes(program: Program, index: int, config: SIAConfig) -> None:
    """Refuse layer `index` if its membranes do not fit one ping-pong bank of
    membrane_positions words (the RTL's packet check refuses it alike, error code 2);
    the model, the image packer and the twin share this rule."""
    layer = program.layers[index]
    need = membrane_positions(layer)
    if need > config.membrane_positions:
        _, h, w = layer.shape
        raise SiaError(f"layer {index} ({layer.name}): {h}x{w} membranes need {need} words "
                       f"per bank > membrane_positions={config.membrane_positions}{BIGGER}")


def check_fits(program: Program, config: SIAConfig, T: int) -> None:
    check_signed(program, config, T)
    program = hardware_view(program, config)
    if not 1 <= T <= min(config.max_timesteps, program.t_max):
        raise SiaError(f"T={T} outside 1..{min(config.max_timesteps, program.t_max)} "
                       f"(max_timesteps={config.max_timesteps}, program t_max={program.t_max})")
    c, h, w = program.input_shape
    if h > config.max_height or w > config.max_width:
        raise SiaError(f"input map {h}x{w} exceeds the {config.max_height}x{config.max_width} maximum")
    for i, layer in enumerate(program.layers):
        where = f"layer {i} ({layer.name})"
        _, h, w = layer.shape
        if h > config.max_height or w > config.max_width:
            raise SiaError(f"{where}: map {h}x{w} exceeds the {config.max_height}x"
                           f"{config.max_width} maximum")
        check_membranes(program, i, config)
        if len(layer.inputs) > MAX_GROUPS:
            raise SiaError(f"{where}: {len(layer.inputs)} synapse groups > {MAX_GROUPS}")
        if len({s.source == IMAGE for s in layer.inputs}) > 1:
            raise SiaError(f"{where}: mixes image and spike inputs; the core runs one or the other")
        rows = weight_rows(program, layer)
        if rows > config.max_channels_in:
            kind = "dense input" if any(s.op == "dense" for s in layer.inputs) else "input channels"
            raise SiaError(f"{where}: {kind} need {rows} weight rows > max_channels_in="
                           f"{config.max_channels_in}{BIGGER}")
        for j, s in enumerate(layer.inputs):
            kh, kw = s.kernel
            if kh > 3 or kw > 3:
                raise SiaError(f"{where} input {j}: kernel {kh}x{kw} exceeds the PEs' 3x3")
            if s.stride > 2 or s.padding > 1:
                raise SiaError(f"{where} input {j}: stride {s.stride} / padding {s.padding} "
                               f"unsupported (stride <= 2, padding <= 1)")
            if s.weight_bits > config.weight_bits:
                raise SiaError(f"{where} input {j}: {s.weight_bits}-bit {s.op} weights exceed "
                               f"weight_bits={config.weight_bits}{BIGGER}")
        acc = max(layer.acc_bits, psum_bits(layer, program))
        if acc > config.acc_bits:
            raise SiaError(f"{where}: needs {acc}-bit partial sums > acc_bits={config.acc_bits}{BIGGER}")
        if layer.v_bits > config.v_bits:
            raise SiaError(f"{where}: declares {layer.v_bits}-bit membranes > v_bits={config.v_bits}{BIGGER}")

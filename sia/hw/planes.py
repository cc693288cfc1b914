"""Signed spikes on the SIA: a signed source is two spike planes.

A signed IF layer's spikes s are in {-1, 0, +1}. The SIA keeps its spike buffers, streams
and dispatcher one bit per channel and position: a synapse group whose source is signed
runs as two groups of the same geometry, the +1 plane `[s == +1]` and the -1 plane
`[s == -1]`, whose events add -w (the group's `neg` bit; both share one set of weight
rows). Sum-pooling and the synaptic sums are linear, so

    W * pool(s) = W * pool([s == +1]) - W * pool([s == -1])

and the two groups' currents add up to the signed group's, exactly. The cost is the -1
plane's scan (its words are scanned like any group's) and its events (each -1 spike is
one event, counted as the accumulates it does); `docs/architecture.md`, "Signed neurons".

**Sign pairs** (interface 1.12): where a position's channels fit one word and the group
is scanned word by word (no pool, no phase pair or quad; `sign_pair`), the two planes
are one group instead, its words interleaved per position (+1 word, -1 word): the
dispatcher reads both as one issue unit and issues the +1 events, then the -1 events
(one sign per cycle), so a unit costs max(1, ceil(n+ / E) + ceil(n- / E)) where the two
planes cost max(1, ceil(n+ / E)) + max(1, ceil(n- / E)): the sparse -1 word rides along.

`hardware_view(program, config)` is the program as the SIA runs it: the same layers (their
`signed` flag drives the aggregation core), each signed-source group replaced by its sign
pair (`Synapse.plane` = 2) or its two planes (+1 / -1), the weight arrays shared, not
negated. Unsigned programs are returned as they are. The golden simulator runs the
program itself; the cycle model, the packet packer and the RTL see the view.
"""

import dataclasses

import numpy as np

from sia import SiaError
from sia.program.format import IMAGE, Program, Synapse


def split(syn: Synapse) -> list[Synapse]:
    """A signed source's group as its two planes, +1 first (the -1 plane reuses its rows)."""
    return [dataclasses.replace(syn, plane=1), dataclasses.replace(syn, plane=-1)]


PAIR = 2    # Synapse.plane of a sign pair: both signs, one group (`sign_pair`)


def sign_pair(syn: Synapse, program: Program, layer_index: int, config) -> bool:
    """Does this group of a signed source run as a sign pair on `config` (interface
    1.12)? On builds with signed neurons, a group whose source position fits one 64-bit
    word (an identity group: the tile's slice) and that the dispatcher scans word by word:
    no pool, not a phase pair or quad (their units already pair words of other
    positions). The identity the aggregation core adds while it drains is one on any
    such build (interface 1.13: the drain reads both words of a position)."""
    from sia.hw import regmap       # (regmap imports this module)
    if not (config is not None and config.signed_count_bits) or syn.pool != 1:
        return False
    layer = program.layers[layer_index]
    j = regmap.drain_group(layer, config)
    if j is not None and layer.inputs[j] is syn:
        return True
    shape = program.source_shape(syn.source)
    if regmap.phase_pair(syn, shape, config):
        return False
    return syn.op == "identity" or shape[0] <= config.stream_bits


def hardware_view(program: Program, config=None) -> Program:
    """The program with every group of a signed source as its sign pair (`sign_pair` on
    `config`) or split into its two planes (any group, with no config)."""
    signed = {i for i, layer in enumerate(program.layers) if layer.signed}

    def whole(s):   # a group of a signed source not yet split (a view stays as it is)
        return s.source != IMAGE and s.source in signed and not s.plane

    def view(i, s):
        if not whole(s):
            return [s]
        if sign_pair(s, program, i, config):
            return [dataclasses.replace(s, plane=PAIR)]
        return split(s)

    if not any(whole(s) for layer in program.layers for s in layer.inputs):
        return program
    layers = [dataclasses.replace(layer, inputs=[p for s in layer.inputs for p in view(i, s)])
              for i, layer in enumerate(program.layers)]
    return dataclasses.replace(program, layers=layers)


def plane_map(syn: Synapse, x):
    """The spike map a group's events come from: the source's map itself (plane 0; a
    sign pair: the signed map, its +1 and -1 spikes in two words) or the 0/1 map of its
    +1 or -1 spikes (tensor or array alike)."""
    if syn.plane in (0, PAIR):
        return x
    m = x == syn.plane
    return m.to(x.dtype) if hasattr(m, "to") else m.astype(np.asarray(x).dtype)


def plane_weight(syn: Synapse) -> np.ndarray:
    """The weights a group's events add: -w on the -1 plane."""
    return -syn.weight if syn.plane < 0 else syn.weight


def unscanned_steps(neg: bool, steps: int, period: int, resume: bool = False) -> list[int]:
    """The steps of a launch at which the dispatcher skips a group (interface 1.11): a -1
    plane (`neg`) at each image's first step (steps 0, period, 2*period, ... of a packed
    launch; none in a resumed launch, whose first step is not an image's). Its map is
    empty there by the semantics: a -1 spike needs a net count c != 0, and c starts at 0
    (`docs/semantics.md`), so nothing is lost and the plane's scan, one cycle per empty
    unit, is saved."""
    return [] if not neg or resume else list(range(0, steps, period))


def check_signed(program: Program, config, T: int, where: str = "") -> None:
    """Refuse signed neurons on a build without them, or for more steps per image than
    their net spike counts hold (`signed_count_bits`); the RTL's packet check alike."""
    if not program.signed:
        return
    name = next(layer.name for layer in program.layers if layer.signed)
    if not config.signed_count_bits:
        raise SiaError(f"{where}layer {name}: signed neurons need a build with "
                       "signed_count_bits > 0 (configs/sia/*_signed.json); this one refuses them")
    tmax = (1 << config.signed_count_bits) - 1
    if T > tmax:
        raise SiaError(f"{where}layer {name}: signed neurons count at most {tmax} spikes "
                       f"(signed_count_bits={config.signed_count_bits}): T={T} > {tmax}")

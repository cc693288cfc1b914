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

`hardware_view(program)` is the program as the SIA runs it: the same layers (their
`signed` flag drives the aggregation core), each signed-source group replaced by its two
planes (`Synapse.plane` = +1 / -1, the weight arrays shared, not negated). Unsigned
programs are returned as they are. The golden simulator runs the program itself; the
cycle model, the packet packer and the RTL see the view.
"""

import dataclasses

import numpy as np

from sia import SiaError
from sia.program.format import IMAGE, Program, Synapse


def split(syn: Synapse) -> list[Synapse]:
    """A signed source's group as its two planes, +1 first (the -1 plane reuses its rows)."""
    return [dataclasses.replace(syn, plane=1), dataclasses.replace(syn, plane=-1)]


def hardware_view(program: Program) -> Program:
    """The program with every group of a signed source split into its two planes."""
    signed = {i for i, layer in enumerate(program.layers) if layer.signed}

    def whole(s):   # a group of a signed source not yet split (a view stays as it is)
        return s.source != IMAGE and s.source in signed and not s.plane

    if not any(whole(s) for layer in program.layers for s in layer.inputs):
        return program
    layers = [dataclasses.replace(layer, inputs=[p for s in layer.inputs
                                                 for p in (split(s) if whole(s) else [s])])
              for layer in program.layers]
    return dataclasses.replace(program, layers=layers)


def plane_map(syn: Synapse, x):
    """The spike map a group's events come from: the source's map itself (plane 0) or the
    0/1 map of its +1 or -1 spikes (tensor or array alike)."""
    if not syn.plane:
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

"""The cycle formula of docs/architecture.md, vectorised over spike maps.

One launch = one (layer, 64-channel tile). Every tile of a layer sees the same input
events, so the dispatch cycles of a launch depend on the layer only; tiles differ
only in how many PEs hold a real output channel (the last tile may be partial).
Timing constants are read from sia.hw.timing at call time, so the model follows the RTL.
"""

import torch

from sia.hw import timing
from sia.hw.model.fit import is_image_layer, weight_rows
from sia.hw.params import SIAConfig
from sia.program.format import IMAGE, Layer, Program, Synapse
from sia.snn.synapse import fanout_map

# Phases of a launch; they partition its cycles.
PHASES = ("weight_load", "param_load", "stream_in", "accumulate", "dispatch_empty",
          "aggregate", "stall", "stream_out")
COMPUTE = ("accumulate", "dispatch_empty", "aggregate")   # + the in-loop stalls, see compute_cycles

_POPCOUNT = torch.tensor([bin(v).count("1") for v in range(256)], dtype=torch.int32)


def ceil_div(a, b):
    return -(-a // b)


def tiles(layer: Layer, config: SIAConfig) -> int:
    return ceil_div(layer.channels, config.pes)


def active_pes(layer: Layer, tile: int, config: SIAConfig) -> int:
    return min(config.pes, layer.channels - tile * config.pes)


def first_rows(syn: Synapse, hp: int, h_out: int) -> list[int | None]:
    """lo_g(r): the first output row pooled source row r reaches (None: reaches none).
    A dense group is one position (row 0 -> output row 0)."""
    if syn.op == "dense":
        return [0]
    if syn.op == "identity":
        return list(range(hp))
    kh, s, pad = syn.kernel[0], syn.stride, syn.padding
    out = []
    for r in range(hp):
        lo = max(0, ceil_div(r + pad - kh + 1, s))
        hi = min(h_out - 1, (r + pad) // s)
        out.append(lo if lo <= hi else None)
    return out


def row_mask(syn: Synapse, hp: int, h_out: int) -> torch.Tensor:
    return torch.tensor([lo is not None for lo in first_rows(syn, hp, h_out)])


def source_counts(source: int, x: torch.Tensor) -> torch.Tensor:
    """Events per source position, summed over channels: an image (uint8 [B,C,H,W]) counts
    set bits (bit-serial) -> [1,B,H,W]; spikes [T,B,C,H,W] -> [T,B,H,W]."""
    if source == IMAGE:
        return _POPCOUNT[x.long()].sum(-3, dtype=torch.int32)[None]
    return x.sum(-3, dtype=torch.int32)


def pooled_events(syn: Synapse, counts: torch.Tensor) -> torch.Tensor:
    """n per dispatched position [T',B,Hp,Wp]: a p x p pool gathers its p^2 positions;
    a dense group is one position holding every event of the pooled source."""
    p = syn.pool
    if p > 1:
        *lead, h, w = counts.shape
        counts = counts.reshape(*lead, h // p, p, w // p, p).sum((-3, -1))
    if syn.op == "dense":
        counts = counts.sum((-2, -1), keepdim=True)
    return counts


def taps_map(syn: Synapse, hp: int, wp: int) -> torch.Tensor:
    """Valid taps (outputs reached) per dispatched position; 1 for dense / identity."""
    if syn.op != "conv":
        return torch.ones(1, 1, dtype=torch.int64) if syn.op == "dense" \
            else torch.ones(hp, wp, dtype=torch.int64)
    return fanout_map(syn, (hp, wp), 1).round().to(torch.int64)


def dispatch(n: torch.Tensor, mask: torch.Tensor, E: int) -> dict[str, torch.Tensor]:
    """Per [T',B]: cycles with events, empty-position cycles, dispatched events."""
    m = mask[:, None].to(n.dtype)
    return {"accumulate": (ceil_div(n, E) * m).sum((-2, -1), dtype=torch.int64),
            "dispatch_empty": ((n == 0).to(n.dtype) * m).sum((-2, -1), dtype=torch.int64),
            "events": (n * m).sum((-2, -1), dtype=torch.int64)}


def static_phases(program: Program, i: int, config: SIAConfig, T: int) -> dict[str, int]:
    """The data-independent cycles of one launch of layer i (dispatch phases are 0)."""
    layer = program.layers[i]
    P, sb = config.pes, config.stream_bits
    _, ho, wo = layer.shape
    image = is_image_layer(layer)
    stream_in = 0
    for s in layer.inputs:
        c, h, w = program.source_shape(s.source)
        stream_in += h * w * ceil_div(8 * c, sb) if image else T * h * w * ceil_div(c, sb)
    if layer.kind == "if":
        stream_out = T * ho * wo * ceil_div(P, sb)
    else:
        stream_out = ho * wo * ceil_div(P * config.v_bits, sb)
    loop_stall = ho * timing.C_ROW if image else T * (timing.C_STEP + ho * timing.C_ROW)
    return {"weight_load": ceil_div(weight_rows(program, layer) * P * config.taps * config.weight_bits, sb),
            "param_load": ceil_div(P * 3 * config.v_bits, sb),
            "stream_in": stream_in, "accumulate": 0, "dispatch_empty": 0,
            "aggregate": T * ho * wo, "stall": timing.C_LAUNCH + loop_stall,
            "stream_out": stream_out}


def compute_cycles(phases: dict[str, int], program: Program, i: int, T: int) -> int:
    """Cycles between stream-in and stream-out: dispatch + drain + in-loop stalls
    (the denominator of PE utilisation)."""
    layer = program.layers[i]
    loop_stall = phases["stall"] - timing.C_LAUNCH
    return sum(phases[k] for k in COMPUTE) + loop_stall


def memory_static(program: Program, i: int, config: SIAConfig, T: int) -> dict[str, int]:
    """Data-independent accesses of one launch, in each memory's own word (see docs)."""
    layer = program.layers[i]
    _, ho, wo = layer.shape
    image = is_image_layer(layer)
    pos = ho * wo
    spike_in_reads = 0
    for s in layer.inputs:
        c, h, w = program.source_shape(s.source)
        words = ceil_div(8 * c, config.stream_bits) if image else ceil_div(c, config.stream_bits)
        hp, wp = h // s.pool, w // s.pool
        rows = int(row_mask(s, hp, ho).sum())
        per_step = h * w if s.op == "dense" else rows * wp * s.pool ** 2
        spike_in_reads += (1 if image else T) * per_step * words
    reads = [sum(pos for t in range(1, T) if t % 2 == b) for b in (0, 1)]   # t = 0 reads v_init
    writes = [sum(pos for t in range(T) if (t + 1) % 2 == b) for b in (0, 1)]
    if layer.kind == "integrator":
        reads[T % 2] += pos   # the final membranes are streamed out
    out = {"weight_writes": weight_rows(program, layer) * config.pes,
           "spike_in_writes": static_phases(program, i, config, T)["stream_in"],
           "spike_in_reads": spike_in_reads, "psum_drain_reads": T * pos,
           "membrane_a_reads": reads[0], "membrane_a_writes": writes[0],
           "membrane_b_reads": reads[1], "membrane_b_writes": writes[1],
           "spike_out_writes": T * pos if layer.kind == "if" else 0,
           "spike_out_reads": T * pos if layer.kind == "if" else 0}
    return out

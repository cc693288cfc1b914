"""The RTL's cycle formula (docs/architecture.md, "Cycle model"): the exact cycle count
of one launch with unstalled streams. The co-simulation checks CYCLES against it."""

import numpy as np

from sia.hw import regmap, timing
from sia.hw.params import SIAConfig
from sia.program.format import Program


def _popcounts(words: np.ndarray) -> np.ndarray:
    w = words.astype(np.uint64)
    return np.unpackbits(w.view(np.uint8).reshape(-1, 8), axis=1).sum(1).astype(np.int64).reshape(words.shape)


def launch_cycles(program: Program, li: int, tile: int, inputs: dict, cfg: SIAConfig,
                  T: int | None = None, detail: bool = False, keep: bool = False):
    """keep: a resident-weight launch (no weight / neuron-param beats)."""
    T = program.timesteps if T is None else T
    info = regmap.tile_info(program, li, tile, cfg, T)
    groups = regmap._groups(program, li, tile, cfg, T)[0]
    packet = regmap.pack_tile(program, li, tile, inputs, cfg, T)
    sw = np.array(packet[info.header_beats + info.weight_beats + info.neuron_beats:],
                  dtype=np.uint64)
    E = cfg.events_per_cycle
    cost = np.maximum(1, -(-_popcounts(sw) // E)) if len(sw) else np.zeros(0, np.int64)
    H, W = info.out_shape
    steps = 1 if info.image else T
    disp = 0
    per_t = []
    for t in range(steps):
        before = disp
        for g in groups:
            C, Hs, Ws = g["_src"]
            p, nw = g["pool"], g["nw"]
            base = g["base"] + t * g["tstride"]
            if g["op"] == regmap.OPS["dense"]:
                r_end_last = g["hp"]
            elif g["op"] == regmap.OPS["identity"]:
                r_end_last = min(H, g["hp"])
            else:
                r_end_last = min(max((H - 1) * g["stride"] + g["reach"], 0), g["hp"])
            # pooled rows [0, r_end_last) are scanned, all their words
            n = r_end_last * p * Ws * nw
            disp += int(cost[base:base + n].sum())
        per_t.append(disp - before)
    # the input maps stream in while computing: timestep t starts (after its C_STEP)
    # once need_t beats are in: the last group's timestep t, image layers everything
    last = groups[-1]
    clock = 0       # cycles since the first input-map beat could be taken
    for t in range(steps):
        need = info.spike_beats if info.image else last["base"] + (t + 1) * last["tstride"]
        clock = max(clock, need) + timing.C_STEP
        clock += per_t[t] + H * (timing.C_ROW + (T * W if info.image else W))
    compute = disp + timing.C_ROW * H * steps
    if info.image:
        compute += timing.C_STEP + H * T * W
    else:
        compute += T * (timing.C_STEP + H * W)
    loads = 0 if keep else info.weight_beats + info.neuron_beats
    out = info.out_beats if info.kind == "integrator" else timing.C_OUT_TAIL
    total = timing.C_LAUNCH + info.header_beats + loads + clock + out
    if detail:
        return {"total": total, "dispatch": disp, "compute": compute,
                "stream_wait": clock - compute}
    return total

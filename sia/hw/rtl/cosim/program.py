"""Run a whole SNN program through the RTL (Verilator), layer by layer and tile by tile,
and compare against the golden simulator."""


import numpy as np

from sia import SiaError
from sia.hw import regmap
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim import harness
from sia.program.format import IMAGE, Program


def golden_traces(program: Program, image: np.ndarray, T: int):
    from sia.snn import simulate
    r = simulate(program, image[None], T=T, record=True)
    out = {}
    for layer in program.layers:
        tr = r.traces[layer.name]
        if layer.kind == "if":
            out[layer.name] = tr["spikes"][:, 0].numpy()
        else:
            out[layer.name] = tr["v"][-1, 0].numpy()
    return out, r


def run_program(program: Program, image: np.ndarray, cfg: SIAConfig, T: int | None = None,
                seed: int = 1, p_valid: float = 1.0, p_ready: float = 1.0,
                feed_golden: bool = False, check: bool = True, with_model: bool = True):
    """Returns {"outputs": {layer: array}, "launches": [...], "sim": {...}}.
    Each layer reads the RTL's own outputs of earlier layers (feed_golden=False)."""
    from sia.hw.rtl.cycles import launch_cycles
    T = program.timesteps if T is None else T
    gold, gres = golden_traces(program, image, T) if check or feed_golden else ({}, None)
    ins = {IMAGE: image}
    outs, launches = {}, []
    sim_cycles, sim_secs = 0, 0.0
    for li, layer in enumerate(program.layers):
        nt = regmap.num_tiles(program, li, cfg)
        packets = [regmap.pack_tile(program, li, k, ins, cfg, T) for k in range(nt)]
        res, st = harness.run(cfg, packets, seed=seed + li, p_valid=p_valid, p_ready=p_ready)
        sim_cycles += st["cycles"]
        sim_secs += st["seconds"]
        parts = []
        for k, r in enumerate(res):
            if r.status & regmap.STATUS_ERROR:
                raise SiaError(f"layer {li} tile {k}: RTL error code {(r.status >> 8) & 0xFF}")
            parts.append(regmap.unpack_output(program, li, k, r.beats, cfg, T))
            exp = launch_cycles(program, li, k, ins, cfg, T)
            rec = {"layer": li, "tile": k, "cycles": r.cycles, "expected": exp,
                   "sops": r.sops, "image_ops": r.image_ops}
            if with_model:   # the cycle-level model (sia.hw.model), same inputs
                from sia.hw.model import launch_cycles as model_cycles
                rec["model"] = model_cycles(program, li, k, ins, T=T, config=cfg)["total"]
            launches.append(rec)
        full = np.concatenate(parts, axis=1 if layer.kind == "if" else 0)
        outs[layer.name] = full
        if check:
            g = gold[layer.name]
            if not np.array_equal(full.astype(np.int64), g.astype(np.int64)):
                bad = np.argwhere(full.astype(np.int64) != g.astype(np.int64))
                raise SiaError(f"layer {li} ({layer.name}): RTL != golden at {len(bad)} places, "
                               f"first {bad[:5].tolist()}")
        ins[li] = gold[layer.name] if (feed_golden and layer.kind == "if") else full
    return {"outputs": outs, "launches": launches, "golden": gres,
            "sim": {"cycles": sim_cycles, "seconds": sim_secs}}

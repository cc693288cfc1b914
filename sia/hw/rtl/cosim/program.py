"""Run a whole SNN program through the RTL (Verilator), layer by layer and tile by tile,
and compare against the golden simulator."""

import os

import numpy as np

from sia import SiaError
from sia.hw import regmap
from sia.hw.params import SIAConfig
from sia.hw.rtl.cosim import harness
from sia.program.format import IMAGE, Program


def _steps(inputs: dict, t0: int, t1: int) -> dict:
    """One image's launch inputs restricted to steps [t0, t1) (the image: all of it)."""
    return {s: v if s == IMAGE else v[t0:t1] for s, v in inputs.items()}


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
                feed_golden: bool = False, check: bool = True, with_model: bool = True,
                jobs: int | None = None):
    """One image: returns {"outputs": {layer: array}, "launches": [...], "sim": {...}}.
    With jobs=1 each layer reads the RTL's own outputs of earlier layers (feed_golden=False);
    see run_images for jobs > 1."""
    r = run_images(program, image[None], cfg, T, seed, p_valid, p_ready, feed_golden, check,
                   with_model, jobs=jobs)
    return {"outputs": r["outputs"][0], "launches": r["launches"], "golden": r["golden"][0],
            "sim": r["sim"]}


def run_images(program: Program, images: np.ndarray, cfg: SIAConfig, T: int | None = None,
               seed: int = 1, p_valid: float = 1.0, p_ready: float = 1.0,
               feed_golden: bool = False, check: bool = True, with_model: bool = True,
               keep: bool = True, launch_images: int = 1, jobs: int | None = None):
    """A batch of images [B, C, H, W], launch-major: for each layer, for each tile, the B
    images one after the other; with keep=True only the first of the tile's launches
    sends its weights and neuron params (the others are resident-weight launches).
    launch_images: images per launch where the layer allows packing (`regmap.launch_images`;
    0 = as many as the buffers hold); a packed launch's record lists its images.
    jobs: simulator processes (default: one per CPU core, at most 2). With check and
    jobs > 1 every layer's launches are simulated at once from the golden inputs (see
    below) and split between the processes (`harness.shards`); either way the results
    and cycle counts are the same, only the wall time differs.
    Returns {"outputs": [per image {layer: array}], "launches": [...], "golden": [...],
    "sim": {...}}; every launch record holds the RTL's CYCLES, the formula's count (and
    its phases, "formula") and the model's count for the same launch."""
    from sia.hw.rtl.cycles import launch_cycles
    T = program.timesteps if T is None else T
    B = images.shape[0]
    golds = [golden_traces(program, images[b], T) if check or feed_golden else ({}, None)
             for b in range(B)]
    ins = [{IMAGE: images[b]} for b in range(B)]
    outs = [{} for _ in range(B)]
    launches = []
    sim = {"cycles": 0, "seconds": 0.0, "wall": 0.0}
    jobs = jobs or min(2, os.cpu_count() or 1)

    def plan(li):
        """The layer's launches: tile, images of the launch (a launch's inputs are always
        a list - one image or a packed launch - which regmap, the formula and the model
        all take), its steps (a layer split over launches, `regmap.launch_chunks`: one
        image's chunks one after the other, the later ones resumed), whether its weights
        are resident, its packet and its cycle formula (which also balances the
        simulator processes)."""
        nt = regmap.num_tiles(program, li, cfg)
        chunks = regmap.launch_chunks(program, li, cfg, T)
        kl = regmap.launch_images(program, li, cfg, T, None if launch_images == 0 else launch_images)
        out = []
        for k in range(nt):
            for b in range(0, B, kl):
                bs = list(range(b, min(B, b + kl)))
                for j, (t0, t1) in enumerate(chunks):
                    x = [_steps(ins[i], t0, t1) for i in bs]
                    kept = keep and (b > 0 or j > 0)
                    out.append({"tile": k, "images": bs, "keep": kept, "steps": (t0, t1),
                                "packet": regmap.pack_tile(program, li, k, x, cfg, t1 - t0,
                                                           keep=kept, resume=j > 0),
                                "formula": launch_cycles(program, li, k, x, cfg, t1 - t0,
                                                         detail=True, keep=kept,
                                                         resume=j > 0)})
        return out

    def simulate(todo, seed_):
        res, st = harness.run(cfg, [x["packet"] for x in todo], seed=seed_, p_valid=p_valid,
                              p_ready=p_ready, jobs=jobs,
                              # a run starts only where a launch loads its own weights and
                              # does not resume the one before it
                              fresh=[not x["keep"] and x["steps"][0] == 0 for x in todo],
                              cost=[x["formula"]["total"] for x in todo])
        for key in sim:
            sim[key] += st[key]
        return res

    def collect(li, todo, res):
        layer = program.layers[li]
        parts = [[[] for _ in range(regmap.num_tiles(program, li, cfg))] for _ in range(B)]
        for launch, r in zip(todo, res):
            k, bs, kept, formula = launch["tile"], launch["images"], launch["keep"], launch["formula"]
            t0, t1 = launch["steps"]
            if r.status & regmap.STATUS_ERROR:
                raise SiaError(f"layer {li} tile {k} images {bs} steps {t0}..{t1 - 1}: RTL "
                               f"error code {(r.status >> 8) & 0xFF}")
            for b, o in zip(bs, regmap.unpack_output(program, li, k, r.beats, cfg, t1 - t0,
                                                     len(bs))):
                parts[b][k].append(o)
            rec = {"layer": li, "tile": k, "image": bs[0], "images": bs, "keep": kept,
                   "steps": [t0, t1], "cycles": r.cycles, "expected": formula["total"],
                   "formula": formula, "sops": r.sops, "image_ops": r.image_ops}
            if with_model:   # the cycle-level model (sia.hw.model), same inputs
                from sia.hw.model import launch_cycles as model_cycles
                rec["model"] = model_cycles(program, li, k, [_steps(ins[b], t0, t1) for b in bs],
                                            T=t1 - t0, config=cfg, keep=kept,
                                            resume=t0 > 0)["total"]
            launches.append(rec)
        for b in range(B):
            # a split layer's chunks: spikes one after the other, the last chunk's membranes
            tiles = [np.concatenate(c, axis=0) if layer.kind == "if" else c[-1]
                     for c in parts[b]]
            full = np.concatenate(tiles, axis=1 if layer.kind == "if" else 0)
            outs[b][layer.name] = full
            gold = golds[b][0]
            if check:
                g = gold[layer.name]
                if not np.array_equal(full.astype(np.int64), g.astype(np.int64)):
                    bad = np.argwhere(full.astype(np.int64) != g.astype(np.int64))
                    raise SiaError(f"layer {li} ({layer.name}) image {b}: RTL != golden at "
                                   f"{len(bad)} places, first {bad[:5].tolist()}")
            ins[b][li] = gold[layer.name] if (feed_golden and layer.kind == "if") else full

    if check and jobs > 1:
        # Every layer's output is checked against the golden simulator, so a layer fed the
        # golden spikes sees exactly what the RTL's own earlier layers would give it (or
        # the check of an earlier layer fails first): all layers' launches can then be
        # simulated at once, split into contiguous runs over `jobs` processes.
        for b in range(B):
            for li, layer in enumerate(program.layers):
                if layer.kind == "if":
                    ins[b][li] = golds[b][0][layer.name]
        plans = [plan(li) for li in range(len(program.layers))]
        res = simulate([x for todo in plans for x in todo], seed)
        i = 0
        for li, todo in enumerate(plans):
            collect(li, todo, res[i:i + len(todo)])
            i += len(todo)
    else:
        for li in range(len(program.layers)):   # layer by layer, each fed the RTL's outputs
            todo = plan(li)
            collect(li, todo, simulate(todo, seed + li))
    return {"outputs": outs, "launches": launches, "golden": [g[1] for g in golds],
            "sim": dict(sim, jobs=jobs)}

"""Whole-inference cycle model, vectorised: the golden simulator computes the spikes
(same integer arithmetic; the widths were checked against the hardware first, and
integer sums are exact in any order within those widths), a hook hands over each
layer's spike tensor, and the cycle formula is evaluated on per-word event counts
with tensor ops -- no per-event Python loop."""

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from sia import SiaError
from sia.hw import regmap, timing
from sia.hw.model import schedule as S
from sia.hw.model.fit import check_fits, is_image_layer
from sia.hw.params import SIAConfig
from sia.hw.planes import hardware_view
from sia.program.format import IMAGE, Program
from sia.snn.golden import run_batch
from sia.snn.synapse import dense_macs


@dataclass
class LayerStats:
    """One layer's counts, summed over all simulated images (divide by `images`)."""
    index: int
    name: str
    kind: str
    image: bool                     # image (bit-serial, once) layer
    tiles: int
    out_hw: tuple[int, int]
    active: list[int]               # PEs holding a real channel, per tile
    static: list[dict]              # per tile: data-independent phases of one launch
    memory: list[dict]              # per tile: data-independent accesses of one launch
    dense_macs: int                 # of the equivalent ANN layer, per image
    neurons: int
    accumulate: np.ndarray = None   # per tile
    dispatch_empty: np.ndarray = None
    events: np.ndarray = None       # dispatched events, per tile
    issue_floor: np.ndarray = None  # per tile: sum of events / k (`schedule.sets_per_cycle`)
    per_t: np.ndarray = None        # compute cycles per timestep, all tiles ([1]: image layer)
    sops: np.ndarray = None         # per tile
    image_ops: np.ndarray = None
    weight_reads: np.ndarray = None
    stream_wait: np.ndarray = None  # per tile: cycles the compute waited for input beats
    exposed_drain: np.ndarray = None  # per tile: span not covered by the dispatcher
    prefetched: np.ndarray = None   # per tile: ROW_PRE cycles hidden (row prefetch)
    spikes: int = 0
    per_launch: int = 1             # images per launch (packed launches: > 1)
    chunks: list = field(default_factory=list)   # one image's launches' steps [t0, t1)
                                    # (`regmap.launch_chunks`; one chunk: the whole T)
    # scanned word counts, kept for the DSE (the overlap depends on them per row):
    # (tile or None for words every tile scans, synapse group as scanned, words
    #  [T', B, nw, H, W], image bit-plane counts [1, B, nw, 8, H, W] or None, the group
    #  as in the program)
    scans: list = field(default_factory=list)

    def launch_phases(self, tile: int, images: int = 1) -> dict[str, float]:
        """Mean cycles per phase of launch `tile` (per image)."""
        out = {k: float(v) for k, v in self.static[tile].items()}
        out["accumulate"] = self.accumulate[tile] / images
        out["dispatch_empty"] = self.dispatch_empty[tile] / images
        out["stream_in"] += self.stream_wait[tile] / images
        out["aggregate"] += self.exposed_drain[tile] / images
        out["stall"] -= self.prefetched[tile] / images   # static: every row's ROW_PRE
        return out

    def phases(self, images: int = 1) -> dict[str, float]:
        """Cycles per phase of the whole layer (all tiles), per image."""
        out = dict.fromkeys(S.PHASES, 0.0)
        for k in range(self.tiles):
            for key, v in self.launch_phases(k, images).items():
                out[key] += v
        return out


@dataclass
class ModelResult:
    program: str
    config: SIAConfig
    timesteps: int
    images: int
    predictions: np.ndarray          # [T, N]
    accuracy: list[float] | None
    layers: list[LayerStats]
    image_cycles: np.ndarray         # [N] cycles of each image's whole inference
    image_sops: np.ndarray           # [N] spike-driven accumulates of each image
    output_v: np.ndarray | None = None   # [T, N, classes] logits, when kept
    traces: dict = field(default_factory=dict)
    weight_batch: int = 1            # images per weight load (cycles are per-image means)

    def launches(self) -> list[dict]:
        """Per (layer, tile): phases, SOPs, memory accesses (means per image)."""
        out = []
        n = self.images
        for L in self.layers:
            for k in range(L.tiles):
                ph = L.launch_phases(k, n)
                mem = {key: float(v) for key, v in L.memory[k].items()}
                mem["weight_reads"] = float(L.weight_reads[k]) / n
                out.append({"layer": L.index, "name": L.name, "tile": k, "phases": ph,
                            "cycles": sum(ph.values()), "sops": float(L.sops[k]) / n,
                            "image_ops": float(L.image_ops[k]) / n, "memory": mem})
        return out


def launch_groups(n: int, weight_batch: int, per_launch: int) -> list[tuple[int, int]]:
    """(first image, images) of each launch of one tile over n images: the host walks
    each weight batch of `weight_batch` images in launches of up to `per_launch`."""
    out = []
    for b0 in range(0, n, weight_batch):
        end = min(n, b0 + weight_batch)
        out += [(s, min(per_launch, end - s)) for s in range(b0, end, per_launch)]
    return out


def images_per_launch(program: Program, i: int, config: SIAConfig, T: int,
                      launch_images: int = 1, weight_batch: int = 1) -> int:
    """Images one launch of layer i carries: 1 without packing (launch_images = 1), else
    up to `launch_images` (0: no cap) as the RTL's buffers allow (`regmap.launch_images`;
    1 where this build of the RTL refuses the layer anyway), and never more than the
    weight batch (a launch does not mix images of two weight batches)."""
    if launch_images == 1:
        return 1
    try:
        return min(weight_batch, regmap.launch_images(program, i, config, T, launch_images or None))
    except SiaError:
        return 1


def launch_chunks(program: Program, i: int, config: SIAConfig, T: int) -> list[tuple[int, int]]:
    """The steps of one image's launches of layer i (`regmap.launch_chunks`); a layer this
    build of the RTL refuses is modelled as one launch (the report lists it)."""
    try:
        return regmap.launch_chunks(program, i, config, T)
    except SiaError:
        return [(0, T)]


def amortised_static(program: Program, i: int, config: SIAConfig, T: int, tile: int,
                     weight_batch: int, per_launch: int = 1, chunks=None) -> dict[str, float]:
    """Mean data-independent cycles per image of one tile's launches when the host runs
    `weight_batch` images per weight load (launch-major: the first launch of the batch
    loads the tile's weights and neuron params, the others keep them resident), each
    launch carrying up to `per_launch` images (packed launches: one header, C_LAUNCH
    and output tail per launch, the loop constants per image), or each image taking
    several launches (`chunks`, `regmap.launch_chunks`: one per chunk of steps)."""
    out = dict.fromkeys(S.PHASES, 0.0)
    if chunks and len(chunks) > 1:
        launches = [(j == 0 and c == 0, t1 - t0) for j in range(weight_batch)
                    for c, (t0, t1) in enumerate(chunks)]
    else:
        launches = [(j == 0, m * T)
                    for j, (_, m) in enumerate(launch_groups(weight_batch, weight_batch, per_launch))]
    for first, steps in launches:
        for k, v in S.static_phases(program, i, config, steps, tile, keep=not first).items():
            out[k] += v / weight_batch
    return out


def packed_overlap(program: Program, i: int, config: SIAConfig, T: int, tile: int,
                   d: torch.Tensor, weight_batch: int, per_launch: int, chunks) -> dict:
    """`schedule.overlap` of one tile's launches over a batch of images, d = dispatch
    cycles [T', B, H_out] per image: a packed launch of m images is one launch of m*T
    steps (image b's step t is step b*T + t), so its span is shared by its m images;
    a layer split over launches (`chunks`, `launch_chunks`) runs each chunk of steps as
    a launch of its own. Returns per image [B] span and wait (float) and per_t [T']
    summed over images."""
    wdrain = S.drain_cycles(program.layers[i], T)
    steps, n, rows = d.shape
    if len(chunks) > 1 and steps > 1:
        out = {"span": 0, "wait": 0, "prefetched": 0, "per_t": []}
        for t0, t1 in chunks:
            o = packed_overlap(program, i, config, t1 - t0, tile, d[t0:t1], weight_batch, 1,
                               [(0, t1 - t0)])
            out = {k: out[k] + o[k] if k != "per_t" else out[k] + [o[k]] for k in out}
        out["per_t"] = torch.cat(out["per_t"])
        return out
    span = torch.zeros(n, dtype=torch.float64)
    wait = torch.zeros(n, dtype=torch.float64)
    pre = torch.zeros(n, dtype=torch.float64)
    per_t = torch.zeros(steps, dtype=torch.int64)
    groups = launch_groups(n, weight_batch, per_launch)
    for m in sorted({g[1] for g in groups}):
        idx = torch.tensor([s for s, size in groups if size == m])[:, None] + torch.arange(m)
        x = d[:, idx, :].permute(2, 0, 3, 1).reshape(m * steps, rows, idx.shape[0])
        o = S.overlap(S.stream_need(program, i, config, m * T, tile), x, wdrain,
                      config.row_prefetch, config.psum_slots)
        span[idx] = (o["span"].double() / m)[:, None]
        wait[idx] = (o["wait"].double() / m)[:, None]
        pre[idx] = (o["prefetched"].double() * timing.C_ROW / m)[:, None]
        per_t += o["per_t"].reshape(m, steps, -1).sum((0, 2))
    return {"span": span, "wait": wait, "prefetched": pre, "per_t": per_t}


def _amortised_memory(mem: dict, weight_batch: int) -> dict:
    return {**mem, "weight_writes": mem["weight_writes"] / weight_batch}


def _new_stats(program: Program, config: SIAConfig, T: int, weight_batch: int = 1,
               launch_images: int = 1) -> list[LayerStats]:
    out = []
    for i, layer in enumerate(program.layers):
        nt = S.tiles(layer, config)
        image = is_image_layer(layer)
        z = np.zeros(nt, dtype=np.int64)
        per_launch = images_per_launch(program, i, config, T, launch_images, weight_batch)
        chunks = launch_chunks(program, i, config, T)
        out.append(LayerStats(
            index=i, name=layer.name, kind=layer.kind, image=image, tiles=nt,
            out_hw=tuple(layer.shape[1:]),
            active=[S.active_pes(layer, k, config) for k in range(nt)],
            per_launch=per_launch, chunks=chunks,
            static=[amortised_static(program, i, config, T, k, weight_batch, per_launch, chunks)
                    for k in range(nt)],
            memory=[_amortised_memory(S.memory_static(program, i, config, T, k), weight_batch)
                    for k in range(nt)],
            dense_macs=sum(dense_macs(program, s, layer.shape) for s in layer.inputs),
            neurons=int(np.prod(layer.shape)), per_t=np.zeros(1 if image else T, dtype=np.int64),
            accumulate=z.copy(), dispatch_empty=z.copy(), events=z.copy(),
            issue_floor=z.astype(np.float64),
            sops=z.copy(), image_ops=z.copy(), weight_reads=z.copy(),
            stream_wait=z.astype(np.float64), exposed_drain=z.astype(np.float64),
            prefetched=z.astype(np.float64)))
    return out


def _count_group(program, config, L: LayerStats, s, words, planes, ks: list[int],
                 keep_scans: bool, orig):
    """Add one group's scanned words to the launches `ks` (the tiles that scan these same
    words); returns (dispatch cycles per (t, image, output row) [T', B, H], SOPs per image).
    s: the group as scanned (`schedule.scan_view`), orig: as in the program."""
    layer = program.layers[L.index]
    if keep_scans:
        L.scans.append((None if s.op != "identity" else ks[0], s, words, planes, orig))
    ph, quad = S.phase(orig, program, config), S.quad(orig, program, config)
    # identity in the drain (`regmap.drain_group`): the aggregation core adds the group
    # while it drains (its accumulates count, its words stream in), the dispatcher never
    # sees it and no weight-memory read happens (the weight is a register per lane)
    drain = S.in_drain(orig, layer, config)
    hold = S.holds(s, config)
    d = S.scan_stats(s, words, layer.shape[1], config.events_per_cycle, planes, ph, hold, quad)
    events = int(d["events"].sum())
    sets = S.sets_per_cycle(orig, program, config)
    for k in ks:
        if not drain:
            L.accumulate[k] += int(d["accumulate"].sum())
            L.dispatch_empty[k] += int(d["dispatch_empty"].sum())
            # the dispatcher's floor (issue_floor / E cycles): E events per cycle, 2E
            # from a phase pair's two columns, 4E from a quad (report: `cycles_floor`)
            L.issue_floor[k] += events / sets
        L.events[k] += events
    n = S.pooled_events(s, words)
    per_img = (n * S.taps_map(s, *n.shape[-2:])).sum((0, 2, 3), dtype=torch.int64)
    pes = [1 if s.op == "identity" else L.active[k] for k in ks]   # identity: c -> PE c only
    for k, a in zip(ks, pes):
        ops = int(per_img.sum()) * a
        if s.source == IMAGE:
            L.image_ops[k] += ops
        else:
            L.sops[k] += ops
        if not drain:
            L.weight_reads[k] += events * a
    sops = per_img * sum(pes) if s.source != IMAGE else torch.zeros_like(per_img)
    if drain:
        return S.no_dispatch(words, layer.shape[1]), sops
    return S.row_dispatch(s, words, layer.shape[1], config.events_per_cycle, planes, ph,
                          hold, quad), sops


def _count_layer(program, config, L: LayerStats, sources: dict, T: int, keep_scans: bool = False,
                 weight_batch: int = 1):
    """Add one batch of layer L; returns its (dispatch cycles + stream waits, SOPs) per
    image."""
    layer = program.layers[L.index]
    sops = 0
    steps = [0] * L.tiles      # per tile: dispatch cycles per (t, image)
    for orig in layer.inputs:
        s, x = S.scan_view(orig, sources[orig.source])
        if s.op == "identity":   # each tile scans its own channel slice
            for k in range(L.tiles):
                c, o = _count_group(program, config, L, s,
                                    S.group_words(program, layer, s, x, k, config), None, [k],
                                    keep_scans, orig)
                steps[k], sops = steps[k] + c, sops + o
        else:
            words = S.group_words(program, layer, s, x, 0, config)
            c, o = _count_group(program, config, L, s, words, S.plane_counts(s, x, config),
                                list(range(L.tiles)), keep_scans, orig)
            steps, sops = [v + c for v in steps], sops + o
    loops = S.loop_constant(program, L.index, T)
    cycles = 0
    for k in range(L.tiles):
        o = packed_overlap(program, L.index, config, T, k, steps[k], weight_batch, L.per_launch,
                           L.chunks)
        disp = steps[k].sum((0, 2))
        L.stream_wait[k] += float(o["wait"].sum())
        L.exposed_drain[k] += float((o["span"] - o["wait"] - disp - loops + o["prefetched"]).sum())
        L.prefetched[k] += float(o["prefetched"].sum())
        L.per_t += o["per_t"].numpy()
        cycles = cycles + o["span"] - loops
    return cycles, sops


def run(program: Program, images, labels=None, T: int | None = None,
        config: SIAConfig | None = None, batch_size: int = 200, record: bool = False,
        keep_logits: bool = False, progress: bool = False, weight_batch: int = 1,
        keep_scans: bool = False, launch_images: int = 1) -> ModelResult:
    """Run images (uint8 [N,C,H,W]) through the accelerator model.

    weight_batch: images the host runs per weight load (resident-weight launches,
    launch-major order); image_cycles are then the batch's cycles / weight_batch.
    launch_images: packed launches, up to this many images of a weight batch per
    launch where the buffers allow (0: as many as fit; 1: one image per launch); a
    packed launch's cycles are shared equally by its images."""
    config = config or SIAConfig()
    T = program.timesteps if T is None else int(T)
    check_fits(program, config, T)
    golden = program                 # computes the values (signed spikes as they are)
    program = hardware_view(program, config)  # what the SIA runs: sign pairs or two planes
    if int(weight_batch) != weight_batch or weight_batch < 1:
        raise SiaError(f"weight_batch must be a positive integer, got {weight_batch}")
    weight_batch = int(weight_batch)
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(program.input_shape):
        raise SiaError(f"images must be uint8 [N, {', '.join(map(str, program.input_shape))}], "
                       f"got {images.dtype} {list(images.shape)}")
    if int(launch_images) != launch_images or launch_images < 0:
        raise SiaError(f"launch_images must be 0 (as many as fit) or a positive integer, "
                       f"got {launch_images}")
    stats = _new_stats(program, config, T, weight_batch, int(launch_images))
    if any(L.per_launch > 1 for L in stats):   # chunks hold whole weight batches
        batch_size = -(-batch_size // weight_batch) * weight_batch
    needed = {s.source for layer in program.layers for s in layer.inputs}
    static_total = sum(sum(sum(st.values()) for st in L.static) for L in stats)
    preds, logits, cycles, sops, traces = [], [], [], [], {}
    n = images.shape[0]
    if record:
        batch_size = max(1, n)
    bar = tqdm(range(0, n, batch_size), desc=f"sia model T={T}", disable=not progress,
               unit="batch")
    with torch.no_grad():
        for start in bar:
            x = images[start:start + batch_size]
            sources = {IMAGE: x}
            per_image = static_total

            def hook(i, s):   # keep the spike maps later layers read
                if i in needed:
                    sources[i] = s

            st = run_batch(golden, x, T, record=record, on_layer=hook)
            batch_sops = torch.zeros(x.shape[0], dtype=torch.int64)
            for L in stats:
                c, o = _count_layer(program, config, L, sources, T, keep_scans, weight_batch)
                per_image, batch_sops = per_image + c, batch_sops + o
                L.spikes += st["spikes"][L.name]
            cycles.append(torch.as_tensor(per_image, dtype=torch.float64)
                          .expand(x.shape[0]).clone())
            sops.append(batch_sops)
            preds.append(st["output_v"].argmax(-1))
            if keep_logits:
                logits.append(st["output_v"])
            if record:
                traces = st["traces"]
    predictions = torch.cat(preds, dim=1).numpy()
    acc = None
    if labels is not None:
        lab = np.asarray(labels)
        acc = [float((predictions[t] == lab).mean()) for t in range(T)]
    return ModelResult(program=program.name, config=config, timesteps=T, images=n,
                       predictions=predictions, accuracy=acc, layers=stats,
                       image_cycles=torch.cat(cycles).numpy(), image_sops=torch.cat(sops).numpy(),
                       output_v=torch.cat(logits, 1).numpy() if keep_logits else None,
                       traces=traces, weight_batch=weight_batch)


def launch_cycles(program: Program, layer_index: int, tile: int, inputs,
                  T: int | None = None, config: SIAConfig | None = None,
                  keep: bool = False, resume: bool = False) -> dict[str, int]:
    """Cycles per phase (+ "total") of one launch: the number the RTL's CYCLES register
    must show. inputs: {source: tensor} with the uint8 image [C,H,W] under -1 and spikes
    [T,C,H,W] of layer j under j, for every source of the layer; or a list of such
    dicts for a packed launch (its k images run as one launch of k*T steps).
    keep: a resident-weight launch (weights and neuron params not sent); resume: a
    later chunk of a split image (`regmap.launch_chunks`; its first step is not the
    image's)."""
    config = config or SIAConfig()
    T = program.timesteps if T is None else int(T)
    check_fits(program, config, T)
    program = hardware_view(program, config)
    layer = program.layers[layer_index]
    if not 0 <= tile < S.tiles(layer, config):
        raise SiaError(f"layer {layer_index} has {S.tiles(layer, config)} tiles, not tile {tile}")
    per_image = regmap.image_list(inputs)
    k = len(per_image)
    if k > 1:   # packing is bounded by the RTL's buffers
        regmap.check_layer(program, layer_index, config, T, k)
    steps_total = k * T       # a packed launch is one launch of k*T steps
    phases = dict(S.static_phases(program, layer_index, config, steps_total, tile, keep=keep))
    steps = 0
    for s in layer.inputs:
        drain = S.in_drain(s, layer, config)   # added by the aggregation core, not issued
        if s.source == IMAGE:
            x = torch.as_tensor(per_image[0][s.source])[None]
        else:
            x = torch.cat([torch.as_tensor(v[s.source])[:T] for v in per_image])[:, None]
        ph, quad = S.phase(s, program, config), S.quad(s, program, config)
        s, x = S.scan_view(s, x)
        words = S.group_words(program, layer, s, x, tile, config)
        planes = S.plane_counts(s, x, config)
        if drain:
            steps = steps + S.no_dispatch(words, layer.shape[1])
            continue
        hold = S.holds(s, config)
        d = S.scan_stats(s, words, layer.shape[1], config.events_per_cycle, planes, ph, hold,
                         quad, period=T, resume=resume)
        phases["accumulate"] += int(d["accumulate"].sum())
        phases["dispatch_empty"] += int(d["dispatch_empty"].sum())
        steps = steps + S.row_dispatch(s, words, layer.shape[1], config.events_per_cycle,
                                       planes, ph, hold, quad, period=T, resume=resume)
    o = S.overlap(S.stream_need(program, layer_index, config, steps_total, tile),
                  steps.permute(0, 2, 1), S.drain_cycles(layer, T), config.row_prefetch,
                  config.psum_slots)
    hidden = int(o["prefetched"][0]) * timing.C_ROW    # ROW_PRE cycles row prefetch saved
    phases["stream_in"] += int(o["wait"][0])
    phases["stall"] -= hidden
    phases["aggregate"] += int(o["span"][0] - o["wait"][0] - steps.sum()
                               - S.loop_constant(program, layer_index, steps_total) + hidden)
    phases["total"] = sum(phases.values())
    return phases

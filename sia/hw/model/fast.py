"""Whole-inference cycle model, vectorised: the golden simulator computes the spikes
(same integer arithmetic; the widths were checked against the hardware first, and
integer sums are exact in any order within those widths), a hook turns each layer's
spike tensor into per-position event counts, and the cycle formula is evaluated on
those counts with tensor ops -- no per-event Python loop."""

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from sia import SiaError
from sia.hw.model import schedule as S
from sia.hw.model.fit import check_fits, is_image_layer
from sia.hw.params import SIAConfig
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
    active: list[int]               # PEs holding a real channel, per tile
    static: dict[str, int]          # data-independent phases of one launch
    memory: dict[str, int]          # data-independent accesses of one launch
    dense_macs: int                 # of the equivalent ANN layer, per image
    neurons: int
    accumulate: int = 0             # per launch (all tiles are equal), summed over images
    dispatch_empty: int = 0
    events: int = 0
    spikes: int = 0
    per_t: np.ndarray = None        # dispatch cycles per timestep ([1] for image layers)
    sops: np.ndarray = None         # per tile
    image_ops: np.ndarray = None    # per tile
    weight_reads: np.ndarray = None  # per tile
    hist: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    def launch_phases(self, images: int = 1) -> dict[str, float]:
        """Mean cycles per phase of one launch (per image)."""
        out = {k: float(v) for k, v in self.static.items()}
        out["accumulate"] = self.accumulate / images
        out["dispatch_empty"] = self.dispatch_empty / images
        return out

    def add_hist(self, values: torch.Tensor):
        h = torch.bincount(values.flatten().long()).numpy()
        if h.size > self.hist.size:
            h[:self.hist.size] += self.hist
            self.hist = h
        else:
            self.hist[:h.size] += h


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
    output_v: np.ndarray | None = None   # [T, N, classes] logits, when kept
    traces: dict = field(default_factory=dict)

    def launches(self) -> list[dict]:
        """Per (layer, tile): phases, SOPs, memory accesses (per image)."""
        out = []
        n = self.images
        for L in self.layers:
            for k in range(L.tiles):
                ph = L.launch_phases(n)
                mem = {key: float(v) for key, v in L.memory.items()}
                mem["weight_reads"] = float(L.weight_reads[k]) / n
                out.append({"layer": L.index, "name": L.name, "tile": k, "phases": ph,
                            "cycles": sum(ph.values()), "sops": float(L.sops[k]) / n,
                            "image_ops": float(L.image_ops[k]) / n, "memory": mem})
        return out


def _new_stats(program: Program, config: SIAConfig, T: int) -> list[LayerStats]:
    out = []
    for i, layer in enumerate(program.layers):
        nt = S.tiles(layer, config)
        image = is_image_layer(layer)
        z = np.zeros(nt, dtype=np.int64)
        out.append(LayerStats(
            index=i, name=layer.name, kind=layer.kind, image=image, tiles=nt,
            active=[S.active_pes(layer, k, config) for k in range(nt)],
            static=S.static_phases(program, i, config, T),
            memory=S.memory_static(program, i, config, T),
            dense_macs=sum(dense_macs(program, s, layer.shape) for s in layer.inputs),
            neurons=int(np.prod(layer.shape)), per_t=np.zeros(1 if image else T, dtype=np.int64),
            sops=z.copy(), image_ops=z.copy(), weight_reads=z.copy()))
    return out


def _count_layer(program, config, L: LayerStats, counts, chan, masks) -> torch.Tensor:
    """Add one batch's dispatch counts of layer L; returns its dispatch cycles per image."""
    layer = program.layers[L.index]
    active = torch.tensor(L.active, dtype=torch.int64)
    per_image = 0
    for j, s in enumerate(layer.inputs):
        n = S.pooled_events(s, counts[s.source])
        mask = masks[L.index][j]
        d = S.dispatch(n, mask, config.events_per_cycle)
        L.accumulate += int(d["accumulate"].sum())
        L.dispatch_empty += int(d["dispatch_empty"].sum())
        L.events += int(d["events"].sum())
        cyc = d["accumulate"] + d["dispatch_empty"]
        L.per_t += cyc.sum(1).numpy()
        per_image = per_image + cyc.sum(0)
        L.add_hist(n[..., mask, :])
        if s.op == "identity":   # event of channel c reaches PE c only
            c = chan[s.source]
            per_tile = torch.stack([c[k * config.pes:(k + 1) * config.pes].sum()
                                    for k in range(L.tiles)])
            reads = per_tile
        else:
            taps = S.taps_map(s, *n.shape[-2:])
            per_tile = int((n * taps).sum(dtype=torch.int64)) * active
            reads = int(d["events"].sum()) * active
        if s.source == IMAGE:
            L.image_ops += per_tile.numpy()
        else:
            L.sops += per_tile.numpy()
        L.weight_reads += reads.numpy()
    return per_image * L.tiles


def run(program: Program, images, labels=None, T: int | None = None,
        config: SIAConfig | None = None, batch_size: int = 200, record: bool = False,
        keep_logits: bool = False, progress: bool = False) -> ModelResult:
    """Run images (uint8 [N,C,H,W]) through the accelerator model."""
    config = config or SIAConfig()
    T = program.timesteps if T is None else int(T)
    check_fits(program, config, T)
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(program.input_shape):
        raise SiaError(f"images must be uint8 [N, {', '.join(map(str, program.input_shape))}], "
                       f"got {images.dtype} {list(images.shape)}")
    stats = _new_stats(program, config, T)
    masks = [[S.row_mask(s, program.pooled_shape(s)[1], layer.shape[1]) if s.op != "dense"
              else torch.ones(1, dtype=torch.bool) for s in layer.inputs]
             for layer in program.layers]
    sources = {s.source for layer in program.layers for s in layer.inputs}
    ident = {s.source for layer in program.layers for s in layer.inputs if s.op == "identity"}
    static_total = sum(sum(L.static.values()) * L.tiles for L in stats)
    preds, logits, cycles, traces = [], [], [], {}
    n = images.shape[0]
    if record:
        batch_size = max(1, n)
    bar = tqdm(range(0, n, batch_size), desc=f"sia model T={T}", disable=not progress,
               unit="batch")
    with torch.no_grad():
        for start in bar:
            x = images[start:start + batch_size]
            counts, chan = {IMAGE: S.source_counts(IMAGE, x)}, {}
            spikes = {}

            def hook(i, s):
                spikes[i] = int(s.sum(dtype=torch.int64))
                if i in sources:
                    counts[i] = S.source_counts(i, s)
                if i in ident:
                    chan[i] = s.sum((0, 1, 3, 4), dtype=torch.int64)

            st = run_batch(program, x, T, record=record, on_layer=hook)
            per_image = static_total
            for L in stats:
                per_image = per_image + _count_layer(program, config, L, counts, chan, masks)
                L.spikes += spikes.get(L.index, 0)
            cycles.append(torch.as_tensor(per_image).expand(x.shape[0]).clone())
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
                       image_cycles=torch.cat(cycles).numpy(),
                       output_v=torch.cat(logits, 1).numpy() if keep_logits else None,
                       traces=traces)


def launch_cycles(program: Program, layer_index: int, tile: int, inputs: dict,
                  T: int | None = None, config: SIAConfig | None = None) -> dict[str, int]:
    """Cycles per phase (+ "total") of one launch for ONE image: the number the RTL's
    cycle counter must show. inputs: {source: tensor} with the uint8 image [C,H,W] under
    -1 and spikes [T,C,H,W] of layer j under j, for every source of the layer."""
    config = config or SIAConfig()
    T = program.timesteps if T is None else int(T)
    check_fits(program, config, T)
    layer = program.layers[layer_index]
    if not 0 <= tile < S.tiles(layer, config):
        raise SiaError(f"layer {layer_index} has {S.tiles(layer, config)} tiles, not tile {tile}")
    phases = dict(S.static_phases(program, layer_index, config, T))
    for s in layer.inputs:
        x = torch.as_tensor(inputs[s.source])
        x = x[None] if s.source == IMAGE else x[:, None]
        n = S.pooled_events(s, S.source_counts(s.source, x))
        mask = S.row_mask(s, n.shape[-2], layer.shape[1]) if s.op != "dense" \
            else torch.ones(1, dtype=torch.bool)
        d = S.dispatch(n, mask, config.events_per_cycle)
        phases["accumulate"] += int(d["accumulate"].sum())
        phases["dispatch_empty"] += int(d["dispatch_empty"].sum())
    phases["total"] = sum(phases.values())
    return phases

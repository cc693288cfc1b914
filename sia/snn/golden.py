"""Vectorised integer simulation of a program over T timesteps.

Loop order: layer by layer, all timesteps at once (time folded into the batch for
the synaptic currents), then the neuron recurrence over t. This is exact because a
layer at step t only depends on its sources at the same step t. The image is the
same at every step, so an image-driven current is computed once and reused.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from sia import SiaError
from sia.program.format import IMAGE, Program
from sia.snn.neuron import if_step, integrator_step, signed_if_step
from sia.snn.synapse import dense_macs, exact_dtype, fanout_map, sum_pool, synapse_current


@dataclass
class SimResult:
    timesteps: int
    predictions: np.ndarray                 # [T, N] class after t = 1..T
    accuracy: list[float] | None            # per t, when labels were given
    spikes: dict[str, int]                  # total spikes per layer (all images, all t;
                                            # a signed layer's +1 and -1 spikes both count)
    neurons: dict[str, int]                 # neurons per layer
    sops: dict[str, int]                    # spike-driven accumulates per layer (all images)
    image_macs: dict[str, int]              # image-driven MACs per layer, once per image
    dense_macs: dict[str, int]              # MACs of the equivalent ANN, per image
    images: int = 0
    traces: dict = field(default_factory=dict)  # record=True: spikes / membranes per layer

    def spike_rate(self, name: str) -> float:
        return self.spikes[name] / max(1, self.neurons[name] * self.timesteps * self.images)

    def to_json(self) -> dict:
        layers = [{"name": n, "neurons": self.neurons[n], "spikes": self.spikes[n],
                   "spike_rate": self.spike_rate(n), "sops": self.sops[n],
                   "image_macs": self.image_macs[n], "dense_macs": self.dense_macs[n]}
                  for n in self.neurons]
        return {"timesteps": self.timesteps, "images": self.images,
                "accuracy": self.accuracy, "layers": layers,
                "sops_per_image": sum(self.sops.values()) / max(1, self.images)}


def _needed_later(program: Program) -> set[int]:
    return {s.source for layer in program.layers for s in layer.inputs if s.source != IMAGE}


def layer_dtype(program: Program, layer) -> torch.dtype:
    """float32 when every value of the layer (partial sums, currents, membranes) is an
    integer below 2^24 in magnitude, so float arithmetic on it is exact; else float64."""
    small = max(layer.acc_bits, layer.v_bits) <= 25
    if small and all(exact_dtype(program, syn) == torch.float32 for syn in layer.inputs):
        return torch.float32
    return torch.float64


def run_batch(program: Program, images: torch.Tensor, T: int, record: bool = False,
              on_layer=None) -> dict:
    """images: uint8 [B, C, H, W]. Returns V of the output layer per t, spike totals,
    SOP counts and (record=True) every layer's spikes [T,B,C,H,W] (uint8; int8 -1/0/1 for
    a signed layer) and membranes.
    on_layer(i, spikes [T,B,C,H,W]) is called for each IF layer (the cycle model's hook).

    Values are exact integers held in float tensors (layer_dtype); validation has
    proven statically that none leaves its declared width (sia/program/bounds.py);
    record=True also checks every membrane value at run time."""
    B = images.shape[0]
    keep = _needed_later(program)
    outs: dict[int, torch.Tensor] = {}          # layer index -> spikes [T*B, C, H, W] (0/1)
    counts: dict[int, torch.Tensor] = {}        # layer index -> spikes per position [H, W]
    stats = {"spikes": {}, "sops": {}, "image_macs": {}, "traces": {}}
    out_v = None
    for i, layer in enumerate(program.layers):
        C, H, W = layer.shape
        dt = layer_dtype(program, layer)
        constant = torch.as_tensor(layer.bias, dtype=dt)[None, :, None, None]
        varying = None
        sops = macs = 0
        for syn in layer.inputs:
            ph, pw = program.pooled_shape(syn)[1:]
            fan = fanout_map(syn, (ph, pw), C).double()
            if syn.source == IMAGE:
                constant = constant + synapse_current(syn, images, dt)
                macs += int(fan.sum()) * program.input_shape[0] * B
            else:
                src = outs[syn.source]
                cur = synapse_current(syn, src, dt)
                varying = cur if varying is None else varying + cur
                # every spike is one event; it reaches fan[pooled position] accumulates
                events = sum_pool(counts[syn.source][None, None].double(), syn.pool)
                sops += int((events[0, 0] * fan).sum())
        cur = constant[None] if varying is None else varying.view(T, B, C, H, W) + constant[None]
        cur = cur.expand(T, B, C, H, W)
        v = torch.as_tensor(layer.v_init, dtype=dt)[None, :, None, None].expand(B, C, H, W)
        vs = []
        if layer.kind == "if":
            theta = torch.as_tensor(layer.threshold, dtype=dt)[None, :, None, None]
            spikes = torch.empty(T, B, C, H, W, dtype=dt)
            net = torch.zeros(B, C, H, W, dtype=dt) if layer.signed else None
            for t in range(T):
                if record:
                    _check_bits(layer, v + cur[t])
                if layer.signed:
                    v, spikes[t], net = signed_if_step(v, cur[t], theta, net)
                else:
                    v, spikes[t] = if_step(v, cur[t], theta)
                if record:
                    vs.append(v.to(torch.int64))
            exact = torch.float32 if T * B * C < 2 ** 24 else torch.float64
            # every spike, +1 or -1, is one event downstream
            counts[i] = (spikes.abs() if layer.signed else spikes).sum(dim=(0, 1, 2), dtype=exact)
            stats["spikes"][layer.name] = int(counts[i].double().sum())
            as_int = spikes.to(torch.int8 if layer.signed else torch.uint8)
            if on_layer is not None:
                on_layer(i, as_int)
            if i in keep:
                outs[i] = spikes.view(T * B, C, H, W)
            if record:
                stats["traces"][layer.name] = {"spikes": as_int, "v": torch.stack(vs)}
        else:
            for t in range(T):
                v = integrator_step(v, cur[t])
                vs.append(v)
            out_v = torch.stack(vs).reshape(T, B, -1).to(torch.int64)
            if record:
                _check_bits(layer, out_v)
                stats["traces"][layer.name] = {"v": out_v.view(T, B, C, H, W)}
            stats["spikes"][layer.name] = 0
        stats["sops"][layer.name] = sops
        stats["image_macs"][layer.name] = macs
    stats["output_v"] = out_v
    return stats


def _check_bits(layer, v: torch.Tensor):
    lim = 1 << (layer.v_bits - 1)
    if float(v.min()) < -lim or float(v.max()) >= lim:
        raise SiaError(f"layer {layer.name}: membrane left its declared {layer.v_bits}-bit range")


def check_run(program: Program, images, T: int | None) -> tuple[int, torch.Tensor]:
    """(T, images as a tensor), refusing a T outside 1..t_max (default: the program's)
    or images that are not uint8 [N, *input_shape]."""
    T = program.timesteps if T is None else int(T)
    if not 1 <= T <= program.t_max:
        raise SiaError(f"T={T} outside 1..t_max={program.t_max} that the program's bit-widths cover")
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(program.input_shape):
        raise SiaError(f"images must be uint8 [N, {', '.join(map(str, program.input_shape))}], "
                       f"got {images.dtype} {list(images.shape)}")
    return T, images


def simulate(program: Program, images, labels=None, T: int | None = None, batch_size: int = 256,
             record: bool = False, progress: bool = False) -> SimResult:
    """Run `images` (uint8 [N, C, H, W]) through the program for T timesteps."""
    T, images = check_run(program, images, T)
    names = [layer.name for layer in program.layers]
    totals = {k: dict.fromkeys(names, 0) for k in ("spikes", "sops", "image_macs")}
    preds, traces = [], {}
    n = images.shape[0]
    if record:  # traces are for small runs: one batch keeps them simple
        batch_size = max(1, n)
    bar = tqdm(range(0, n, batch_size), desc=f"golden T={T}", disable=not progress, unit="batch")
    with torch.no_grad():
        for start in bar:
            st = run_batch(program, images[start:start + batch_size], T, record)
            for k in totals:
                for name, val in st[k].items():
                    totals[k][name] += val
            preds.append(st["output_v"].argmax(-1))
            if record:
                traces = {**st["traces"], "output_v": st["output_v"]}
    predictions = torch.cat(preds, dim=1).numpy()
    acc = None
    if labels is not None:
        lab = np.asarray(labels)
        acc = [float((predictions[t] == lab).mean()) for t in range(T)]
    return SimResult(
        timesteps=T, predictions=predictions, accuracy=acc, spikes=totals["spikes"],
        neurons={layer.name: int(np.prod(layer.shape)) for layer in program.layers},
        sops=totals["sops"], image_macs=totals["image_macs"],
        dense_macs={layer.name: sum(dense_macs(program, s, layer.shape) for s in layer.inputs)
                    for layer in program.layers},
        images=n, traces=traces)

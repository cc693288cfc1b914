"""Bias calibration: per-channel offsets so each SNN layer's mean output over T steps
matches its integer QCFS ANN (a light form of Li et al., ICML 2021 "A free lunch from
ANN: towards efficient, accurate SNN by calibration").

Layer by layer, in order: run the SNN on calibration images, compare each channel's
mean spike rate with the ANN's mean level / L, and move the channel's integer bias by
the rate error times its threshold (rate ~ (I + bias) / threshold). Only integers
change, so every backend runs the calibrated program unchanged.
"""

import copy

import numpy as np
import torch
from tqdm import tqdm

from sia.program.bounds import declare_bits
from sia.program.format import Program
from sia.program.validate import validate
from sia.quant import round_half_up_np
from sia.snn.ann import ann_levels
from sia.snn.golden import run_batch


def calibrate_bias(program: Program, images, T: int | None = None, progress: bool = True,
                   chunk: int = 128) -> Program:
    """chunk: images per golden-simulator batch. The means are sums of integers over all
    images, so the result does not depend on it; memory does (ResNet-18 w0.25 needed
    ~13 GB for 512 images in one batch)."""
    T = T or program.timesteps
    prog = copy.deepcopy(program)
    images = torch.as_tensor(images)
    n, chunk = images.shape[0], max(1, int(chunk))
    parts = [images[k:k + chunk] for k in range(0, n, chunk)]
    with torch.no_grad():
        layers = [i for i, layer in enumerate(prog.layers) if layer.kind == "if"]
        target = {}   # per channel: sum of the integer ANN's levels
        for x in parts:
            ann = ann_levels(prog, x)
            for i in layers:
                name = prog.layers[i].name
                target[name] = target.get(name, 0) + ann[name].double().sum(dim=(0, 2, 3))
        for i in tqdm(layers, desc="calibrate bias", disable=not progress):
            layer = prog.layers[i]
            fired, count = 0, 0
            for x in parts:
                got = {}   # only this layer's spikes: no traces of every membrane
                run_batch(prog, x, T, on_layer=lambda j, s, i=i: got.setdefault(j, s) if j == i else None)
                fired = fired + got[i].double().sum(dim=(0, 1, 3, 4))
                count += got[i].shape[0] * got[i].shape[1] * got[i].shape[3] * got[i].shape[4]
            rate = (fired / count).numpy()
            h, w = layer.shape[1:]
            tgt = (target[layer.name] / (n * h * w)).numpy() / prog.levels
            layer.bias = layer.bias + round_half_up_np((tgt - rate) * layer.threshold).astype(np.int64)
            declare_bits(prog, layer)
    prog.meta = {**prog.meta, "bias_calibration": {"images": int(n), "T": T}}
    return validate(prog)

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


def calibrate_bias(program: Program, images, T: int | None = None, progress: bool = True) -> Program:
    T = T or program.timesteps
    prog = copy.deepcopy(program)
    images = torch.as_tensor(images)
    with torch.no_grad():
        ann = ann_levels(prog, images)
        layers = [i for i, layer in enumerate(prog.layers) if layer.kind == "if"]
        for i in tqdm(layers, desc="calibrate bias", disable=not progress):
            layer = prog.layers[i]
            got = {}   # only this layer's spikes: no traces of every membrane
            run_batch(prog, images, T, on_layer=lambda j, s, i=i: got.setdefault(j, s) if j == i else None)
            spikes = got[i]
            rate = spikes.double().mean(dim=(0, 1, 3, 4)).numpy()
            target = ann[layer.name].double().mean(dim=(0, 2, 3)).numpy() / prog.levels
            layer.bias = layer.bias + round_half_up_np((target - rate) * layer.threshold).astype(np.int64)
            declare_bits(prog, layer)
    prog.meta = {**prog.meta, "bias_calibration": {"images": int(images.shape[0]), "T": T}}
    return validate(prog)

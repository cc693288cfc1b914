"""Warm start: begin a run from a trained twin's weights (config key `init`).

A QCFS network fine-tuned from its trained FP32 (ReLU) twin needs far fewer epochs than
one trained from scratch, which is what a short GPU lease can afford. Every finished
run is BN-folded (sia.train.trainer), so the warm-started run trains in the folded
stage only (epochs = 0, fold_epochs = N, at fold_lr). QCFS thresholds have no
counterpart in the twin: each is set to a high percentile of its layer's positive
input on one batch of training images, in network order (a layer's input already
passes through the thresholds set above it), then trained as usual.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from sia import SiaError
from sia.models import fold_all_bn, is_folded
from sia.quant import QCFS

MAX_SAMPLES = 1 << 22   # torch.quantile's input limit is 2**24 elements


def _twin_state(run_dir, arch: str, width: float) -> dict:
    d = Path(run_dir)
    weights, cfg_path = d / "model.safetensors", d / "config.json"
    for f in (weights, cfg_path):
        if not f.is_file():
            raise SiaError(f"config key 'init': no such file: {f}")
    twin = json.loads(cfg_path.read_text())
    if (twin.get("arch"), twin.get("width")) != (arch, width):
        raise SiaError(f"config key 'init': {d} is a {twin.get('arch')} width {twin.get('width')}, "
                       f"this run a {arch} width {width}")
    return load_file(str(weights))


@torch.no_grad()
def calibrate_thetas(net: nn.Module, images: torch.Tensor, percentile: float = 99.9) -> list:
    """Set every QCFS theta from its input on `images` (float, [0, 1]); returns them."""
    thetas = []

    def pre(mod, inputs):
        a = inputs[0].detach().float().flatten()
        a = a[a > 0]
        if a.numel() > MAX_SAMPLES:
            a = a[:: -(-a.numel() // MAX_SAMPLES)]
        th = float(torch.quantile(a, percentile / 100)) if a.numel() else 1.0
        mod.theta.fill_(max(th, 1e-3))
        thetas.append(mod.theta_value())

    hooks = [m.register_forward_pre_hook(pre) for m in net.modules() if isinstance(m, QCFS)]
    was = net.training
    try:
        net.eval()
        net(images)
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
    return thetas


def warm_start(net: nn.Module, run_dir, arch: str, width: float, images: torch.Tensor) -> dict:
    """Load the twin in `run_dir` into `net` (folding net's BN first); set QCFS thetas."""
    state = _twin_state(run_dir, arch, width)
    if not is_folded(state):
        raise SiaError(f"config key 'init': {run_dir} holds an unfolded model; expected a finished run")
    fold_all_bn(net)
    own = net.state_dict()
    extra = sorted(set(state) - set(own))
    absent = sorted(k for k in set(own) - set(state) if not k.endswith("theta"))
    if extra or absent:
        raise SiaError(f"config key 'init': {run_dir} is not this network "
                       f"({'unexpected' if extra else 'missing'} tensor {(extra or absent)[0]!r})")
    bad = [k for k in state if state[k].shape != own[k].shape]
    if bad:
        raise SiaError(f"config key 'init': tensor {bad[0]!r} has shape {tuple(state[bad[0]].shape)}, "
                       f"this network {tuple(own[bad[0]].shape)}")
    net.load_state_dict(state, strict=False)
    thetas = calibrate_thetas(net, images)
    return {"init": str(run_dir), "thetas": [round(t, 4) for t in thetas]}

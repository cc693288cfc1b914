"""Neuron update rules as pure functions on integer tensors (docs/semantics.md).

IF:          V <- V + I;  s = [V >= theta];  V <- V - s * theta   (reset by subtraction)
integrator:  V <- V + I                                             (no spikes)
"""

import torch


def if_step(v: torch.Tensor, current: torch.Tensor, theta: torch.Tensor):
    v = v + current
    spike = v >= theta
    return v - spike.to(v.dtype) * theta, spike


def integrator_step(v: torch.Tensor, current: torch.Tensor):
    return v + current

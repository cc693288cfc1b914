"""Neuron update rules as pure functions on integer tensors (docs/semantics.md).

IF:          V <- V + I;  s = [V >= theta];  V <- V - s * theta   (reset by subtraction)
integrator:  V <- V + I                                             (no spikes)
"""

import torch


def if_step(v: torch.Tensor, current: torch.Tensor, theta: torch.Tensor):
    """-> (V after reset, spikes as 0/1 in V's dtype)."""
    v = v + current
    spike = (v >= theta).to(v.dtype)
    return v - spike * theta, spike


def integrator_step(v: torch.Tensor, current: torch.Tensor):
    return v + current

"""Neuron update rules as pure functions on integer tensors (docs/semantics.md).

IF:          V <- V + I;  s = [V >= theta];  V <- V - s * theta   (reset by subtraction)
signed IF:   as IF, and s = -1 when V < 0 and c > 0, c the net count so far: V <- V + theta
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


def signed_if_step(v: torch.Tensor, current: torch.Tensor, theta: torch.Tensor, count: torch.Tensor):
    """-> (V after reset, spikes as -1/0/1 in V's dtype, net spike count so far). A -1
    spike takes back an earlier +1 when V fell below 0: the net count never goes
    negative (Wang et al., IJCAI 2022, "Signed neuron with memory")."""
    v = v + current
    spike = (v >= theta).to(v.dtype) - ((v < 0) & (count > 0)).to(v.dtype)
    return v - spike * theta, spike, count + spike

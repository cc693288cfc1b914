"""QCFS activation (quantisation clip-floor-shift), the ANN twin of an IF neuron.

    a = theta * clip(floor(x * L / theta + 1/2) / L, 0, 1)

An IF neuron with threshold theta, reset by subtraction and initial potential
theta/2 fires floor(...) times in L steps for a constant input x, so an ANN trained
with this activation converts to an SNN with little error at T >= L.
"""

import torch
from torch import nn

from sia.quant.rounding import floor_ste


def qcfs(x: torch.Tensor, theta: torch.Tensor, levels: int, shift: float = 0.5) -> torch.Tensor:
    u = torch.clamp(x / theta, 0.0, 1.0)
    return floor_ste(u * levels + shift) / levels * theta


class QCFS(nn.Module):
    """QCFS with a learnable per-layer threshold theta (straight-through gradients)."""

    def __init__(self, levels: int = 4, theta: float = 8.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"QCFS levels must be >= 1, got {levels}")
        self.levels = int(levels)
        self.theta = nn.Parameter(torch.tensor(float(theta)))

    def forward(self, x):
        return qcfs(x, self.theta.abs() + 1e-6, self.levels)

    def extra_repr(self):
        return f"levels={self.levels}"

    def theta_value(self) -> float:
        return float(self.theta.detach().abs() + 1e-6)

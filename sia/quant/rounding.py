"""The one rounding rule of sia: round half up, i.e. floor(x + 1/2).

PyTorch's torch.round and NumPy's np.round round half to even; sia never uses them
for anything that reaches a program, so ties resolve the same way in training,
conversion and hardware (add one half, truncate). See docs/semantics.md.
"""

import numpy as np
import torch


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def round_half_up_np(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor in the forward pass, identity gradient (straight-through estimator)."""
    return x + (torch.floor(x) - x).detach()

"""k-bit symmetric weight quantisation, per output channel (or per tensor).

    s = max|W| / (2^(k-1) - 1),   q = clamp(floor(W/s + 1/2), -qmax, qmax)

The range is symmetric (-qmax..qmax, the code -2^(k-1) is never used) so that
negating a weight never overflows and the hardware needs no asymmetric clamp.
"""

import torch
from torch import nn

from sia.quant.rounding import round_half_up


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def weight_scale(w: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """Scale s with shape broadcastable to w; a channel of zeros gets s = 1."""
    w = w.detach()
    if per_channel:
        m = w.abs().reshape(w.shape[0], -1).amax(dim=1)
        m = m.reshape(-1, *([1] * (w.dim() - 1)))
    else:
        m = w.abs().amax().reshape([1] * w.dim())
    s = m / qmax(bits)
    return torch.where(s > 0, s, torch.ones_like(s))


def quantize_weight(w: torch.Tensor, bits: int, per_channel: bool = True):
    """Return (integer codes q as float tensor, scale s): w ~= q * s."""
    s = weight_scale(w, bits, per_channel)
    q = torch.clamp(round_half_up(w.detach() / s), -qmax(bits), qmax(bits))
    return q, s


class WeightQuant(nn.Module):
    """Fake-quantiser: forward q*s, gradient passes straight through to w."""

    def __init__(self, bits: int = 4, per_channel: bool = True):
        super().__init__()
        if not 2 <= bits <= 16:
            raise ValueError(f"weight bits must be in 2..16, got {bits}")
        self.bits = int(bits)
        self.per_channel = per_channel

    def forward(self, w):
        q, s = quantize_weight(w, self.bits, self.per_channel)
        return w + (q * s - w).detach()

    def extra_repr(self):
        return f"bits={self.bits}, per_channel={self.per_channel}"

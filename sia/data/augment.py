"""CIFAR train augmentation on a uint8 batch, vectorised: one gather per batch.

Random crop with `pad` pixels of zero padding plus a random horizontal flip. The
flip is folded into the column index of the crop, so the whole thing is a single
advanced-indexing gather on whichever device the batch lives on.
"""

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """x uint8 [B,C,H,W] -> same shape; randomness drawn from gen (CPU generator)."""
    b, _, h, w = x.shape
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    ry, rx = torch.arange(h), torch.arange(w)
    rows = oy[:, None] + ry
    cols = ox[:, None] + torch.where(flip[:, None], rx.flip(0), rx)
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    bi = torch.arange(b, device=dev)[:, None, None]
    out = xp[bi, :, rows.to(dev)[:, :, None], cols.to(dev)[:, None, :]]  # [B,H,W,C]
    return out.permute(0, 3, 1, 2).contiguous()

"""Quantisation-aware building blocks; the converter (sia.convert) knows exactly these.

ConvUnit   conv -> BN (until folded) -> activation, weights fake-quantised per channel
LinearUnit the classifier: per-tensor weights (one scale, so class scores compare)
BasicBlock ResNet block: act(conv2(conv1(x)) + shortcut(x))

Per-channel symmetric weight quantisation commutes with BN folding (folding scales
each output channel by one factor), so training the raw conv weights quantised and
folding afterwards gives the same integer codes the converter exports.
"""

import torch
import torch.nn.functional as F
from torch import nn

from sia.quant import QCFS, WeightQuant


def make_act(act: str, levels: int = 4) -> nn.Module:
    if act == "qcfs":
        return QCFS(levels)
    if act == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {act!r} (choose qcfs or relu)")


class ConvUnit(nn.Module):
    def __init__(self, cin, cout, kernel=3, stride=1, padding=1, act: nn.Module | None = None,
                 weight_bits: int | None = 4):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(cout)
        self.bias: nn.Parameter | None = None
        self.wq = WeightQuant(weight_bits, per_channel=True) if weight_bits else None
        self.act = act if act is not None else nn.Identity()

    def weight(self) -> torch.Tensor:
        w = self.conv.weight
        return self.wq(w) if self.wq is not None else w

    def forward(self, x):
        y = F.conv2d(x, self.weight(), self.bias, self.conv.stride, self.conv.padding)
        if self.bn is not None:
            y = self.bn(y)
        return self.act(y)

    @torch.no_grad()
    def fold_bn(self):
        """Fold BN (running statistics) into the conv weight and a bias; idempotent."""
        if self.bn is None:
            return
        bn = self.bn
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.conv.weight.mul_(g.reshape(-1, 1, 1, 1))
        b = bn.bias - g * bn.running_mean
        if self.bias is not None:
            b = b + g * self.bias
        self.bias = nn.Parameter(b.clone())
        self.bn = None


class LinearUnit(nn.Module):
    def __init__(self, fin, fout, weight_bits: int | None = 8):
        super().__init__()
        self.fc = nn.Linear(fin, fout)
        self.wq = WeightQuant(weight_bits, per_channel=False) if weight_bits else None

    def weight(self) -> torch.Tensor:
        w = self.fc.weight
        return self.wq(w) if self.wq is not None else w

    def forward(self, x):
        return F.linear(x, self.weight(), self.fc.bias)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, act: str, levels: int, weight_bits):
        super().__init__()
        self.conv1 = ConvUnit(cin, cout, 3, stride, 1, make_act(act, levels), weight_bits)
        self.conv2 = ConvUnit(cout, cout, 3, 1, 1, None, weight_bits)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = ConvUnit(cin, cout, 1, stride, 0, None, weight_bits)
        self.act = make_act(act, levels)

    def forward(self, x):
        sc = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.conv1(x)) + sc)


def fold_all_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, ConvUnit):
            m.fold_bn()
    return model


def is_folded(state: dict) -> bool:
    """Whether a state dict holds a BN-folded model (no ConvUnit BN left)."""
    return not any(k.endswith(".bn.weight") for k in state)

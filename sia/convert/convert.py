"""Conversion of a trained reduced-precision model to an integer SNN program.

Every value entering a layer is measured in that layer's integer unit U[c]:
    U[c] = s[c] * u_in / p^2
s[c]: the channel's weight scale (w = q * s), u_in: the value one input unit stands
for (1/255 for an image byte, theta_prev for a spike: theta is folded into the next
layer's weights), p: the folded average-pool factor. In that unit the weights are
the integer codes q, the threshold is theta / U, the bias b / U (added every step),
and V starts at floor(threshold / 2) (QCFS's half shift). Residual shortcut weights
are expressed in the same unit as the main path and rounded (round half up).
"""

import copy

import numpy as np
import torch
from torch import nn

from sia import SiaError
from sia.models.blocks import BasicBlock, ConvUnit, LinearUnit, fold_all_bn
from sia.program.bounds import declare_bits
from sia.program.format import IMAGE, Layer, Program, Synapse, bits_signed
from sia.program.validate import validate
from sia.quant import QCFS, quantize_weight, round_half_up_np


class _Source:
    """What the next layer reads: a population, the value of one unit, a pending pool."""

    def __init__(self, index, unit, shape, pool=1):
        self.index, self.unit, self.shape, self.pool = index, unit, shape, pool

    def pooled_shape(self):
        c, h, w = self.shape
        return c, h // self.pool, w // self.pool


def _codes(unit: nn.Module, where: str):
    """Integer weight codes and per-channel scale of a ConvUnit / LinearUnit."""
    w = unit.conv.weight if isinstance(unit, ConvUnit) else unit.fc.weight
    if unit.wq is None:
        raise SiaError(f"{where}: weights are not quantised (float model); train with weight_bits")
    # contiguous: a channels_last (GPU-trained) model's weights are strided views
    q, s = quantize_weight(w.detach().double().contiguous(), unit.wq.bits, unit.wq.per_channel)
    s = s.reshape(-1).expand(w.shape[0]) if s.numel() == 1 else s.reshape(-1)
    return q.numpy().astype(np.int64), s.numpy(), unit.wq.bits


def _bias(unit) -> np.ndarray:
    b = unit.bias if isinstance(unit, ConvUnit) else unit.fc.bias
    n = unit.conv.out_channels if isinstance(unit, ConvUnit) else unit.fc.out_features
    return np.zeros(n) if b is None else b.detach().double().numpy()


def _theta(act: nn.Module, where: str) -> float:
    if isinstance(act, QCFS):
        return act.theta_value()
    raise SiaError(f"{where}: activation {type(act).__name__} cannot be converted to IF neurons "
                   f"(only QCFS; train the model with act='qcfs')")


def _conv_synapse(unit: ConvUnit, src: _Source, where: str):
    q, s, bits = _codes(unit, where)
    conv = unit.conv
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.stride[0] != conv.stride[1] \
            or conv.padding[0] != conv.padding[1]:
        raise SiaError(f"{where}: only square, ungrouped, undilated convolutions convert")
    syn = Synapse(source=src.index, op="conv", weight=q, weight_bits=bits,
                  stride=conv.stride[0], padding=int(conv.padding[0]), pool=src.pool)
    return syn, s * src.unit / src.pool ** 2


def _out_hw(syn: Synapse, src: _Source):
    _, h, w = src.pooled_shape()
    kh, kw = syn.weight.shape[2:]
    return ((h + 2 * syn.padding - kh) // syn.stride + 1, (w + 2 * syn.padding - kw) // syn.stride + 1)


def _if_layer(name, shape, inputs, unit_c, bias_f, theta):
    threshold = np.maximum(1, round_half_up_np(theta / unit_c)).astype(np.int64)
    return Layer(name=name, kind="if", shape=shape, inputs=inputs,
                 bias=round_half_up_np(bias_f / unit_c).astype(np.int64),
                 v_init=threshold // 2, threshold=threshold, v_bits=64, acc_bits=64)


class _Converter:
    def __init__(self, levels):
        self.levels = levels
        self.layers: list[Layer] = []

    def add(self, layer: Layer) -> int:
        self.layers.append(layer)
        return len(self.layers) - 1

    def conv_unit(self, name, unit: ConvUnit, src: _Source) -> _Source:
        syn, u = _conv_synapse(unit, src, name)
        theta = _theta(unit.act, name)
        shape = (unit.conv.out_channels, *_out_hw(syn, src))
        idx = self.add(_if_layer(name, shape, [syn], u, _bias(unit), theta))
        return _Source(idx, theta, shape)

    def block(self, name, blk: BasicBlock, src: _Source) -> _Source:
        mid = self.conv_unit(f"{name}.conv1", blk.conv1, src)
        if not isinstance(blk.conv2.act, nn.Identity):
            raise SiaError(f"{name}.conv2: expected no activation before the residual add")
        main, u = _conv_synapse(blk.conv2, mid, f"{name}.conv2")
        bias_f = _bias(blk.conv2)
        shape = (blk.conv2.conv.out_channels, *_out_hw(main, mid))
        if blk.shortcut is None:
            ratio = src.unit / src.pool ** 2 / u
            w = round_half_up_np(ratio).astype(np.int64)
            sc = Synapse(source=src.index, op="identity", weight=w,
                         weight_bits=bits_signed(w.min(), w.max()), pool=src.pool)
        else:
            q, s_sc, _ = _codes(blk.shortcut, f"{name}.shortcut")
            ratio = (s_sc * src.unit / src.pool ** 2 / u)[:, None, None, None]
            w = round_half_up_np(q * ratio).astype(np.int64)
            conv = blk.shortcut.conv
            sc = Synapse(source=src.index, op="conv", weight=w,
                         weight_bits=bits_signed(w.min(), w.max()), stride=conv.stride[0],
                         padding=int(conv.padding[0]), pool=src.pool)
            bias_f = bias_f + _bias(blk.shortcut)
        theta = _theta(blk.act, f"{name}.act")
        idx = self.add(_if_layer(f"{name}.out", shape, [main, sc], u, bias_f, theta))
        return _Source(idx, theta, shape)

    def classifier(self, name, unit: LinearUnit, src: _Source):
        q, s, bits = _codes(unit, name)
        if unit.wq.per_channel:
            raise SiaError(f"{name}: the classifier needs one weight scale (per-tensor), "
                           f"so class scores share a unit")
        c, h, w = src.pooled_shape()
        if q.shape[1] != c * h * w:
            raise SiaError(f"{name}: expects {q.shape[1]} features, source gives {c * h * w}")
        u = s * src.unit / src.pool ** 2
        syn = Synapse(source=src.index, op="dense", weight=q, weight_bits=bits, pool=src.pool)
        self.add(Layer(name=name, kind="integrator", shape=(q.shape[0], 1, 1), inputs=[syn],
                       bias=round_half_up_np(_bias(unit) / u).astype(np.int64),
                       v_init=np.zeros(q.shape[0], dtype=np.int64), v_bits=64, acc_bits=64))


def convert(model: nn.Module, input_shape, name: str = "program", timesteps: int = 8,
            t_max: int | None = None, meta: dict | None = None) -> Program:
    """Convert a trained sia model (nn.Sequential of sia blocks) to a validated Program."""
    if not isinstance(model, nn.Sequential):
        raise SiaError(f"model must be an nn.Sequential of sia blocks, got {type(model).__name__}")
    model = fold_all_bn(copy.deepcopy(model).cpu().eval())
    levels = {m.levels for m in model.modules() if isinstance(m, QCFS)}
    if len(levels) > 1:
        raise SiaError(f"model must use one QCFS L for all layers, found {sorted(levels)}")
    cv = _Converter(levels.pop() if levels else None)
    src = _Source(IMAGE, 1.0 / 255.0, tuple(int(v) for v in input_shape))
    children = list(model.named_children())
    flattened = False
    with torch.no_grad():
        for pos, (key, m) in enumerate(children):
            where = f"module {key} ({type(m).__name__})"
            if flattened and not isinstance(m, LinearUnit):
                raise SiaError(f"{where}: only the classifier may follow Flatten")
            if isinstance(m, ConvUnit):
                src = cv.conv_unit(f"conv{key}", m, src)
            elif isinstance(m, BasicBlock):
                src = cv.block(f"block{key}", m, src)
            elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                src.pool *= _pool_factor(m, src, where)
            elif isinstance(m, nn.Flatten):
                flattened = True
            elif isinstance(m, LinearUnit):
                if pos != len(children) - 1:
                    raise SiaError(f"{where}: a linear layer is only supported as the classifier")
                cv.classifier(f"fc{key}", m, src)
            else:
                raise SiaError(f"{where}: unsupported layer; sia converts ConvUnit, BasicBlock, "
                               f"AvgPool2d, Flatten and a final LinearUnit")
    if not cv.layers or cv.layers[-1].kind != "integrator":
        raise SiaError("model must end with a LinearUnit classifier")
    prog = Program(name=name, input_shape=tuple(int(v) for v in input_shape), levels=cv.levels,
                   timesteps=timesteps, t_max=t_max or max(16, timesteps), layers=cv.layers,
                   num_classes=cv.layers[-1].shape[0], meta=dict(meta or {}))
    for layer in prog.layers:
        declare_bits(prog, layer)
    return validate(prog)


def _pool_factor(m, src: _Source, where: str) -> int:
    _, h, w = src.pooled_shape()
    if isinstance(m, nn.AdaptiveAvgPool2d):
        out = m.output_size if isinstance(m.output_size, int) else m.output_size[0]
        if out != 1 or h != w:
            raise SiaError(f"{where}: only global (1x1) adaptive average pooling converts")
        return h
    k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
    stride = m.stride if isinstance(m.stride, int) else m.stride[0]
    if stride != k or m.padding not in (0, (0, 0)) or h % k or w % k:
        raise SiaError(f"{where}: only non-overlapping, unpadded pools dividing the map convert")
    return k

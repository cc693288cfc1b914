"""VGG-11 and ResNet-18 in their CIFAR forms, and a small CNN for the 8x8 digits.

Max-pooling is rewritten to average pooling: an average of spikes is a weighted sum
of spikes, which the converter folds into the next layer's event mapping, so only
binary spikes travel between layers. The model input is the uint8 image / 255 with
no mean subtraction (BN after the first conv absorbs the offset), so the first
layer's zero padding is the same in the ANN and in the integer program.
"""

from torch import nn

from sia.models.blocks import BasicBlock, ConvUnit, LinearUnit, make_act

VGG11 = [64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"]


def _ch(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


def _bits(weight_bits, first_last_bits):
    return weight_bits, (first_last_bits if weight_bits else None)


def vgg11(num_classes=10, width=1.0, act="qcfs", levels=4, weight_bits=4, first_last_bits=8,
          in_channels=3):
    wb, flb = _bits(weight_bits, first_last_bits)
    layers, cin, first = [], in_channels, True
    for v in VGG11:
        if v == "P":
            layers.append(nn.AvgPool2d(2))
            continue
        cout = _ch(v, width)
        layers.append(ConvUnit(cin, cout, 3, 1, 1, make_act(act, levels), flb if first else wb))
        cin, first = cout, False
    layers += [nn.Flatten(), LinearUnit(cin, num_classes, flb)]
    return nn.Sequential(*layers)


def resnet18(num_classes=10, width=1.0, act="qcfs", levels=4, weight_bits=4, first_last_bits=8,
             in_channels=3):
    wb, flb = _bits(weight_bits, first_last_bits)
    c = [_ch(v, width) for v in (64, 128, 256, 512)]
    layers = [ConvUnit(in_channels, c[0], 3, 1, 1, make_act(act, levels), flb)]
    cin = c[0]
    for i, cout in enumerate(c):
        for j in range(2):
            stride = 2 if (i > 0 and j == 0) else 1
            layers.append(BasicBlock(cin, cout, stride, act, levels, wb))
            cin = cout
    layers += [nn.AvgPool2d(4), nn.Flatten(), LinearUnit(cin, num_classes, flb)]
    return nn.Sequential(*layers)


def digits_cnn(num_classes=10, width=1.0, act="qcfs", levels=4, weight_bits=4, first_last_bits=8,
               in_channels=1):
    """8x8 digits: conv16 -> pool -> conv32 -> pool -> linear (dense over 32x2x2)."""
    wb, flb = _bits(weight_bits, first_last_bits)
    c1, c2 = _ch(16, width), _ch(32, width)
    return nn.Sequential(
        ConvUnit(in_channels, c1, 3, 1, 1, make_act(act, levels), flb),
        nn.AvgPool2d(2),
        ConvUnit(c1, c2, 3, 1, 1, make_act(act, levels), wb),
        nn.AvgPool2d(2),
        nn.Flatten(),
        LinearUnit(c2 * 4, num_classes, flb),
    )


ARCHS = {"vgg11": vgg11, "resnet18": resnet18, "digits_cnn": digits_cnn}


def build_model(arch: str, **kw) -> nn.Module:
    from sia import SiaError
    if arch not in ARCHS:
        raise SiaError(f"unsupported model {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch](**kw)
